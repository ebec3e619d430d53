"""The paper's role-specific rewards for single-turn ReMA with separate models (arXiv 2503.09501, App. C.2).

Reasoning agent, for its answer y:      R_l = +1 if correct, -0.5 if wrong with a \\boxed{} answer, -1 otherwise.
Meta-thinking agent, for its plan m:    R_h = mean over the K RA answers sampled for m of 1[correct],
                                        with a -1 penalty when m itself states a \\boxed{} answer (answer leakage).

The paper does not say whether the -1 is added to the mean or replaces it ("a strong penalty of -1.0 is applied"):
``penalty="add"`` (default) gives ``mean - 1``, ``"set"`` gives ``-1``. The consistency variant (Eq. 14) rewards the
MTA with the share of the most frequent RA answer among the K, 0 when most answers have none; the paper reports that
it leads the MTA to leak answers, so it is off by default and the leakage rate is logged with it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Literal

Penalty = Literal["add", "set"]
PENALTIES: tuple[str, ...] = ("add", "set")
MTA_REWARDS: tuple[str, ...] = ("correctness", "consistency")


def ra_reward(correct: bool, has_boxed_answer: bool) -> float:
    """+1 correct; -0.5 wrong but with a \\boxed{} answer; -1 without one (an incomplete or unstructured reply)."""
    if correct:
        return 1.0
    return -0.5 if has_boxed_answer else -1.0


def _penalised(value: float, leaks: bool, penalty: Penalty) -> float:
    if penalty not in PENALTIES:
        raise ValueError(f"the MTA penalty must be one of {PENALTIES}, got {penalty!r}")
    if not leaks:
        return value
    return value - 1.0 if penalty == "add" else -1.0


def mta_reward(correct: Sequence[bool], plan_leaks: bool, penalty: Penalty = "add") -> float:
    """Mean correctness of the RA answers sampled for the plan, penalised when the plan states an answer."""
    if not correct:
        raise ValueError("the MTA reward needs at least one RA answer for its plan")
    return _penalised(sum(map(float, correct)) / len(correct), plan_leaks, penalty)


def normalise_answer(answer: str | None) -> str | None:
    """A boxed answer as a comparable string (whitespace and math delimiters removed); None for no answer."""
    if answer is None:
        return None
    text = re.sub(r"\s+", "", answer).strip("$")
    return text or None


def consistency_reward(answers: Sequence[str | None], plan_leaks: bool, penalty: Penalty = "add") -> float:
    """Eq. 14: the share of the most frequent answer among the K; 0 when most of the K have no answer."""
    if not answers:
        raise ValueError("the consistency reward needs at least one RA answer")
    found = [a for a in map(normalise_answer, answers) if a is not None]
    if len(found) * 2 < len(answers):  # "the majority of responses do not contain a definitive answer"
        return _penalised(0.0, plan_leaks, penalty)
    top = Counter(found).most_common(1)[0][1]
    return _penalised(top / len(answers), plan_leaks, penalty)


__all__ = ["MTA_REWARDS", "PENALTIES", "consistency_reward", "mta_reward", "normalise_answer", "ra_reward"]
