"""ReMA's LLM-as-a-judge reward as a veRL custom reward function: the verdict ``[[A]]``/``[[B]]`` of the reasoning
agent's final message against the row's gold letter (arXiv 2503.09501 §4.1, App. G.1.3; :mod:`.verdict` parses).

Use::

    reward.custom_reward_function.path=pkg://verl_rema.rewards.judge_reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.reward_mode=binary    # or role
    +reward.custom_reward_function.reward_kwargs.verdict_pick=last     # or first, unique

Two modes (``reward_mode``):

- ``binary`` (default; shared-parameter runs, where veRL scores the episode's last row and gives the other row the
  same score): 1 for a correct verdict, else 0; 0 for an episode that did not finish ``normal`` when
  ``mask_unfinished_reward`` (as the math reward).
- ``role``: the paper-style role rewards of the separate-models path (Algorithm 1) [reconstruction, see
  :mod:`.verdict`], chosen by the scored row's role (``extra_info["rema_role"]``; none = the RA): RA +1 / -0.5 with
  a well-formed verdict / -1; MTA = mean correctness of the K RA answers sampled for its plan (``rema_ra_answers``,
  ``protocol.RA_ANSWERS_FIELD``, written by the ``rema_algorithm1`` agent loop; without it, this episode's one
  verdict), which is also its ``acc``; -1 penalty for a verdict in the plan (the row's own response: a single-turn MTA row, as in Algorithm 1; a multi-turn MTA row's response also holds
  the RA's messages, so the penalty would see the RA's verdicts). Every episode is scored by these rules (an unfinished RA has no verdict: -1);
  ``mask_unfinished_reward`` applies to ``binary`` only, since a masked 0 would pay better than a missing verdict.

Every call returns the same keys (veRL stacks them by the first sample's): ``score``, ``acc`` (correctness, never
masked), ``finish_reason``, ``verdict`` ("A", "B" or "none"), ``verdict_found``, ``verdict_malformed``,
``verdict_tags``, ``verdict_conflict``, ``gold``, ``role_reward`` (the row's paper-style role reward, in both modes),
``ra_answers`` (the verdicts behind the score: K for an MTA row in ``role`` mode, else 1), ``plan_leak`` (1 when an
MTA plan states a verdict), ``pair_id`` and ``game`` (echoed from the row's ``extra_info``, so that evaluation can pair the two orders of a pair:
:mod:`verl_rema.evaluate.judge`), plus the episode's dialogue metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verl_rema.protocol import Role
from verl_rema.rewards import episode
from verl_rema.rewards.reward_kwargs import REWARD_MODES, RewardKwargs, warn_once
from verl_rema.rewards.verdict import (
    PENALTIES,
    PICKS,
    gold_letter,
    mta_reward,
    parse_verdict,
    plan_has_verdict,
    ra_reward,
)

logger = logging.getLogger(__name__)

PAIR_ID_FIELD, GAME_FIELD = "pair_id", "game"  # written by verl_rema.data.judge into extra_info


@dataclass(frozen=True)
class JudgeRewardKwargs(RewardKwargs):
    """``reward.custom_reward_function.reward_kwargs`` of the judge reward, typed once.

    Args:
        reward_mode: ``binary`` (shared-parameter runs) or ``role`` (paper-style role rewards).
        verdict_pick: Which verdict tag counts: ``last`` (default), ``first`` or ``unique``.
        mta_penalty: The MTA's -1 for a verdict in its plan is ``add``-ed to its reward or ``set`` in its place.
        mask_unfinished_reward: ``binary`` mode: score 0 unless the episode finished ``normal``.
        num_procs: Ignored (the verdict is a regular expression, there is no verifier pool); accepted so that a
            preset sizing the math reward's pool (``hydra_configs/preset/cpu.yaml``) composes with judge recipes.
    """

    reward_mode: str = "binary"
    verdict_pick: str = "last"
    mta_penalty: str = "add"
    mask_unfinished_reward: bool = True
    num_procs: int | None = None

    REWARD = "judge reward"

    def __post_init__(self) -> None:
        self._check_choices((("reward_mode", REWARD_MODES), ("verdict_pick", PICKS), ("mta_penalty", PENALTIES)))
        self._set_bool("mask_unfinished_reward")
        self._check_num_procs()


def _ra_correct(info: Mapping[str, Any], gold: str | None, pick: str, own: float) -> list[float]:
    """0/1 correctness of the RA answers sampled for an MTA's plan (``protocol.RA_ANSWERS_FIELD``); this episode's
    own."""
    answers = episode.ra_answers_of(info)
    if answers is None:  # another loop's episode: its one verdict
        return [own]
    verdicts = [parse_verdict(answer, pick) for answer in answers]  # type: ignore[arg-type]
    return [1.0 if v.found and v.choice == gold else 0.0 for v in verdicts]


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """veRL custom reward for the judge task; see the module docstring for the modes and the returned keys.

    veRL's documented custom-reward signature, without defaults: a verdict means nothing without the response and
    the gold letter, and veRL always passes them (by name)."""
    settings = JudgeRewardKwargs.parse(reward_kwargs, strict=False)
    info: Mapping[str, Any] = extra_info or {}
    verdict = parse_verdict(episode.text_to_score(solution_str, info), settings.verdict_pick)  # type: ignore[arg-type]
    gold = gold_letter(ground_truth)
    if gold is None:
        warn_once(f"verl_rema judge reward: ground truth {ground_truth!r} is not 'A' or 'B' ({data_source}); scoring 0")
    acc = 1.0 if verdict.found and verdict.choice == gold else 0.0
    finish_reason = episode.finish_reason_of(info)
    ra_answers, plan_leak = 1.0, 0.0
    if settings.reward_mode == "role" and episode.scored_role(info) is Role.META:
        correct = _ra_correct(info, gold, settings.verdict_pick, acc)  # [] when the RA never spoke: all wrong
        role_reward = mta_reward(correct or [0.0], solution_str or "", settings.mta_penalty)  # type: ignore[arg-type]
        acc, ra_answers = sum(correct) / max(len(correct), 1), float(len(correct))
        plan_leak = float(plan_has_verdict(solution_str))
    else:
        role_reward = ra_reward(verdict, gold)
    if settings.reward_mode == "role":
        score = role_reward
    else:
        score = 0.0 if episode.is_masked(finish_reason, settings.mask_unfinished_reward) else acc
    return {
        "score": score,
        "acc": acc,
        "finish_reason": finish_reason,
        "verdict": verdict.choice or "none",
        "verdict_found": verdict.found,
        "verdict_malformed": verdict.malformed,
        "verdict_tags": verdict.tags,
        "verdict_conflict": verdict.conflicting,
        "gold": gold or "",
        "role_reward": role_reward,
        "ra_answers": ra_answers,
        "plan_leak": plan_leak,
        "pair_id": str(info.get(PAIR_ID_FIELD) or ""),
        "game": str(info.get(GAME_FIELD) or ""),
        **episode.dialogue_metrics_of(info),
    }


__all__ = [
    "REWARD_MODES",
    "JudgeRewardKwargs",
    "compute_score",
]
