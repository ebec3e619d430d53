"""veRL's v1 synchronous PPO trainer, plus what ReMA needs and veRL 0.9.1 has no hook for.

1. Per-row roles for the advantage estimators. veRL's ``_compute_advantage`` fetches only
   ``uid`` (and tensors) from the TransferQueue and hands registered estimators ``index=uid``;
   ReMA groups advantages per (prompt, role). :class:`ReMATrainer` fetches each row's role
   (``protocol.ROLE_FIELD``, written by the ReMA agent loop) and exposes it, for the duration of veRL's own
   ``_compute_advantage``, through :mod:`verl_rema.advantages.row_roles`, which
   ``rema_grpo``/``softrank`` read. The rows' order is the batch keys' order on both sides.
2. ReMA's dialogue metrics every training step. veRL's ``_compute_metrics`` reads a fixed list
   of fields; the agent loop stores one metrics dict per episode in ``extra_fields``,
   aggregated here into ``training/rema/...`` (validation gets them from the reward's extra info).

Everything else is veRL's ``PPOTrainerSync``, unchanged: the mode name ``rema_sync`` selects this
class, which then runs as veRL's ``sync`` mode (veRL compares ``trainer_mode`` with ``"sync"`` to
pick its replay buffer and refill policy).
"""

from __future__ import annotations

import logging

import numpy as np
import transfer_queue as tq
from omegaconf import open_dict
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

from verl_rema.advantages.row_roles import rows_with_roles
from verl_rema.protocol import ROLE_FIELD
from verl_rema.rollout.metrics import aggregate_row_metrics

logger = logging.getLogger(__name__)

TRAINER_MODE = "rema_sync"

VERL_MODE = "sync"


def _fetch(batch, field: str) -> list | None:
    """One non-tensor field of every row, or None when the rows do not have it (another agent loop)."""
    try:
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[field])
    except Exception as error:  # noqa: BLE001  (TransferQueue raises several types for a missing field)
        logger.debug("field %r not available: %s", field, error)
        return None
    return as_list(data[field]) if field in data.keys() else None


def as_list(values) -> list:
    """Per-row Python values of a TransferQueue field: tensordict hands non-tensor columns back
    either as a ``NonTensorStack`` (``.tolist()``) or as a plain list subclass (strings)."""
    return list(values.tolist()) if hasattr(values, "tolist") else list(values)


@register_trainer(TRAINER_MODE)
class ReMATrainer(PPOTrainerSync):
    """``PPOTrainerSync`` that passes per-row roles to the advantage estimator and logs ReMA metrics."""

    def __init__(self, config, *args, **kwargs):
        with open_dict(config):
            config.trainer.v1.trainer_mode = VERL_MODE
        super().__init__(config, *args, **kwargs)

    def _compute_advantage(self, batch, metrics: dict):
        roles = _fetch(batch, ROLE_FIELD)
        with rows_with_roles(np.asarray(roles, dtype=object) if roles is not None else None):
            return super()._compute_advantage(batch, metrics)

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        extra_fields = _fetch(batch, "extra_fields")
        if extra_fields is not None:
            metrics.update(aggregate_row_metrics(list(batch.keys), extra_fields, prefix="training/"))
        metrics.update(self._action_tokens_per_role(batch))

    def _action_tokens_per_role(self, batch) -> dict[str, float]:
        """Trained (mask-1) tokens and rows per role in this step: both roles must be learning."""
        roles = _fetch(batch, ROLE_FIELD)
        if roles is None:
            return {}
        masks = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["response_mask"])
        counts = [int(mask.sum()) for mask in masks["response_mask"].unbind(0)]
        out: dict[str, float] = {}
        for role in sorted(set(roles)):
            role_counts = [c for r, c in zip(roles, counts, strict=True) if r == role]
            out[f"training/rema/{role}/rows"] = float(len(role_counts))
            out[f"training/rema/{role}/action_tokens"] = float(sum(role_counts))
        return out
