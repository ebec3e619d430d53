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


def _trainer(prompt_set: str, mini: int = 32, n: int = 16, epochs: int = 1) -> ReMATrainer:
    """The trainer's driver-side state, without starting Ray (``__init__`` would build worker groups)."""
    trainer = object.__new__(ReMATrainer)
    trainer.config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "actor": {"ppo_mini_batch_size": mini, "ppo_epochs": epochs},
                "rollout": {"n": n, "agent": {"default_agent_loop": "rema"}},
            },
            "rema": {"rollout": {"prompt_set": prompt_set}},
            "trainer": {"critic_warmup": 0},
        }
    )
    from verl_rema.checks import rows_per_episode

    trainer.rows_per_episode = rows_per_episode(trainer.config)
    trainer.use_critic, trainer.global_steps = False, 1
    return trainer


def test_mini_batches_count_episodes_whatever_the_number_of_roles():
    """The reference configuration: 128 prompts x 16, mini-batch 32 prompts -> 4 optimiser steps, one row per
    role or not."""
    for prompt_set, roles in (("multiturn", 2), ("singleturn", 2), ("cot", 1)):
        trainer = _trainer(prompt_set)
        assert trainer.rows_per_episode == roles
        assert trainer.mini_batch_rows == 32 * 16 * roles
        step_rows = 128 * 16 * roles
        assert step_rows // trainer.mini_batch_rows == 4
        # veRL pads a batch to this multiple: an episode batch divides evenly, so nothing is padded
        assert step_rows % trainer._get_required_batch_multiple(dp_size=8) == 0


def test_the_worker_is_handed_mini_batches_of_episode_rows(monkeypatch):
    """veRL's _update_actor tells the worker ``ppo_mini_batch_size x n`` rows; inside ReMA's it is that x roles,
    and the config is restored afterwards."""
    from verl.trainer.ppo.v1 import PPOTrainerSync

    handed = {}

    def verl_update_actor(self, batch, metrics):
        actor = self.config.actor_rollout_ref.actor
        handed["mini_batch_size"] = actor.ppo_mini_batch_size * self.config.actor_rollout_ref.rollout.n
        return batch

    monkeypatch.setattr(PPOTrainerSync, "_update_actor", verl_update_actor)
    trainer = _trainer("multiturn", mini=2, n=4, epochs=2)

    class Batch:  # a KVBatchMeta's length and tags: 16 rows, the last 2 veRL's synthetic padding
        tags = [{"is_padding": i >= 14} for i in range(16)]

        def __len__(self) -> int:
            return 16

    metrics: dict = {}
    trainer._update_actor(Batch(), metrics)
    assert handed["mini_batch_size"] == 2 * 4 * 2  # rows of 2 prompts x 4 episodes x 2 roles
    assert trainer.config.actor_rollout_ref.actor.ppo_mini_batch_size == 2  # restored
    assert metrics["training/rema/optimizer_steps"] == 2 * (16 // 16)  # epochs x mini-batches
    assert metrics["training/rema/padding_rows"] == 2
