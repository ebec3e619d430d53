"""ReMA's trainer mode: registered in veRL, runs as veRL's sync mode, reads TransferQueue columns."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import OmegaConf
from tensordict import NonTensorData, NonTensorStack, TensorDict

from verl_rema.advantages.grpo_role import compute_rema_grpo_advantage
from verl_rema.advantages.row_roles import current_row_roles, rows_with_roles
from verl_rema.trainer.rema_trainer import TRAINER_MODE, ReMATrainer, as_list


def test_registered_under_its_mode_and_subclasses_verls_sync_trainer():
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls

    assert get_trainer_cls(TRAINER_MODE) is ReMATrainer
    assert issubclass(ReMATrainer, PPOTrainerSync)


def test_non_tensor_columns_become_python_lists():
    class ListColumn(list):  # what tensordict returns for string columns (tensordict.utils.LinkedList)
        pass

    assert as_list(ListColumn(["meta", "reasoning"])) == ["meta", "reasoning"]
    stack = NonTensorStack(NonTensorData({"a": 1}), NonTensorData({"a": 2}))
    assert as_list(stack) == [{"a": 1}, {"a": 2}]
    strings = TensorDict({"rema_role": NonTensorStack(NonTensorData("meta"), NonTensorData("reasoning"))}, [2])
    assert as_list(strings["rema_role"]) == ["meta", "reasoning"]


def test_roles_reach_a_registered_estimator_called_without_them():
    # veRL calls estimators with index=uid only; inside the trainer's context the roles are visible.
    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.5]])  # (4 rows, 2 tokens)
    mask = torch.ones_like(rewards)
    uids = np.array(["q", "q", "q", "q"], dtype=object)
    roles = np.array(["meta", "meta", "reasoning", "reasoning"], dtype=object)
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": False})
    pooled, _ = compute_rema_grpo_advantage(rewards, mask, index=uids, config=config)
    with rows_with_roles(roles):
        assert current_row_roles() is roles
        grouped, _ = compute_rema_grpo_advantage(rewards, mask, index=uids, config=config)
    assert current_row_roles() is None
    # meta group {1, 0}: +-0.5; reasoning group {1, 0.5}: +-0.25; pooled mean 0.625 differs.
    assert torch.allclose(grouped[:, 0], torch.tensor([0.5, -0.5, 0.25, -0.25]))
    assert torch.allclose(pooled[:, 0], torch.tensor([0.375, -0.625, 0.375, -0.125]))
