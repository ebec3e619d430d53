"""What a reward function reads of the ReMA episode behind a scored row, the same way for every task.

veRL's reward loop merges the row's ``extra_fields`` (written by the ``rema`` agent loops: ``verl_rema.protocol``)
into ``extra_info``. A sample without them (another agent loop, a plain dataset) is scored on ``solution_str``, as
the reasoning agent's row of an episode that finished normally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verl_rema.protocol import (
    FINAL_ANSWER_FIELD,
    FINISH_REASON_FIELD,
    METRICS_FIELD,
    NO_FINISH_REASON,
    RA_ANSWERS_FIELD,
    ROLE_FIELD,
    FinishReason,
    Role,
)


def text_to_score(solution_str: str, extra_info: Mapping[str, Any] | None) -> str:
    """The ReMA reasoning agent's final message when the rollout supplies it, else the whole response."""
    if extra_info:
        final = extra_info.get(FINAL_ANSWER_FIELD)
        if isinstance(final, str):
            return final
    return solution_str if isinstance(solution_str, str) else ""


def finish_reason_of(extra_info: Mapping[str, Any] | None) -> str:
    """The episode's finish reason, or ``"n/a"`` when the sample has none (then nothing is masked)."""
    reason = extra_info.get(FINISH_REASON_FIELD) if extra_info else None
    if reason is None:
        return NO_FINISH_REASON
    return str(getattr(reason, "value", reason))


def is_masked(finish_reason: str, mask_unfinished_reward: bool) -> bool:
    """Whether ``mask_unfinished_reward`` zeroes this episode's reward: it did not finish ``normal``."""
    return mask_unfinished_reward and finish_reason not in (FinishReason.NORMAL.value, NO_FINISH_REASON)


def scored_role(extra_info: Mapping[str, Any] | None) -> Role:
    """The role of the scored row; the reasoning agent when the sample does not say."""
    role = (extra_info or {}).get(ROLE_FIELD)
    return Role(str(getattr(role, "value", role))) if role else Role.REASONING


def ra_answers_of(extra_info: Mapping[str, Any] | None) -> list[str] | None:
    """The RA final answers sampled for an MTA's plan (``rema_algorithm1``'s hierarchical sampling; empty when the
    episode ended before the RA spoke), or None when the loop wrote none (the episode's one answer stands)."""
    answers = (extra_info or {}).get(RA_ANSWERS_FIELD)
    if hasattr(answers, "tolist"):  # a numpy array after veRL's batching
        answers = answers.tolist()
    if answers is None:
        return None
    if not isinstance(answers, list | tuple):
        raise ValueError(f"extra_info[{RA_ANSWERS_FIELD!r}] must be a list of the RA's answers, got {answers!r}")
    return [str(answer) for answer in answers]


def dialogue_metrics_of(extra_info: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The rollout's per-episode ``rema_metrics`` (the same keys for every episode; None where undefined,
    which veRL's validation reducer skips)."""
    metrics = (extra_info or {}).get(METRICS_FIELD)
    if not isinstance(metrics, Mapping):
        return {}
    return {str(key): None if value is None else float(value) for key, value in metrics.items()}


__all__ = [
    "dialogue_metrics_of",
    "finish_reason_of",
    "is_masked",
    "ra_answers_of",
    "scored_role",
    "text_to_score",
]
