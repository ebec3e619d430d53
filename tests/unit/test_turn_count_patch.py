"""The worker-side global turn count for the turn-level loss (patches/turn_count.py, losses/turns.py)."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import torch
from tensordict import TensorDict
from verl_rema_patches.turn_count import KEY, with_turn_info

from tests.conftest import run_python
from verl_rema.losses.turns import count_turns as loss_count_turns
from verl_rema.losses.turns import count_turns_total as count_turns


def test_count_turns_matches_the_loss_segmentation_on_dense_and_jagged_masks():
    torch.manual_seed(0)
    mask = (torch.rand(6, 40) > 0.5).long()  # (B, T)
    mask[2] = 0  # a row without action tokens
    assert count_turns(mask) == int(loss_count_turns(mask).sum())
    jagged = torch.nested.nested_tensor([row[: 10 + 5 * i] for i, row in enumerate(mask)], layout=torch.jagged)
    expected = sum(int(loss_count_turns(row[None, : 10 + 5 * i]).sum()) for i, row in enumerate(mask))
    assert count_turns(jagged) == expected


def test_loss_wrapper_hands_the_count_to_turn_configs_only():
    seen = []

    def fake_ppo_loss(config, model_output, data, dp_group=None):
        seen.append(
            dict(config.policy_loss.global_turn_info) if hasattr(config.policy_loss, "global_turn_info") else None
        )
        return 0.0, {}

    wrapped = with_turn_info(fake_ppo_loss)
    turn_config = SimpleNamespace(policy_loss=SimpleNamespace(global_turn_info={}))
    data = TensorDict({}, batch_size=[])
    data.set_non_tensor(KEY, 17)
    wrapped(turn_config, None, data)
    wrapped(turn_config, None, TensorDict({}, batch_size=[]))  # a batch without the count clears it
    wrapped(SimpleNamespace(policy_loss=SimpleNamespace()), None, data)  # veRL's own loss configs: untouched
    assert seen == [{"num_turns": 17}, {}, None]


def test_applied_on_every_platform_and_upstream_shape_unchanged():
    result = run_python(
        "import json, verl, verl_rema_patches as p; import verl.workers.engine_workers as w; "
        "print(json.dumps({'applied': p.APPLIED, 'wrapped': w.ppo_loss.__code__.co_filename.endswith('turn_count.py')}))",
        env={"VERL_PLATFORM": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["wrapped"] and "turn_count.global_mini_batch_turns" in report["applied"]
    from verl.workers import engine_workers
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    step = inspect.getsource(FSDPEngine.forward_backward_batch.__wrapped__)
    assert "batch_num_tokens" in step and "prepare_micro_batches(" in step
    assert "partial(ppo_loss, config=actor_config)" in inspect.getsource(engine_workers)
