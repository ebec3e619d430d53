"""Give ReMA's turn-level loss the number of turns in the global mini-batch.

Upstream: veRL 0.9.1. ``FSDPEngine.forward_backward_batch``
(``verl/workers/engine/fsdp/transformer_impl.py``) all-reduces the mini-batch's token count
(``batch_num_tokens``) before splitting it into micro-batches, and ``ppo_loss``
(``verl/workers/utils/losses.py``, bound by ``verl/workers/engine_workers.py``) copies it into
``config.global_batch_info`` for the policy loss. There is no such count for turns, which the
``turn`` aggregation of :mod:`verl_rema.losses` needs to be independent of the micro-batch and
data-parallel split (veRL forwards ``global_batch_info`` to ``agg_loss``, which rejects extra keys).

The patch mirrors veRL's token count: the engine wrapper counts the mini-batch's turns
(``verl_rema.losses.turns.count_turns_total``, the loss's own segmentation), all-reduces them over the
data-parallel group and attaches
``rema_num_turns`` to the batch (micro-batches inherit it like ``batch_num_tokens``); the loss
wrapper copies it into ``config.policy_loss.global_turn_info`` when that field exists (the
``rema_turn`` config), and does nothing otherwise. Applied on every platform.
"""

from __future__ import annotations

import functools

import torch

from ._guard import APPLIED

NAME = "turn_count.global_mini_batch_turns"
KEY = "rema_num_turns"


def apply() -> None:
    if NAME in APPLIED:
        return
    import verl.workers.engine_workers as engine_workers
    from verl.utils import tensordict_utils as tu
    from verl.utils.device import get_device_id
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    from verl_rema.losses.turns import count_turns_total

    original_step = FSDPEngine.forward_backward_batch

    @functools.wraps(original_step)
    def forward_backward_batch(self, data, loss_function, forward_only=False):
        if not forward_only and "loss_mask" in data.keys():
            turns = torch.tensor(count_turns_total(data["loss_mask"]), device=get_device_id())
            torch.distributed.all_reduce(turns, op=torch.distributed.ReduceOp.SUM, group=self.get_data_parallel_group())
            tu.assign_non_tensor(data, **{KEY: int(turns.item())})
        return original_step(self, data, loss_function, forward_only)

    FSDPEngine.forward_backward_batch = forward_backward_batch
    engine_workers.ppo_loss = with_turn_info(engine_workers.ppo_loss)
    APPLIED.append(NAME)


def with_turn_info(loss_fn):
    """Wrap veRL's ``ppo_loss(config, model_output, data, dp_group)``: hand the mini-batch's turn count
    to a policy-loss config that has ``global_turn_info`` (cleared when the batch carries none)."""
    from verl.utils import tensordict_utils as tu

    @functools.wraps(loss_fn)
    def ppo_loss(config, model_output, data, dp_group=None):
        turn_info = getattr(getattr(config, "policy_loss", None), "global_turn_info", None)
        if isinstance(turn_info, dict):
            turns = tu.get_non_tensor_data(data=data, key=KEY, default=None)
            if turns is None:
                turn_info.pop("num_turns", None)
            else:
                turn_info["num_turns"] = int(turns)
        return loss_fn(config, model_output, data, dp_group)

    return ppo_loss
