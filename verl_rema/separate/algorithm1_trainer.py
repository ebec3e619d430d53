"""Algorithm 1 in one veRL run: ``trainer.v1.trainer_mode=rema_algorithm1`` (see :mod:`.algorithm1`).

The two separate models and their alternation are the ``rema_separate`` trainer's; what Algorithm 1 changes is
which role trains when (its phases, whose lengths depend on the filtered data) and what each step's prompts are
(the phase's filtered data instead of the dataloader). Filtering runs through the same agent-loop workers and
rollout servers as training, with the row's ``rema_phase`` telling the ``rema_algorithm1`` agent loop what to play
(``verl_rema.rollout.phased_loop``), and is logged as ``training/rema/algorithm1/{tried,kept,too_hard,too_easy}``.
The run ends with the last phase: ``trainer.total_training_steps`` only bounds it.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any

import numpy as np
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1 import register_trainer
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn

from verl_rema.protocol import PHASE_FIELD, PLAN_FIELD, ROLE_FIELD, Phase, Role, RowKey, TrainerMode
from verl_rema.separate.algorithm1 import (
    CONFIG_PATH,
    FILTER_PHASE,
    TRAIN_PHASE,
    Algorithm1Config,
    Algorithm1State,
    keep_in_band,
)
from verl_rema.separate.trainer import ReMASeparateTrainer
from verl_rema.trainer.rema_trainer import as_list
from verl_rema.trainer.step_metrics import PREFIX

logger = logging.getLogger(__name__)

TRAINER_MODE = TrainerMode.ALGORITHM1.value
ALG1 = f"{PREFIX}algorithm1/"


@register_trainer(TRAINER_MODE)
class Algorithm1Trainer(ReMASeparateTrainer):
    """The separate-models trainer driven by Algorithm 1's phases; see the module docstring."""

    def __init__(self, config: DictConfig, *args: Any, **kwargs: Any):
        self.alg1 = Algorithm1Config.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))
        self.state = Algorithm1State()
        self._phase_metrics: dict[str, float] = {}
        super().__init__(config, *args, **kwargs)

    # -- who trains, on what ----------------------------------------------------------------------------------------

    def _role_horizon(self, role: Role) -> int:
        return int(self.total_training_steps)  # unknown before the filters run; the paper's lr is constant

    def _trained_roles(self) -> tuple[Role, ...]:
        return (self.state.phase_role,)

    def _schedule_metrics(self) -> dict[str, float]:
        metrics = {
            f"{ALG1}iteration": float(self.state.iteration),
            f"{ALG1}step_in_phase": float(self.global_steps - self.state.start_step),
            f"{ALG1}phase_steps": float(self.state.steps),
        }
        metrics.update(self._phase_metrics)
        self._phase_metrics = {}
        return metrics

    def _next_train_batch(self, num_prompts: int | None = None) -> TensorDict:
        items = self.state.take(num_prompts or int(self.config.data.train_batch_size), self.alg1.seed)
        phase = TRAIN_PHASE[self.state.phase_role]
        batch = self._prompts([index for index, _ in items], phase, plans=[plan for _, plan in items])
        tu.assign_non_tensor_data(batch, "global_steps", self.global_steps)
        return batch

    # -- phases -------------------------------------------------------------------------------------------------------

    def on_train_begin(self) -> None:
        super().on_train_begin()
        if self.state.steps and self.global_steps > self.state.start_step + self.state.steps - 1:
            self.state.next_phase()  # resumed from the checkpoint of a phase's last step
        if self.state.steps == 0:  # a fresh run, or a phase to build
            self._build_phase(first_step=self.global_steps)

    def on_step_end(self) -> None:
        super().on_step_end()
        if self.global_steps >= self.state.start_step + self.state.steps - 1:
            self.state.next_phase()
            self._build_phase(first_step=self.global_steps + 1)

    def _build_phase(self, first_step: int) -> None:
        """Filter the data for the current phase (skipping phases with nothing in the band); set the run's end."""
        while not self.state.done(self.alg1):
            self.state.items, self.state.counts = self._phase_data(self.state.phase_role)
            self.state.start_step, self.state.cursor = first_step, 0
            self.state.steps = self.state.phase_steps(self.alg1, int(self.config.data.train_batch_size))
            role, counts = self.state.phase_role.value, self.state.counts
            self._phase_metrics = {f"{ALG1}{role}/{name}": float(value) for name, value in counts.items()}
            print(
                f"verl-rema Algorithm 1: iteration {self.state.iteration + 1}/{self.alg1.iterations}, {role} phase: "
                f"{counts} -> {len(self.state.items)} prompts, {self.state.steps} steps from step {first_step}",
                flush=True,
            )
            if self.state.steps:
                last = (self.state.iteration == self.alg1.iterations - 1) and self.state.phase_role is Role.META
                if last:  # the run ends with the last phase, or earlier at trainer.total_training_steps
                    self.total_training_steps = min(self.total_training_steps, first_step + self.state.steps - 1)
                return
            self.state.next_phase()
        self.total_training_steps = first_step - 1  # nothing left to train: the loop stops

    def _phase_data(self, role: Role) -> tuple[list[list[Any]], dict[str, int]]:
        """Algorithm 1's lines 3 and 9: the phase's filtered prompts, with fresh plans for the RA's."""
        candidates = list(range(len(self.train_dataset)))
        if self.alg1.filter_questions:
            rng = np.random.default_rng([self.alg1.seed, self.state.iteration, int(role is Role.META)])
            candidates = sorted(rng.choice(candidates, min(self.alg1.filter_questions, len(candidates)), replace=False).tolist())  # fmt: skip
        phase = FILTER_PHASE[role]
        n = self.alg1.filter_samples if phase is Phase.FILTER_META else 1  # FILTER_REASONING samples K RA answers
        episodes = self._play(candidates, phase, n)
        rates = {index: float(np.mean([e["acc"] for e in eps])) for index, eps in episodes.items()}
        kept, counts = keep_in_band(rates, self.alg1)
        if role is Role.META or not kept:
            return [[index, None] for index in kept], counts
        plans = self._play(kept, Phase.FILTER_META, self.alg1.plans_per_question)  # fresh plans, sampled at T=1
        return [[index, e[PLAN_FIELD]] for index in kept for e in plans[index]], counts

    def _prompts(
        self, indices: list[int], phase: Phase, plans: list[str | None] | None = None, rollout_n: int | None = None
    ) -> TensorDict:
        rows = []
        for position, index in enumerate(indices):
            row = dict(self.train_dataset[index])
            row[PHASE_FIELD] = phase.value
            row[PLAN_FIELD] = (plans[position] if plans else None) or ""
            if rollout_n is not None:
                row["__rollout_n__"] = rollout_n  # veRL's agent-loop worker plays this many episodes of the row
            rows.append(row)
        batch = collate_fn(rows)
        batch["uid"] = np.array([uuid.uuid4().hex for _ in rows], dtype=object)
        return tu.get_tensordict(batch)

    def _play(self, indices: list[int], phase: Phase, n: int) -> dict[int, list[dict[str, Any]]]:
        """Play ``n`` episodes of ``phase`` per question on the rollout servers; each episode's reward info."""
        batch = self._prompts(indices, phase, rollout_n=n)
        tu.assign_non_tensor_data(batch, "global_steps", self.global_steps)
        uids = list(batch["uid"])
        tags = [{"is_prompt": True, "status": "pending", "global_steps": self.global_steps} for _ in uids]
        tq.kv_batch_put(keys=uids, partition_id="train", tags=tags)
        self.agent_loop_manager.generate_sequences(batch)
        sampled, _ = self.router.raw_sample(global_steps=self.global_steps, partition_id="train", batch_size=len(uids))
        data = tq.kv_batch_get(keys=sampled.keys, partition_id=sampled.partition_id, select_fields=["extra_fields"])
        index_of = dict(zip(uids, indices, strict=True))
        last: dict[str, tuple[int, dict]] = {}  # episode -> its scored (last) row's fields
        for key, fields in zip(sampled.keys, as_list(data["extra_fields"]), strict=True):
            row = RowKey.parse(key)
            if row.episode not in last or last[row.episode][0] < row.index:
                last[row.episode] = (row.index, fields)
        tq.kv_clear(keys=list(sampled.keys), partition_id=sampled.partition_id)
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for episode, (_, fields) in last.items():
            info = fields.get("reward_extra_info", {})
            out[index_of[RowKey.parse(f"{episode}_0").uid]].append({"acc": float(info.get("acc", 0.0)), PLAN_FIELD: fields.get(PLAN_FIELD)})  # fmt: skip
        return out

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        metrics.update(self._reward_metrics(batch))

    def _reward_metrics(self, batch: KVBatchMeta) -> dict[str, float]:
        """The trained rows' role reward as the reward computed it, per role: score, correctness (for an MTA row
        the mean over its K RA answers), answers behind each score (K for the MTA), and the plan-leak rate."""
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        by_role: dict[str, list[dict]] = defaultdict(list)
        for fields in as_list(data["extra_fields"]):
            info = (fields or {}).get("reward_extra_info") or {}
            if "ra_answers" in info:  # a scored row
                by_role[str(getattr(fields.get(ROLE_FIELD), "value", fields.get(ROLE_FIELD)))].append(info)
        return {
            f"{ALG1}{role}/{name}": float(np.mean([float(info[name]) for info in infos]))
            for role, infos in by_role.items()
            for name in ("score", "acc", "ra_answers", "plan_leak")
            if all(name in info for info in infos)
        }

    # -- checkpoints --------------------------------------------------------------------------------------------------

    def _schedule_state(self) -> dict[str, Any]:
        return {"algorithm1": OmegaConf.to_container(OmegaConf.structured(self.alg1)), "state": self.state.to_dict()}

    def _restore_schedule(self, saved: dict[str, Any], folder: str) -> None:
        now = OmegaConf.to_container(OmegaConf.structured(self.alg1))
        if saved.get("algorithm1") != now:
            raise RuntimeError(f"{folder}: trained with {CONFIG_PATH}={saved.get('algorithm1')}, now {now}")
        self.state = Algorithm1State.from_dict(saved["state"])


__all__ = ["TRAINER_MODE", "Algorithm1Trainer"]
