"""Start-up checks of the knobs ReMA reads from veRL's own blocks (trainer, agent loop, estimator, policy loss,
reward), each failure naming the full key, the value and what is allowed.

Why here and not in veRL: veRL validates the shape of its config but resolves registry names (trainer mode,
agent loop, advantage estimator, policy loss, reward function) only when it first uses them, inside a Ray
worker or after the first rollout; and it cannot know which combinations ReMA's components need (per-role
advantage groups need ReMA's trainer modes; the turn count of the ``turn`` aggregation is only counted in
veRL's FSDP engine). :func:`check_knobs` is called by :func:`verl_rema.checks.check_config`, before Ray starts.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_rema.protocol import TrainerMode
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig

ACTOR = "actor_rollout_ref.actor"
ROLLOUT = "actor_rollout_ref.rollout"
POLICY_LOSS = f"{ACTOR}.policy_loss"
REWARD_FN = "reward.custom_reward_function"
# Trainer modes that hand each row's role to the estimators and size mini-batches in episodes (ReMA's own).
REMA_TRAINER_MODES: tuple[str, ...] = tuple(mode.value for mode in TrainerMode)
REMA_AGENT_LOOPS: tuple[str, ...] = ("rema", "rema_algorithm1")
ROLE_GROUPED_ESTIMATORS: tuple[str, ...] = ("rema_grpo", "softrank")
SOFTRANK_KNOBS: tuple[str, ...] = ("softrank_temperature", "softrank_offset")
TURN_COUNT_STRATEGIES: tuple[str, ...] = ("fsdp", "fsdp2")  # engines patches/turn_count.py counts turns in
TURN_LOSS = "rema_turn"


def fail(message: str) -> None:
    raise ValueError(f"verl-rema config: {message}")


def _registries() -> tuple[dict, dict, dict, dict]:
    """veRL's registries with every verl-rema component registered (as in a Ray worker)."""
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    import verl_rema.register  # noqa: F401  (idempotent: registers trainer modes, loops, losses, estimators)

    return TRAINER_REGISTRY, _agent_loop_registry, ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY


