"""ReMA's aligned math reward as a veRL custom reward function (spec §3).

Use::

    reward.custom_reward_function.path=pkg://verl_rema.rewards.math_reward
    reward.custom_reward_function.name=compute_score
    reward.custom_reward_function.reward_kwargs.mask_unfinished_reward=true   # default true
    +reward.custom_reward_function.reward_kwargs.timeout_s=10                 # per item, default 10
    +reward.custom_reward_function.reward_kwargs.num_procs=2                  # per reward worker, default min(4, CPUs)

(``+`` where the key is not in the composed config yet.) veRL 0.9.1's reward managers (``naive`` and friends) call
``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)`` once per sample, a
synchronous function run in a thread of the reward-loop worker's default executor; it stays synchronous because
its wait (on a worker socket) releases the GIL anyway. The returned dict's ``score`` is the reward; every key
becomes a per-sample field of the batch (veRL stacks them by the first sample's keys, so every call returns the
same five keys) and, when numeric, a validation metric per data source.

What is scored: the ReMA rollout puts the reasoning agent's last message in ``extra_info["rema_final_answer"]``
and the episode's finish reason in ``extra_info["rema_finish_reason"]`` (its ``extra_fields``, which veRL's reward
loop merges into ``extra_info``); without them (chain-of-thought
baseline) ``solution_str`` is scored and nothing is masked. The verifier is math-verify, gold wrapped as
``\\boxed{gt}``, prediction parsed with expression and LaTeX extraction, in a process pool with a hard per-item
deadline (:mod:`.verifier_pool`): a timeout, a verifier crash or an unparsable answer scores 0.
"""

from __future__ import annotations

import logging
import numbers
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from verl_rema.rewards.verifier_pool import VerifyResult, get_pool

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
FINISH_NORMAL = "normal"
FINISH_REASONS: tuple[str, ...] = ("normal", "max_turns", "context_overflow", "truncated")
NO_FINISH_REASON = "n/a"
"""``finish_reason`` reported when the sample carries none (single-agent baseline): nothing is masked."""

FINAL_ANSWER_KEY = "rema_final_answer"
FINISH_REASON_KEY = "rema_finish_reason"
DIALOGUE_METRICS_KEY = "rema_metrics"
# Keyword arguments veRL itself may pass to a custom reward function; anything else unknown is probably a typo.
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
_warned_kwargs: set[str] = set()
_warn_lock = threading.Lock()


def _warn_unknown_kwargs(kwargs: Mapping[str, Any]) -> None:
    unknown = set(kwargs) - _VERL_KWARGS
    with _warn_lock:
        new = unknown - _warned_kwargs
        _warned_kwargs.update(new)
    if new:
        logger.warning(
            "verl_rema math reward: ignoring unknown reward_kwargs %s (known: timeout_s, mask_unfinished_reward, "
            "num_procs)",
            sorted(new),
        )


def _as_bool(value: Any, name: str) -> bool:
    """Hydra overrides may arrive as strings; accept the usual spellings and nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def gold_answers(ground_truth: Any) -> tuple[str, ...]:
    """One or more gold answers as strings (a list means: any of them is correct); ``()`` if there is none.

    A row without a usable gold answer is a data bug: it scores 0 with status ``"error"`` (and a warning)
    rather than stopping a long run.
    """
    if isinstance(ground_truth, str):
        return (ground_truth,)
    if isinstance(ground_truth, numbers.Real) and not isinstance(ground_truth, bool):
        value = float(ground_truth)
        return (str(int(value)) if value.is_integer() else str(ground_truth),)
    if isinstance(ground_truth, Iterable) and not isinstance(ground_truth, Mapping | bytes):
        return tuple(answer for item in ground_truth for answer in gold_answers(item))
    logger.warning("verl_rema math reward: no usable ground truth (%r); scoring 0", ground_truth)
    return ()


def text_to_score(solution_str: str, extra_info: Mapping[str, Any] | None) -> str:
    """The ReMA reasoning agent's final message when the rollout supplies it, else the whole response."""
    if extra_info:
        final = extra_info.get(FINAL_ANSWER_KEY)
        if isinstance(final, str):
            return final
    return solution_str if isinstance(solution_str, str) else ""


