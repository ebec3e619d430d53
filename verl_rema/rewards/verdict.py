"""The judge's verdict and the paper-style role rewards of the LLM-as-a-judge task, as pure functions.

Verdict format (arXiv 2503.09501 App. G.1.3, after EvalPlanner): ``[[A]]`` if assistant A is better, ``[[B]]`` if
assistant B is better; no tie. The paper gives no parser. A plan-following judge often quotes the format before it
judges (``output "[[A]]" if assistant A is better, ...``), so by default the **last** tag counts and tags that are
part of such a quote (a tag followed by ``if``) are not verdicts at all. ``pick`` makes the rule a named option:
``last`` (default), ``first`` (the only public copy, MAGIC-Dace's ``re.search``) or ``unique`` (only when every tag
agrees; conflicting tags are no verdict).

Only the exact tags ``[[A]]``/``[[B]]`` are well formed ("strictly following this format"). Near misses
(``[A]``, ``[[ A ]]``, ``[[a]]``, ``[[A]``, ``[[Assistant A]]``) are no verdict, but are flagged as malformed so that
evaluation can tell "no verdict at all" from "almost a verdict".

Role rewards [reconstruction: the paper (App. C.2) states them for math only, "using mathematical problem-solving as
an example"; here the verdict tag takes the place of ``\\boxed``]:

- reasoning agent: +1 for a correct verdict; if wrong, -0.5 when a well-formed verdict is present, else -1;
- meta-thinking agent: the mean correctness of the RA's verdicts for its plan, with a -1 penalty when the plan
  itself contains a verdict tag (the MTA never sees the responses: a verdict there is a guess). Whether the penalty
  is added to the mean or replaces it is not stated: ``penalty="add"`` (default) or ``"set"``, as for math
  (:mod:`.role_rewards`, whose formula this reuses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from verl_rema.rewards.role_rewards import PENALTIES, Penalty
from verl_rema.rewards.role_rewards import mta_reward as _mta_reward

Pick = Literal["last", "first", "unique"]
PICKS: tuple[str, ...] = ("last", "first", "unique")
LETTERS: tuple[str, ...] = ("A", "B")

_TAG = re.compile(r"\[\[([AB])\]\]")
# A tag that is part of a quoted format instruction: `"[[A]]" if assistant A is better` (quotes/backticks optional).
_QUOTED_FORMAT = re.compile(r"""\s*["'`\u201c\u201d\u2019]*\s*(?:\*\*)?\s*if\b""", re.IGNORECASE)
# Near misses of the format: single or unbalanced brackets, inner spaces, lower case, "Assistant A".
_NEAR_MISS = re.compile(r"\[{1,2}\s*(?:assistant\s+)?([ABab])\s*\]{1,2}", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """What a judge's message says: the chosen letter (None: no verdict) and how it was found."""

    choice: str | None
    tags: int  # well-formed verdict tags, quoted-format tags excluded
    conflicting: bool  # both [[A]] and [[B]] occur as verdicts
    malformed: bool  # no well-formed verdict, but a near miss of the format is present

    @property
    def found(self) -> bool:
        return self.choice is not None


def verdict_tags(text: str) -> list[str]:
    """The letters of the well-formed verdict tags in ``text``, in order, without those of a quoted format."""
    letters = []
    for match in _TAG.finditer(text):
        if _QUOTED_FORMAT.match(text, match.end()):
            continue
        letters.append(match.group(1))
    return letters


def parse_verdict(text: str | None, pick: Pick = "last") -> Verdict:
    """The verdict of a judge's message; see the module docstring for the rules."""
    if pick not in PICKS:
        raise ValueError(f"verdict pick must be one of {PICKS}, got {pick!r}")
    text = text if isinstance(text, str) else ""
    letters = verdict_tags(text)
    conflicting = len(set(letters)) > 1
    if not letters:
        choice = None
    elif pick == "first":
        choice = letters[0]
    elif pick == "last":
        choice = letters[-1]
    else:
        choice = None if conflicting else letters[0]
    malformed = not letters and _has_near_miss(text)
    return Verdict(choice=choice, tags=len(letters), conflicting=conflicting, malformed=malformed)


def _has_near_miss(text: str) -> bool:
    for match in _NEAR_MISS.finditer(text):
        if match.group(0) in ("[[A]]", "[[B]]"):
            continue  # a well-formed tag inside a quoted format: not a near miss
        if _QUOTED_FORMAT.match(text, match.end()):
            continue
        return True
    return False


def gold_letter(ground_truth: object) -> str | None:
    """``"A"``/``"B"`` from a row's ground truth (also JudgeBench's raw ``"A>B"``/``"B>A"``); None if unusable."""
    if not isinstance(ground_truth, str):
        return None
    text = ground_truth.strip()
    text = {"A>B": "A", "B>A": "B"}.get(text, text).upper()
    return text if text in LETTERS else None


def ra_reward(verdict: Verdict, gold: str | None) -> float:
    """The reasoning agent's reward: +1 correct; -0.5 wrong but well formed; -1 without a verdict."""
    if verdict.found and verdict.choice == gold:
        return 1.0
    return -0.5 if verdict.found else -1.0


def mta_reward(ra_correct: Iterable[float | bool], plan: str, penalty: Penalty = "add") -> float:
    """The meta-thinking agent's reward: the mean correctness of the RA's verdicts for this plan, penalised by -1
    (added, or set) when the plan contains a verdict tag."""
    values = [float(value) for value in ra_correct]
    if any(value not in (0.0, 1.0) for value in values):
        raise ValueError(f"RA correctness values must be 0/1 (or booleans), got {values}")
    return _mta_reward([value == 1.0 for value in values], plan_has_verdict(plan), penalty)


def plan_has_verdict(plan: str | None) -> bool:
    """Whether a plan states a verdict: any well-formed tag that is not a quoted format (conflicting ones too)."""
    return bool(verdict_tags(plan if isinstance(plan, str) else ""))


__all__ = [
    "LETTERS",
    "PENALTIES",
    "PICKS",
    "Verdict",
    "gold_letter",
    "mta_reward",
    "parse_verdict",
    "plan_has_verdict",
    "ra_reward",
    "verdict_tags",
]
