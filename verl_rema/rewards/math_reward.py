"""ReMA's aligned math reward as a veRL custom reward function (arXiv 2503.09501 App. D.2: binary math-verify
correctness, 0 for an episode that did not finish normally).

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

What is scored: the ReMA rollout puts the reasoning agent's last message and the episode's finish reason in
``extra_info`` (``protocol.FINAL_ANSWER_FIELD``, ``protocol.FINISH_REASON_FIELD``: its ``extra_fields``, which
veRL's reward loop merges into ``extra_info``); without them ``solution_str`` is scored and nothing is masked. The verifier is math-verify, gold wrapped as
``\\boxed{gt}``, prediction parsed with expression and LaTeX extraction, in a process pool with a hard per-item
deadline (:mod:`.verifier_pool`): a timeout, a verifier crash or an unparsable answer scores 0.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from verl_rema.protocol import Role
from verl_rema.rewards.episode import (
    dialogue_metrics_of,
    finish_reason_of,
    is_masked,
    ra_answers_of,
    scored_role,
    text_to_score,
)
from verl_rema.rewards.reward_kwargs import KWARGS_PATH, REWARD_MODES, RewardKwargs
from verl_rema.rewards.role_rewards import MTA_REWARDS, PENALTIES, consistency_reward, mta_reward, ra_reward
from verl_rema.rewards.verifier_pool import VerifyResult, get_pool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MathRewardKwargs(RewardKwargs):
    """``reward.custom_reward_function.reward_kwargs`` of the math reward, typed once.

    Args:
        timeout_s: Per-item verifier deadline; a timeout scores 0 (status ``timeout``).
        mask_unfinished_reward: ``binary``: score 0 unless the episode finished ``normal`` (the reference run).
        num_procs: Verifier processes per reward worker; null = min(4, CPUs).
        reward_mode: ``binary`` (correctness, both roles alike) or ``role``: the paper's role rewards of single-turn
            ReMA with separate models (:mod:`.role_rewards`), by the scored row's role.
        mta_penalty: ``role``: the MTA's -1 for a boxed answer in its plan is ``add``-ed or ``set`` (ambiguous in
            the paper).
        mta_reward: ``role``: ``correctness`` (the mean over the RA answers to the plan) or ``consistency`` (Eq. 14).
    """

    timeout_s: float = 10.0
    mask_unfinished_reward: bool = True
    num_procs: int | None = None
    reward_mode: str = "binary"
    mta_penalty: str = "add"
    mta_reward: str = "correctness"

    REWARD = "math reward"

    def __post_init__(self) -> None:
        self._set_bool("mask_unfinished_reward")
        try:
            timeout = float(self.timeout_s)
        except (TypeError, ValueError):
            raise ValueError(f"{KWARGS_PATH}.timeout_s must be a number of seconds, got {self.timeout_s!r}") from None
        if not timeout > 0:
            raise ValueError(f"{KWARGS_PATH}.timeout_s must be > 0, got {self.timeout_s!r}")
        object.__setattr__(self, "timeout_s", timeout)
        self._check_num_procs()
        self._check_choices((("reward_mode", REWARD_MODES), ("mta_penalty", PENALTIES), ("mta_reward", MTA_REWARDS)))


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


def _reward_dict(verdict: VerifyResult, finish_reason: str, mask_unfinished_reward: bool) -> dict[str, Any]:
    acc = 1.0 if verdict.correct else 0.0
    return {
        "score": 0.0 if is_masked(finish_reason, mask_unfinished_reward) else acc,
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
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """veRL custom reward: binary math-verify correctness, 0 for unfinished ReMA episodes.

    ``reward_kwargs``: see :class:`MathRewardKwargs`. Returns ``score`` (the reward, masked), ``acc`` (correctness
    0/1, unmasked), ``finish_reason``, ``answer_extracted`` (bool) and ``verify_status`` ("ok", "timeout", "error"
    or "no_answer"), plus the episode's dialogue metrics (``rema/...``) when the ReMA rollout supplies them: veRL
    averages every numeric extra key per data source in validation, which makes them ``val-aux/<source>/rema/...``.
    """
    settings = MathRewardKwargs.parse(reward_kwargs, strict=False)
    gold = gold_answers(ground_truth)
    verdict = get_pool(settings.num_procs).verify(gold, text_to_score(solution_str, extra_info), settings.timeout_s)
    result = _reward_dict(verdict, finish_reason_of(extra_info), settings.mask_unfinished_reward)
    if settings.reward_mode == "role":
        result.update(_role_reward(settings, gold, verdict, extra_info or {}))
    return {**result, **dialogue_metrics_of(extra_info)}


def _role_reward(
    settings: MathRewardKwargs, gold: tuple[str, ...], verdict: VerifyResult, info: Mapping[str, Any]
) -> dict[str, Any]:
    """The scored row's role reward (``score``), and ``acc`` as the RA answers' mean correctness for an MTA row."""
    from verl_rema.rollout.metrics import contains_boxed  # pure Python; keeps this module's imports light

    if scored_role(info) is not Role.META:
        boxed = contains_boxed(text_to_score("", info))
        return {"score": ra_reward(verdict.correct, boxed), "plan_leak": 0.0, "ra_answers": 1.0}
    # the rema_algorithm1 loop's K answers (none when the episode ended before the RA spoke: the plan then earns
    # what a plan whose every answer is wrong earns); another loop's episode: its one final answer
    answers = ra_answers_of(info)
    answers = [text_to_score("", info)] if answers is None else answers
    pool = get_pool(settings.num_procs)
    correct = [pool.verify(gold, answer, settings.timeout_s).correct for answer in answers] or [False]
    leak_rate = dialogue_metrics_of(info).get("rema/meta/answer_leak_rate")
    leaks = bool(leak_rate)  # the share of the MTA's messages with a \boxed{} answer
    if settings.mta_reward == "consistency":
        from verl_rema.data.schema import last_boxed

        score = consistency_reward([last_boxed(a) for a in answers] or [None], leaks, settings.mta_penalty)  # type: ignore[arg-type]
    else:
        score = mta_reward(correct, leaks, settings.mta_penalty)  # type: ignore[arg-type]
    return {
        "score": score,
        "acc": sum(correct) / len(correct),
        "plan_leak": float(leaks),
        "ra_answers": float(len(answers)),
    }


def score_many(
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    **reward_kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`compute_score` over a batch, in parallel over the verifier processes, in input order."""
    if len(solution_strs) != len(ground_truths):
        raise ValueError(f"{len(solution_strs)} solutions for {len(ground_truths)} ground truths")
    infos: Sequence[Mapping[str, Any] | None] = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    if len(infos) != len(solution_strs):
        raise ValueError(f"{len(infos)} extra_infos for {len(solution_strs)} solutions")
    if not solution_strs:
        return []
    settings = MathRewardKwargs.parse(reward_kwargs, strict=True)
    pool = get_pool(settings.num_procs)
    kwargs = {"timeout_s": settings.timeout_s, "mask_unfinished_reward": settings.mask_unfinished_reward}
    with ThreadPoolExecutor(max_workers=min(pool.num_procs, len(solution_strs))) as executor:
        return list(
            executor.map(
                lambda s, g, e: compute_score(None, s, g, e, **kwargs),
                solution_strs,
                ground_truths,
                infos,
            )
        )


def reward_stats() -> dict[str, int]:
    """Counts of this process's verifier outcomes: per status, ``killed`` (hard timeouts), ``crashed``, ``spawned``."""
    return get_pool().stats()
