"""What verl-rema can check in a composed config before Ray starts, each failure naming the key and a valid choice.

veRL validates its own keys (``verl.utils.config.validate_config``); these are the plug-in's: its typed blocks
(``rema.rollout``, the math reward's kwargs) and the combinations a recipe or an override can get wrong, which veRL
would otherwise only discover inside a Ray worker (a row longer than the engine's window or a token budget, rows
that do not divide into micro-batches). The entry points call :func:`check_config` right after composing.

Rows. With the ``rema`` agent loop every episode yields one row per role of the prompt set (complete role groups),
so a step has ``train_batch_size x rollout.n x roles`` rows and the ``rema_sync`` trainer's mini-batches hold
``ppo_mini_batch_size x rollout.n`` episodes, i.e. that many times ``roles`` rows.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_rema.protocol import TrainerMode
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig, total_tokens

MATH_REWARD_MODULE = "verl_rema.rewards.math_reward"
JUDGE_REWARD_MODULE = "verl_rema.rewards.judge_reward"
SEPARATE_MODES: tuple[str, ...] = (
    TrainerMode.SEPARATE.value,
    TrainerMode.ALGORITHM1.value,
    TrainerMode.SEPARATE_EVAL.value,
)
ACTOR = "actor_rollout_ref.actor"
ROLLOUT = "actor_rollout_ref.rollout"


def rollout_settings(config: DictConfig) -> ReMARolloutConfig:
    """The ``rema.rollout`` block, instantiated and range-checked."""
    return ReMARolloutConfig.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))


def rows_per_episode(config: DictConfig) -> int:
    """Rows an update sees per episode: one per role of the prompt set with ReMA's agent loops and one shared
    model; one with a model per role (each model updates on its own role's rows) or another agent loop."""
    from verl_rema.separate.roles import separate_models

    if OmegaConf.select(config, f"{ROLLOUT}.agent.default_agent_loop", default=None) not in ("rema", "rema_algorithm1"):
        return 1
    return 1 if separate_models(config) else len(rollout_settings(config).roles)


def data_parallel_size(config: DictConfig) -> int:
    """The actor's data-parallel world size (FSDP: all GPUs over Ulysses; Megatron: over TP x PP x CP)."""
    n_gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    actor = OmegaConf.select(config, ACTOR)
    if actor.get("strategy") == "megatron":
        mega = actor.megatron
        return max(n_gpus // (mega.tensor_model_parallel_size * mega.pipeline_model_parallel_size * mega.context_parallel_size), 1)  # fmt: skip
    return max(n_gpus // int(actor.get("ulysses_sequence_parallel_size", 1) or 1), 1)


def _fail(message: str) -> None:
    raise ValueError(f"verl-rema config: {message}")


def _check_reward_kwargs(config: DictConfig, settings: ReMARolloutConfig) -> None:
    """The typed kwargs of our rewards, strictly (a typo'd key fails here, naming it); the judge reward goes with a
    prompt set that shows the RA both responses, and the other way round."""
    from verl_rema.rewards.judge_reward import JudgeRewardKwargs
    from verl_rema.rewards.math_reward import MathRewardKwargs

    path = str(OmegaConf.select(config, "reward.custom_reward_function.path", default="") or "")
    module = path.replace("/", ".").removesuffix(".py")
    kwargs: Any = OmegaConf.select(config, "reward.custom_reward_function.reward_kwargs", default=None) or {}
    values = OmegaConf.to_container(kwargs, resolve=True) if OmegaConf.is_config(kwargs) else dict(kwargs)
    judge_reward = JUDGE_REWARD_MODULE in module
    if MATH_REWARD_MODULE in module:
        MathRewardKwargs.parse(values, strict=True)
    elif judge_reward:
        JudgeRewardKwargs.parse(values, strict=True)
    judge_prompts = {"response_a", "response_b"} <= set(settings.prompts.row_fields)
    if judge_reward != judge_prompts and (judge_reward or MATH_REWARD_MODULE in module):
        _fail(
            f"reward.custom_reward_function.path={path} with {CONFIG_PATH}.prompt_set={settings.prompt_set}: the judge "
            f"reward ({JUDGE_REWARD_MODULE}) goes with a judge_* prompt set (one whose row_fields hold response_a and "
            f"response_b), the math reward with the others"
        )


def _check_lengths(config: DictConfig, settings: ReMARolloutConfig) -> None:
    """The longest row must fit the engine's window and every token budget of the trainer."""
    row = settings.row_tokens(total_tokens(config))
    max_model_len = OmegaConf.select(config, f"{ROLLOUT}.max_model_len")
    if max_model_len is not None and int(max_model_len) < row:
        _fail(
            f"{ROLLOUT}.max_model_len={max_model_len} is shorter than the longest dialogue row ({row} tokens: a role's "
            f"{CONFIG_PATH}.max_context_tokens plus its max_tokens_per_message); the engine would cut replies. "
            f"Set {ROLLOUT}.max_model_len=${{rema_row_tokens:}} (= {row}) or shorten the dialogue."
        )
    budgets = [(f"{ACTOR}.ppo_max_token_len_per_gpu", f"{ACTOR}.use_dynamic_bsz")]
    budgets.append((f"{ROLLOUT}.log_prob_max_token_len_per_gpu", f"{ROLLOUT}.log_prob_use_dynamic_bsz"))
    if OmegaConf.select(config, f"{ACTOR}.use_kl_loss") or OmegaConf.select(config, "algorithm.use_kl_in_reward"):
        budgets.append(("actor_rollout_ref.ref.log_prob_max_token_len_per_gpu", "actor_rollout_ref.ref.log_prob_use_dynamic_bsz"))  # fmt: skip
    for budget, switch in budgets:
        value = OmegaConf.select(config, budget)
        if OmegaConf.select(config, switch) and value is not None and int(value) < row:
            _fail(f"{budget}={value} is smaller than the longest dialogue row ({row} tokens); set it to >= {row}")


def _divisors_hint(rows: int, per_rank: int) -> str:
    fits = [m for m in range(1, min(rows, 64) + 1) if rows % (m * per_rank) == 0][-4:]
    return f"one of {fits}" if fits else "a divisor of the rows per rank"


def _check_batches(config: DictConfig) -> None:
    """Rows must divide into mini-batches, ranks and (with static micro-batches) micro-batches."""
    actor = OmegaConf.select(config, ACTOR)
    n = int(OmegaConf.select(config, f"{ROLLOUT}.n"))
    train, mini = int(config.data.train_batch_size), int(actor.ppo_mini_batch_size)
    if mini < 1 or train % mini:
        _fail(
            f"data.train_batch_size={train} is not a multiple of {ACTOR}.ppo_mini_batch_size={mini} (both count "
            f"prompts); choose a divisor of {train}, e.g. {ACTOR}.ppo_mini_batch_size={math.gcd(train, mini) or train}"
        )
    per_episode = rows_per_episode(config)
    dp = data_parallel_size(config)
    mini_rows, step_rows = mini * n * per_episode, train * n * per_episode
    if mini_rows % dp:
        _fail(
            f"a mini-batch of {mini} prompts x rollout.n={n} x {per_episode} row(s) per episode = {mini_rows} rows "
            f"does not split over {dp} data-parallel ranks; change {ACTOR}.ppo_mini_batch_size or {ROLLOUT}.n"
        )
    if not actor.use_dynamic_bsz:
        micro = actor.get("ppo_micro_batch_size_per_gpu")
        if micro is None or (mini_rows // dp) % int(micro):
            _fail(
                f"{ACTOR}.ppo_micro_batch_size_per_gpu={micro} does not divide the {mini_rows // dp} rows a rank gets "
                f"per mini-batch; set {ACTOR}.use_dynamic_bsz=true (token budgets, any batch) or "
                f"{ACTOR}.ppo_micro_batch_size_per_gpu={_divisors_hint(mini_rows // dp, 1)}"
            )
    for where in (ROLLOUT, "actor_rollout_ref.ref"):
        block = OmegaConf.select(config, where)
        if where.endswith("ref") and not (actor.get("use_kl_loss") or config.algorithm.get("use_kl_in_reward")):
            continue
        micro = block.get("log_prob_micro_batch_size_per_gpu")
        if not block.get("log_prob_use_dynamic_bsz") and micro is not None and (step_rows // dp) % int(micro):
            _fail(
                f"{where}.log_prob_micro_batch_size_per_gpu={micro} does not divide the {step_rows // dp} rows a rank "
                f"gets per step; set {where}.log_prob_use_dynamic_bsz=true or "
                f"{where}.log_prob_micro_batch_size_per_gpu={_divisors_hint(step_rows // dp, 1)}"
            )


def _check_trainer_mode(config: DictConfig, settings: ReMARolloutConfig) -> None:
    from verl_rema.separate.algorithm1 import CONFIG_PATH as ALGORITHM1
    from verl_rema.separate.algorithm1 import Algorithm1Config
    from verl_rema.separate.roles import CONFIG_PATH as MODELS
    from verl_rema.separate.roles import role_configs, separate_models
    from verl_rema.separate.schedule import CONFIG_PATH as SCHEDULE
    from verl_rema.separate.schedule import ScheduleConfig

    mode = OmegaConf.select(config, "trainer.v1.trainer_mode")
    if separate_models(config) != (mode in SEPARATE_MODES):
        _fail(
            f"{MODELS} (a model per role) goes with trainer.v1.trainer_mode={'|'.join(SEPARATE_MODES)} and parameter "
            f"sharing with rema_sync/rema_eval; got trainer_mode={mode} and {MODELS}={OmegaConf.select(config, MODELS)}"
        )
    if separate_models(config):
        if len(settings.roles) < 2:
            _fail(f"{MODELS} needs a prompt set with both roles; {CONFIG_PATH}.prompt_set has only the RA")
        role_configs(config)
        ScheduleConfig.from_config(OmegaConf.select(config, SCHEDULE, default=None))
    loop = OmegaConf.select(config, f"{ROLLOUT}.agent.default_agent_loop")
    if (
        mode == TrainerMode.ALGORITHM1.value and loop != "rema_algorithm1"
    ):  # the loop alone plays plain episodes (evaluation)
        _fail(
            f"Algorithm 1 takes trainer.v1.trainer_mode=rema_algorithm1 with {ROLLOUT}.agent.default_agent_loop="
            f"rema_algorithm1 (its phases' episodes); got {mode} with {loop}"
        )
    if mode == TrainerMode.ALGORITHM1.value:
        Algorithm1Config.from_config(OmegaConf.select(config, ALGORITHM1, default=None))
        if settings.max_turns != 1:
            _fail(f"Algorithm 1 is single-turn: {CONFIG_PATH}.max_turns must be 1, got {settings.max_turns}")


def check_config(config: DictConfig) -> None:
    """Raise ValueError on the first setting of verl-rema's that cannot work."""
    from verl_rema.knob_checks import check_knobs

    settings = rollout_settings(config)
    check_knobs(config, settings)  # registries, trainer/loop/estimator/loss/reward combinations (knob_checks.py)
    _check_trainer_mode(config, settings)
    _check_reward_kwargs(config, settings)
    _check_lengths(config, settings)
    _check_batches(config)


__all__ = ["check_config", "data_parallel_size", "rollout_settings", "rows_per_episode"]
