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

from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig, total_tokens

MATH_REWARD_MODULE = "verl_rema.rewards.math_reward"
ACTOR = "actor_rollout_ref.actor"
ROLLOUT = "actor_rollout_ref.rollout"


def rollout_settings(config: DictConfig) -> ReMARolloutConfig:
    """The ``rema.rollout`` block, instantiated and range-checked."""
    return ReMARolloutConfig.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))


def rows_per_episode(config: DictConfig) -> int:
    """Rows each episode yields: one per role of the prompt set with the ``rema`` agent loop, else one."""
    if OmegaConf.select(config, f"{ROLLOUT}.agent.default_agent_loop", default=None) != "rema":
        return 1
    return len(rollout_settings(config).roles)


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


def _check_reward_kwargs(config: DictConfig) -> None:
    path = str(OmegaConf.select(config, "reward.custom_reward_function.path", default="") or "")
    if MATH_REWARD_MODULE not in path.replace("/", ".").removesuffix(".py"):
        return
    from verl_rema.rewards.math_reward import MathRewardKwargs

    kwargs: Any = OmegaConf.select(config, "reward.custom_reward_function.reward_kwargs", default=None) or {}
    MathRewardKwargs.parse(OmegaConf.to_container(kwargs, resolve=True) if OmegaConf.is_config(kwargs) else kwargs, strict=True)  # fmt: skip


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


def check_config(config: DictConfig) -> None:
    """Raise ValueError on the first setting of verl-rema's that cannot work."""
    settings = rollout_settings(config)
    _check_reward_kwargs(config)
    _check_lengths(config, settings)
    _check_batches(config)


__all__ = ["check_config", "data_parallel_size", "rollout_settings", "rows_per_episode"]
