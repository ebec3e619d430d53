"""veRL's v1 synchronous PPO trainer, plus what ReMA needs and veRL 0.9.1 has no hook for.

1. Mini-batches of episodes. veRL sizes an actor mini-batch as ``ppo_mini_batch_size x rollout.n`` rows, which
   is a number of episodes only when an episode is one row. The ReMA agent loop leaves one row per role of the
   prompt set (always: complete role groups), so :class:`ReMATrainer` sizes it ``ppo_mini_batch_size x n x roles``
   rows: the optimiser steps per training step are ``ppo_epochs x train_batch_size / ppo_mini_batch_size`` for
   CoT, single-turn and multi-turn alike (the reference run: 128 / 32 = 4), logged as
   ``training/rema/optimizer_steps``.
2. Per-row roles for the advantage estimators. veRL's ``_compute_advantage`` fetches only
   ``uid`` (and tensors) from the TransferQueue and hands registered estimators ``index=uid``;
   ReMA groups advantages per (prompt, role). :class:`ReMATrainer` fetches each row's role
   (``protocol.ROLE_FIELD``, written by the ReMA agent loop) and exposes it, for the duration of veRL's own
   ``_compute_advantage``, through :mod:`verl_rema.advantages.row_roles`, which
   ``rema_grpo``/``softrank`` read. The rows' order is the batch keys' order on both sides.
3. ReMA's metrics every training step (:mod:`.step_metrics`): dialogue metrics per episode, reward and accuracy
   per episode, and each role's share of the work.

Everything else is veRL's ``PPOTrainerSync``, unchanged: the mode name ``rema_sync`` selects this
class, which then runs as veRL's ``sync`` mode (veRL compares ``trainer_mode`` with ``"sync"`` to
pick its replay buffer and refill policy).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import transfer_queue as tq
from omegaconf import open_dict
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

from verl_rema.advantages.row_roles import rows_with_roles
from verl_rema.checks import rows_per_episode
from verl_rema.protocol import ROLE_FIELD, TrainerMode
from verl_rema.resume_check import read_tracker, write_fingerprint, write_tracker
from verl_rema.rollout.metrics import aggregate_row_metrics
from verl_rema.trainer.step_metrics import PREFIX, episode_outcomes, role_shares

logger = logging.getLogger(__name__)

TRAINER_MODE = TrainerMode.SYNC.value

VERL_MODE = "sync"
RESUME_PROBE_ENV = "VERL_REMA_RESUME_PROBE"
# A drill (tests/e2e/test_kill_resume_cpu.py): hold each checkpoint half-written (fingerprint written, veRL's files
# not yet) for this many seconds, so that a kill lands inside the write whatever the machine's load.
SAVE_PAUSE_ENV = "VERL_REMA_DRILL_SAVE_PAUSE_S"


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
    """``PPOTrainerSync`` with episode mini-batches, per-row roles for the estimators and ReMA's step metrics."""

    def __init__(self, config, *args, **kwargs):
        with open_dict(config):
            config.trainer.v1.trainer_mode = VERL_MODE
        super().__init__(config, *args, **kwargs)
        self.rows_per_episode = rows_per_episode(config)

    # -- 1. mini-batches of episodes -----------------------------------------------------------------------------

    @property
    def mini_batch_rows(self) -> int:
        """Rows of one actor mini-batch: ppo_mini_batch_size prompts x rollout.n episodes x rows per episode."""
        actor, rollout = self.config.actor_rollout_ref.actor, self.config.actor_rollout_ref.rollout
        return int(actor.ppo_mini_batch_size) * int(rollout.n) * self.rows_per_episode

    def _get_required_batch_multiple(self, dp_size: int) -> int:
        return math.lcm(super()._get_required_batch_multiple(dp_size), self.mini_batch_rows)

    def _update_actor(self, batch, metrics: dict):
        print(f"verl-rema: step {self.global_steps}: updating the actor on {len(batch)} rows", flush=True)
        with _mini_batch_of_rows(self.config.actor_rollout_ref.actor, self.rows_per_episode):
            batch = super()._update_actor(batch, metrics)
        epochs = int(self.config.actor_rollout_ref.actor.ppo_epochs)
        metrics[f"{PREFIX}optimizer_steps"] = float(epochs * (len(batch) // self.mini_batch_rows))
        metrics[f"{PREFIX}padding_rows"] = float(sum(bool(tag.get("is_padding", False)) for tag in batch.tags))
        return batch

    # -- checkpoints: a recipe fingerprint, the latest-step marker after the step's metrics, a resume probe ---------

    def _save_checkpoint(self):
        """This run's recipe fingerprint first (``rema_run.json``, :mod:`verl_rema.resume_check`), then veRL's files.

        veRL marks the step as the latest checkpoint as soon as its files are written, before it logs the step's
        metrics (and validates, and dumps the rollouts): a kill in between resumes after a step whose metrics were
        never logged. The marker is held back here and set at the next step's start, or after the last step, once
        the metrics are in the metrics file; a kill before that re-runs the step."""
        root = os.path.abspath(str(self.config.trainer.default_local_dir))
        write_fingerprint(os.path.join(root, f"global_step_{self.global_steps}"), self.config)
        if pause := float(os.environ.get(SAVE_PAUSE_ENV, "0")):
            time.sleep(pause)
        previous = read_tracker(root)
        super()._save_checkpoint()
        if not self.config.actor_rollout_ref.actor.get("checkpoint", {}).get("async_save", False):
            write_tracker(root, previous)
            self._uncommitted = (root, str(self.global_steps))

    def _commit_checkpoint(self) -> None:
        uncommitted = getattr(self, "_uncommitted", None)
        if uncommitted is not None:
            write_tracker(*uncommitted)
            self._uncommitted = None

    def on_step_begin(self):
        self._commit_checkpoint()  # the previous step's metrics were logged
        super().on_step_begin()

    def _shutdown_dump_executor(self):
        super()._shutdown_dump_executor()
        self._commit_checkpoint()  # after the last step's metrics

    def _load_checkpoint(self):
        """veRL's, then (``VERL_REMA_RESUME_PROBE=DIR``, a drill) the actor's state as loaded, saved to DIR for a
        comparison with the checkpoint it came from (``tests/e2e/test_kill_resume_cpu.py``)."""
        super()._load_checkpoint()
        probe = os.environ.get(RESUME_PROBE_ENV)
        if probe and self.global_steps > 0:
            folder = os.path.join(probe, f"global_step_{self.global_steps}", "actor")
            self.actor_rollout_wg.save_checkpoint(folder, None, self.global_steps, max_ckpt_to_keep=None)

    # -- 2. roles for the estimators -----------------------------------------------------------------------------

    def _compute_advantage(self, batch, metrics: dict):
        roles = _fetch(batch, ROLE_FIELD)
        with rows_with_roles(np.asarray(roles, dtype=object) if roles is not None else None):
            return super()._compute_advantage(batch, metrics)

    # -- 3. metrics ----------------------------------------------------------------------------------------------

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        keys = list(batch.keys)
        extra_fields = _fetch(batch, "extra_fields")
        if extra_fields is not None:
            metrics.update(aggregate_row_metrics(keys, extra_fields, prefix="training/"))
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["rm_scores", "response_mask"])
        scores = [float(row.sum()) for row in data["rm_scores"].unbind(0)]
        metrics.update(episode_outcomes(keys, scores, extra_fields or []))
        roles = _fetch(batch, ROLE_FIELD)
        if roles is not None:
            metrics.update(role_shares(roles, list(data["response_mask"].unbind(0))))


@contextmanager
def _mini_batch_of_rows(actor_config, rows_per_episode: int) -> Iterator[None]:
    """For the duration of veRL's ``_update_actor``, which hands the worker ``ppo_mini_batch_size x n`` rows as a
    mini-batch (and as the loss's global batch size), count rows per episode in ``ppo_mini_batch_size``."""
    episodes = actor_config.ppo_mini_batch_size
    actor_config.ppo_mini_batch_size = episodes * rows_per_episode
    try:
        yield
    finally:
        actor_config.ppo_mini_batch_size = episodes
