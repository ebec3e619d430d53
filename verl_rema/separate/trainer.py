"""Two trainable models in one veRL run: ``trainer.v1.trainer_mode=rema_separate``.

The MTA's model is veRL's own hybrid actor-rollout worker group and server set (built by veRL's ``_setup``); the
RA's is a second worker group on the same resource pool with its own vLLM server set (``servers.py``) and weight
sync. The agent loop sends each role's turns to its role's servers (``client.py``), so both models generate every
episode. Each step, the model(s) of ``rema.schedule`` train on their own role's rows (``router.py``): veRL's
``_step_once`` runs once per trained role with ``actor_rollout_wg`` and ``config`` pointing at that role, so every
trainer-side knob (mini-batch, temperature, lr) is the role's own. Both models' weights are pushed to their servers
after every step. Checkpoints hold the MTA's model at veRL's path (``actor/``), the RA's beside it
(``actor_reasoning/``), and the schedule (``rema_schedule.json``); resuming restores both and continues the schedule.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import ray
from omegaconf import DictConfig, OmegaConf, open_dict
from transfer_queue import KVBatchMeta
from verl.checkpoint_engine import CheckpointEngineManager
from verl.single_controller.ray import RayClassWithInitArgs, RayWorkerGroup
from verl.trainer.ppo.utils import Role as VerlRole
from verl.trainer.ppo.v1 import register_trainer
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.rollout.llm_server import LLMServerClient, LLMServerManager

from verl_rema.protocol import Role, TrainerMode
from verl_rema.separate.client import RoleRoutingClient
from verl_rema.separate.roles import CONFIG_PATH, check_same_tokenizer, role_configs
from verl_rema.separate.router import RoleRouter, role_metrics
from verl_rema.separate.schedule import CONFIG_PATH as SCHEDULE_PATH
from verl_rema.separate.schedule import ScheduleConfig
from verl_rema.separate.servers import check_upstream, role_replica_class
from verl_rema.separate.worker import RoleWorker
from verl_rema.trainer.rema_trainer import ReMATrainer
from verl_rema.trainer.step_metrics import PREFIX

logger = logging.getLogger(__name__)

TRAINER_MODE = TrainerMode.SEPARATE.value
PRIMARY, PARTNER = Role.META, Role.REASONING
STATE_FILE = "rema_schedule.json"


def partner_dir(role: Role) -> str:
    return f"actor_{role.value}"


class _CheckpointFanout:
    """Both roles' weight sync, driven by veRL's hooks as one ``CheckpointEngineManager``."""

    def __init__(self, managers: dict[Role, CheckpointEngineManager]):
        self.managers = managers

    def update_weights(self, global_steps: int | None = None) -> None:
        for manager in self.managers.values():  # one after the other: their peaks do not overlap
            manager.update_weights(global_steps)

    def sleep_replicas(self) -> None:
        for manager in self.managers.values():
            manager.sleep_replicas()

    def __getattr__(self, name: str) -> Any:  # wake_up_replicas, abort_replicas, ...: every role's
        methods = [getattr(manager, name) for manager in self.managers.values()]
        return lambda *args, **kwargs: [method(*args, **kwargs) for method in methods]


@register_trainer(TRAINER_MODE)
class ReMASeparateTrainer(ReMATrainer):
    """``ReMATrainer`` with a model per role; see the module docstring."""

    def __init__(self, config: DictConfig, *args: Any, **kwargs: Any):
        check_upstream()
        self.schedule = ScheduleConfig.from_config(OmegaConf.select(config, SCHEDULE_PATH, default=None))
        self._overrides = role_configs(config)  # validated now; the partner's is rebuilt after veRL's setup
        with open_dict(config):  # the primary role's override applies to the config veRL builds its workers from
            config.actor_rollout_ref = self._overrides[PRIMARY].actor_rollout_ref
        super().__init__(config, *args, **kwargs)
        self.rows_per_episode = 1  # each model updates on its own role's rows: one row per episode
        self.role_wg: dict[Role, Any] = {}
        self.role_config: dict[Role, DictConfig] = {}

    # -- set-up -------------------------------------------------------------------------------------------------

    def _role_horizon(self, role: Role) -> int:
        """Steps the role's model trains (its LR schedule's horizon, counted from ``rema.schedule``)."""
        total = int(self.total_training_steps)
        return sum(1 for step in range(1, total + 1) if role in self.schedule.roles_at(step))

    def _init_resource_pool_mgr(self) -> None:
        super()._init_resource_pool_mgr()
        with open_dict(self.config):
            self.config.actor_rollout_ref.actor.optim.total_training_steps = self._role_horizon(PRIMARY)

    def _setup(self) -> None:
        self._partner_ready = False
        super()._setup()  # the MTA: veRL's worker group, server set, weight sync (checkpoint load deferred)
        self.role_config = {PRIMARY: self.config, PARTNER: self._partner_config()}
        check_same_tokenizer({role: cfg.actor_rollout_ref.model.path for role, cfg in self.role_config.items()})
        actor_role = next(r for r in (VerlRole.ActorRolloutRef, VerlRole.ActorRollout) if r in self.role_worker_mapping)
        pool = self.resource_pool_manager.get_resource_pool(actor_role)
        partner_cfg = self.role_config[PARTNER]
        partner_wg = RayWorkerGroup(
            resource_pool=pool,
            ray_cls_with_init=RayClassWithInitArgs(
                cls=ray.remote(RoleWorker), config=partner_cfg.actor_rollout_ref, role=str(actor_role),
                rema_role=PARTNER.value,
            ),
            device_name=self.config.trainer.device,
        )  # fmt: skip
        partner_wg.init_model()
        self.role_wg = {PRIMARY: self.actor_rollout_wg, PARTNER: partner_wg}
        manager_cls = type("RoleLLMServerManager", (LLMServerManager,), {"rollout_replica_class": role_replica_class(PARTNER)})  # fmt: skip
        self.partner_server_manager = manager_cls.create(
            config=partner_cfg, worker_group=partner_wg, rollout_resource_pool=pool
        )
        engine_config = omega_conf_to_dataclass(partner_cfg.actor_rollout_ref.rollout.checkpoint_engine)
        engine_config.backend = "naive"
        partner_sync = CheckpointEngineManager(
            config=engine_config, actor_wg=partner_wg, replicas=self.partner_server_manager.get_replicas()
        )
        partner_sync.sleep_replicas()
        self.checkpoint_manager = _CheckpointFanout({PRIMARY: self.checkpoint_manager, PARTNER: partner_sync})
        self.router = RoleRouter(self.replay_buffer.sample)
        self.replay_buffer.sample = self.router.sample
        self._partner_ready = True
        self._load_checkpoint()

    def _partner_config(self) -> DictConfig:
        config = role_configs(self.config)[PARTNER]  # the trainer's config now, with the partner's override
        with open_dict(config):
            config.actor_rollout_ref.actor.optim.total_training_steps = self._role_horizon(PARTNER)
        return config

    def get_llm_client(self) -> LLMServerClient:
        clients = {PRIMARY.value: super().get_llm_client(), PARTNER.value: self.partner_server_manager.get_client()}
        return RoleRoutingClient(self.config, clients)

    def _rollout_server_managers(self) -> list:
        return [*super()._rollout_server_managers(), self.partner_server_manager]

    # -- a step: one update per trained role -----------------------------------------------------------------------

    def _use_role(self, role: Role) -> None:
        self.actor_rollout_wg = self.role_wg[role]
        if getattr(self, "ref_policy_wg", None) is not None and not self.ref_in_actor:
            self.ref_policy_wg = self.role_wg[role]  # ActorRolloutRef: each role's reference is its own init
        self.config = self.role_config[role]

    def _trained_roles(self) -> tuple[Role, ...]:
        """The role(s) whose model trains this step (``rema.schedule``; Algorithm 1 decides by its phase)."""
        return self.schedule.roles_at(self.global_steps)

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int) -> KVBatchMeta:
        roles = self._trained_roles()
        self.router.plan(roles)
        keys, tags, partition = [], [], "train"
        try:
            for role in roles:
                self._use_role(role)
                update: dict = {}
                batch = super()._step_once(update, timing_raw, sample_batch_size)
                metrics.update(role_metrics(update, role, keep_plain=len(roles) == 1))
                keys, tags, partition = keys + list(batch.keys), tags + list(batch.tags), batch.partition_id
        finally:
            self._use_role(PRIMARY)
        metrics.update({f"{PREFIX}{role.value}/trained": float(role in roles) for role in Role})
        metrics.update(self._schedule_metrics())
        return KVBatchMeta(partition_id=partition, keys=keys, tags=tags)

    def _schedule_metrics(self) -> dict[str, float]:
        return {f"{PREFIX}schedule/step_in_phase": float(self.schedule.step_in_phase(self.global_steps))}

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        metrics.update(self.router.stats)  # rows and shares of both roles, taken before routing

    # -- checkpoints ----------------------------------------------------------------------------------------------

    def _step_folder(self) -> str:
        root = self.config.trainer.default_local_dir
        return os.path.join(os.path.abspath(root), f"global_step_{self.global_steps}")

    def _save_checkpoint(self) -> None:
        """The RA's model and the schedule first; veRL then saves the MTA's model and data state and writes the
        latest-step marker last, so a checkpoint cut short is never picked as the latest."""
        folder = self._step_folder()
        max_keep = self.config.trainer.get("max_actor_ckpt_to_keep", None)
        self.role_wg[PARTNER].save_checkpoint(
            os.path.join(folder, partner_dir(PARTNER)), None, self.global_steps, max_ckpt_to_keep=max_keep
        )
        with open(os.path.join(folder, STATE_FILE), "w") as file:
            json.dump({"global_step": self.global_steps, "schedule": self._schedule_state()}, file)
        super()._save_checkpoint()

    def _schedule_state(self) -> dict[str, Any]:
        """What the checkpoint records of the schedule; :meth:`_restore_schedule` reads it back."""
        return self.schedule.state()

    def _restore_schedule(self, saved: dict[str, Any], folder: str) -> None:
        if saved != self.schedule.state():
            raise RuntimeError(
                f"{folder}: trained with {SCHEDULE_PATH}={saved}, now {self.schedule.state()}; resume with the same "
                f"schedule (or start a new {CONFIG_PATH} run)"
            )

    def _load_checkpoint(self) -> None:
        if not getattr(self, "_partner_ready", False):
            self.global_steps = 0  # veRL's _setup calls this before the RA's model exists: done again below
            return
        super()._load_checkpoint()
        if self.global_steps == 0:
            return
        mode = self.config.trainer.resume_mode
        folder = self.config.trainer.resume_from_path if mode == "resume_path" else self._step_folder()
        state_path = os.path.join(folder, STATE_FILE)
        partner_path = os.path.join(folder, partner_dir(PARTNER))
        if not os.path.isfile(state_path) or not os.path.isdir(partner_path):
            raise RuntimeError(
                f"{folder}: not a separate-models checkpoint (no {STATE_FILE} or {partner_dir(PARTNER)}/)"
            )
        with open(state_path) as file:
            self._restore_schedule(json.load(file)["schedule"], folder)
        self.role_wg[PARTNER].load_checkpoint(
            local_path=partner_path, del_local_after_load=self.config.trainer.del_local_ckpt_after_load
        )


__all__ = ["TRAINER_MODE", "ReMASeparateTrainer"]