def finish_reason_of(extra_info: Mapping[str, Any] | None) -> str:
    """The episode's finish reason, or ``"n/a"`` when the sample has none (then nothing is masked)."""
    reason = extra_info.get(FINISH_REASON_KEY) if extra_info else None
    if reason is None:
        return NO_FINISH_REASON
    return str(getattr(reason, "value", reason))


def _reward_dict(verdict: VerifyResult, finish_reason: str, mask_unfinished_reward: bool) -> dict[str, Any]:
    acc = 1.0 if verdict.correct else 0.0
    masked = mask_unfinished_reward and finish_reason not in (FINISH_NORMAL, NO_FINISH_REASON)
    return {
        "score": 0.0 if masked else acc,
        "acc": acc,
        "finish_reason": finish_reason,
        "answer_extracted": bool(verdict.answer_extracted),
        "verify_status": verdict.status,
    }


def compute_score(
    data_source: str | None = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mask_unfinished_reward: bool = True,
    num_procs: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """veRL custom reward: binary math-verify correctness, 0 for unfinished ReMA episodes.

    Returns ``score`` (the reward, masked), ``acc`` (correctness 0/1, unmasked), ``finish_reason``,
    ``answer_extracted`` (bool) and ``verify_status`` ("ok", "timeout", "error" or "no_answer"), plus the
    episode's dialogue metrics (``rema/...``) when the ReMA rollout supplies them: veRL averages every
    numeric extra key per data source in validation, which makes them ``val-aux/<source>/rema/...``.
    """
    if kwargs:
        _warn_unknown_kwargs(kwargs)
    mask = _as_bool(mask_unfinished_reward, "mask_unfinished_reward")
    try:
        timeout = float(timeout_s)
    except (TypeError, ValueError):
        raise ValueError(f"timeout_s must be a number of seconds, got {timeout_s!r}") from None
    verdict = get_pool(num_procs).verify(gold_answers(ground_truth), text_to_score(solution_str, extra_info), timeout)
    return {**_reward_dict(verdict, finish_reason_of(extra_info), mask), **dialogue_metrics_of(extra_info)}


def dialogue_metrics_of(extra_info: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The rollout's per-episode ``rema_metrics`` (the same keys for every episode; None where undefined,
    which veRL's validation reducer skips)."""
    metrics = (extra_info or {}).get(DIALOGUE_METRICS_KEY)
    if not isinstance(metrics, Mapping):
        return {}
    return {str(key): None if value is None else float(value) for key, value in metrics.items()}


def score_many(
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mask_unfinished_reward: bool = True,
    num_procs: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`compute_score` over a batch, in parallel over the verifier processes, in input order."""
    if len(solution_strs) != len(ground_truths):
        raise ValueError(f"{len(solution_strs)} solutions for {len(ground_truths)} ground truths")
    infos: Sequence[Mapping[str, Any] | None] = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    if len(infos) != len(solution_strs):
        raise ValueError(f"{len(infos)} extra_infos for {len(solution_strs)} solutions")
    if not solution_strs:
        return []
    pool = get_pool(num_procs)
    with ThreadPoolExecutor(max_workers=min(pool.num_procs, len(solution_strs))) as executor:
        return list(
            executor.map(
                lambda s, g, e: compute_score(
                    None, s, g, e, timeout_s=timeout_s, mask_unfinished_reward=mask_unfinished_reward
                ),
                solution_strs,
                ground_truths,
                infos,
            )
        )


def reward_stats() -> dict[str, int]:
    """Counts of this process's verifier outcomes: per status, ``killed`` (hard timeouts), ``crashed``, ``spawned``."""
    return get_pool().stats()