def _positive_int(config: DictConfig, key: str) -> int:
    value = OmegaConf.select(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(f"{key}={value!r} must be a positive integer")
    return value


def _check_sizes(config: DictConfig) -> None:
    for key in ("data.train_batch_size", f"{ROLLOUT}.n", f"{ACTOR}.ppo_mini_batch_size", f"{ACTOR}.ppo_epochs"):
        _positive_int(config, key)


def _check_trainer(config: DictConfig, trainers: dict, loops: dict) -> str | None:
    """The v1 trainer, a registered mode, a registered agent loop; ReMA's loops only under ReMA's modes."""
    use_v1 = OmegaConf.select(config, "trainer.use_v1")
    if use_v1 is not True:
        fail(
            f"trainer.use_v1={use_v1!r}: verl-rema runs on veRL's v1 trainer only (its trainer modes, the TransferQueue "
            "rows of the rema agent loop); allowed: true"
        )
    mode = OmegaConf.select(config, "trainer.v1.trainer_mode")
    if mode not in trainers:
        fail(f"trainer.v1.trainer_mode={mode!r} is not a registered trainer mode; allowed: {sorted(trainers)}")
    loop = OmegaConf.select(config, f"{ROLLOUT}.agent.default_agent_loop")
    if OmegaConf.select(config, f"{ROLLOUT}.agent.agent_loop_config_path") is None and loop not in loops:
        fail(f"{ROLLOUT}.agent.default_agent_loop={loop!r} is not a registered agent loop; allowed: {sorted(loops)}")
    if loop in REMA_AGENT_LOOPS and mode not in REMA_TRAINER_MODES:
        fail(
            f"{ROLLOUT}.agent.default_agent_loop={loop} leaves one row per role and needs one of ReMA's trainer modes "
            f"(episode mini-batches, roles for the estimators); got trainer.v1.trainer_mode={mode}, allowed: "
            f"{list(REMA_TRAINER_MODES)}"
        )
    return mode


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_algorithm(config: DictConfig, estimators: dict, mode: str | None) -> None:
    """A registered estimator; softrank's knobs typed, in range and only with softrank; GRPO's switch a bool."""
    algorithm = OmegaConf.select(config, "algorithm")
    estimator = algorithm.get("adv_estimator")
    if estimator not in estimators:
        fail(f"algorithm.adv_estimator={estimator!r} is not a registered estimator; allowed: {sorted(estimators)}")
    if estimator in ROLE_GROUPED_ESTIMATORS and mode not in REMA_TRAINER_MODES:
        fail(
            f"algorithm.adv_estimator={estimator} groups per (prompt, role), roles that only ReMA's trainer modes "
            f"supply; got trainer.v1.trainer_mode={mode}, allowed: {list(REMA_TRAINER_MODES)}"
        )
    from verl.trainer.config import AlgoConfig

    known = {f.name for f in dataclasses.fields(AlgoConfig)} | set(SOFTRANK_KNOBS)
    unknown = sorted(set(algorithm.keys()) - known)
    if unknown:  # veRL's v1 trainer reads algorithm.* by name and would ignore a typo
        fail(f"unknown key algorithm.{unknown[0]}; allowed: {sorted(known - {'_target_'})}")
    set_knobs = [name for name in SOFTRANK_KNOBS if algorithm.get(name) is not None]
    if set_knobs and estimator != "softrank":
        fail(f"algorithm.{set_knobs[0]} only applies to algorithm.adv_estimator=softrank; got {estimator}")
    temperature, offset = algorithm.get("softrank_temperature"), algorithm.get("softrank_offset")
    if temperature is not None and not (_number(temperature) and temperature >= 0):
        fail(f"algorithm.softrank_temperature={temperature!r} must be a number >= 0 (0: hard ranks)")
    if offset is not None and not (_number(offset) and 0 <= offset <= 0.5):
        fail(f"algorithm.softrank_offset={offset!r} must be a number in [0, 0.5]")
    norm = algorithm.get("norm_adv_by_std_in_grpo")
    if norm is not None and not isinstance(norm, bool):
        fail(f"algorithm.norm_adv_by_std_in_grpo={norm!r} must be true or false")


def _check_loss_keys(block: DictConfig) -> None:
    """Every key of the policy-loss block is a field of its ``_target_`` class (named with the allowed ones)."""
    from hydra.utils import get_class

    target = str(block.get("_target_"))
    try:
        fields = {f.name for f in dataclasses.fields(get_class(target))}
    except Exception as error:  # noqa: BLE001  (not importable, or not a dataclass)
        fail(f"{POLICY_LOSS}._target_={target} is not a policy-loss config class: {type(error).__name__}: {error}")
    unknown = sorted(set(block.keys()) - fields)
    if unknown:
        hint = ""
        if any(k.startswith("turn_") for k in unknown) and not target.endswith("RemaTurnLossConfig"):
            hint = f"; the turn_* keys need {POLICY_LOSS}._target_=verl_rema.losses.config.RemaTurnLossConfig"
        fail(f"unknown key {POLICY_LOSS}.{unknown[0]} for {target}; allowed: {sorted(fields - {'_target_'})}{hint}")


def _check_loss(config: DictConfig, losses: dict, settings: ReMARolloutConfig) -> None:
    """A registered policy loss; the turn-level loss needs turns to weigh and, for ``turn``, an engine that counts."""
    actor = OmegaConf.select(config, ACTOR)
    loss_mode = OmegaConf.select(config, f"{POLICY_LOSS}.loss_mode")
    if loss_mode not in losses:
        fail(f"{POLICY_LOSS}.loss_mode={loss_mode!r} is not a registered policy loss; allowed: {sorted(losses)}")
    _check_loss_keys(OmegaConf.select(config, POLICY_LOSS))
    if loss_mode != TURN_LOSS:
        return
    if len(settings.roles) < 2:
        fail(
            f"{POLICY_LOSS}.loss_mode={TURN_LOSS} weighs the turns of a two-role dialogue; {CONFIG_PATH}.prompt_set="
            f"{settings.prompt_set} has one role (one turn a row: a sequence-level ratio). Use loss_mode=vanilla, "
            "or a prompt set with a meta role"
        )
    aggregation = OmegaConf.select(config, f"{POLICY_LOSS}.turn_aggregation", default="trajectory")
    strategy = actor.get("strategy")
    if aggregation == "turn" and strategy not in TURN_COUNT_STRATEGIES:
        fail(
            f"{POLICY_LOSS}.turn_aggregation=turn needs the global turn count, which verl-rema counts in veRL's FSDP "
            f"engine only (patches/turn_count.py); {ACTOR}.strategy={strategy}. Allowed: strategy in "
            f"{list(TURN_COUNT_STRATEGIES)}, or turn_aggregation=trajectory"
        )


def _check_reward(config: DictConfig) -> None:
    """The reward function loads (veRL would find out in a reward worker); role rewards need a model per role."""
    from verl.utils.import_utils import load_extern_object

    from verl_rema.separate.roles import CONFIG_PATH as MODELS
    from verl_rema.separate.roles import separate_models

    path, name = OmegaConf.select(config, f"{REWARD_FN}.path"), OmegaConf.select(config, f"{REWARD_FN}.name")
    if path:
        try:
            load_extern_object(module_path=str(path), object_name=str(name))
        except Exception as error:  # noqa: BLE001  (missing file, import error, missing name: all one message)
            fail(f"{REWARD_FN}.path={path} / {REWARD_FN}.name={name} cannot be loaded: {type(error).__name__}: {error}")
    mode = OmegaConf.select(config, f"{REWARD_FN}.reward_kwargs.reward_mode", default=None)
    if mode == "role" and not separate_models(config):
        fail(
            f"{REWARD_FN}.reward_kwargs.reward_mode=role scores each role's row by its own rule, which needs a model "
            f"per role ({MODELS}); with one shared model use reward_mode=binary"
        )


def _check_blocks(config: DictConfig) -> None:
    """``rema.schedule`` and ``rema.algorithm1`` are checked whatever the mode: a bad value is never silently unused
    (a valid block without a model per role is harmless: switching a recipe to one shared model keeps it)."""
    from verl_rema.separate.algorithm1 import CONFIG_PATH as ALGORITHM1
    from verl_rema.separate.algorithm1 import Algorithm1Config
    from verl_rema.separate.schedule import CONFIG_PATH as SCHEDULE
    from verl_rema.separate.schedule import ScheduleConfig

    Algorithm1Config.from_config(OmegaConf.select(config, ALGORITHM1, default=None))
    ScheduleConfig.from_config(OmegaConf.select(config, SCHEDULE, default=None))


def check_override_keys(overrides: list[str]) -> None:
    """Command-line overrides of verl-rema's typed blocks name a field of the block. Hydra refuses an unknown key
    too, but names neither the fields nor the right spelling (and suggests a ``+`` that fails as well)."""
    from verl_rema.separate.algorithm1 import CONFIG_PATH as ALGORITHM1
    from verl_rema.separate.algorithm1 import Algorithm1Config
    from verl_rema.separate.schedule import CONFIG_PATH as SCHEDULE
    from verl_rema.separate.schedule import ScheduleConfig

    blocks = {CONFIG_PATH: ReMARolloutConfig, SCHEDULE: ScheduleConfig, ALGORITHM1: Algorithm1Config}
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key = item.split("=", 1)[0].lstrip("+~")
        for block, schema in blocks.items():
            if key.startswith(f"{block}."):
                name = key[len(block) + 1 :].split(".")[0]  # a per-role mapping's sub-key belongs to its field
                allowed = sorted(f for f in schema.__dataclass_fields__ if f != "_target_")
                if name not in allowed:
                    fail(f"unknown key {key}; {block} has: {allowed}")


def check_knobs(config: DictConfig, settings: ReMARolloutConfig) -> None:
    """Raise ValueError on the first knob ReMA reads from veRL's blocks that cannot work (see module doc)."""
    trainers, loops, estimators, losses = _registries()
    _check_sizes(config)
    mode = _check_trainer(config, trainers, loops)
    _check_algorithm(config, estimators, mode)
    _check_loss(config, losses, settings)
    _check_reward(config)
    _check_blocks(config)


__all__ = ["REMA_TRAINER_MODES", "check_knobs", "check_override_keys"]
