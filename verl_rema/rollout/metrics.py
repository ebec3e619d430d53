"""Per-episode dialogue metrics and collapse detectors for ReMA rollouts.

The paper's multi-turn runs with short turns collapsed into an "Echo Trap" (arXiv 2503.09501, multi-turn
ablations): repetition inside a turn, agents echoing each other, or empty turns after a few rounds. These detectors make such collapse, and
answer leakage by the MTA, visible step by step. Everything here is pure Python over the dialogue's messages;
the agent loop stores one ``episode_metrics`` dict per episode (``protocol.METRICS_FIELD``) and
``aggregate_episode_metrics`` turns a batch of them into step metrics.

Values are ``None`` when undefined (e.g. a role that never spoke): veRL's validation reducer skips None, and
``aggregate_episode_metrics`` averages only defined values.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Protocol

from verl_rema.protocol import FINISH_REASONS, METRICS_FIELD, Role, RowKey

REPETITION_NGRAM = 4
"""n of the token n-grams used for within-turn repetition and cross-turn echo."""

PREFIX = "rema/"
_BOXED = re.compile(r"\\boxed\s*\{")


class MessageLike(Protocol):
    """What the detectors read from a message (``dialogue.Message`` satisfies it)."""

    role: Role
    text: str
    token_ids: Sequence[int]
    truncated: bool

    @property
    def content(self) -> str: ...

    @property
    def empty(self) -> bool: ...


def _ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple[Hashable, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repeated_ngram_share(tokens: Sequence[Hashable], n: int = REPETITION_NGRAM) -> float:
    """Share of a message's n-grams that already occurred earlier in the same message.

    0.0 for text without repeats (or shorter than n), approaching 1.0 for a message stuck in a loop.
    """
    grams = _ngrams(tokens, n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def ngram_overlap(tokens: Sequence[Hashable], reference: Sequence[Hashable], n: int = REPETITION_NGRAM) -> float | None:
    """Share of ``tokens``' n-grams that also occur in ``reference`` (None if ``tokens`` has no n-gram).

    Measures echo: a reply that copies the message it answers scores near 1.
    """
    grams = _ngrams(tokens, n)
    if not grams:
        return None
    reference_grams = set(_ngrams(reference, n))
    return sum(gram in reference_grams for gram in grams) / len(grams)


def contains_boxed(text: str) -> bool:
    """Whether the text states a final answer in ``\\boxed{...}`` (answer leakage when the MTA does it)."""
    return bool(_BOXED.search(text))


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [float(value) for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def episode_metrics(messages: Sequence[MessageLike], finish_reason: str) -> dict[str, float | None]:
    """Metrics of one episode, keyed ``rema/...``; numbers or None (undefined), never strings.

    - ``rema/rounds``, ``rema/messages``: dialogue length (rounds = messages of the first speaker);
    - ``rema/finish/<reason>``: 1.0 for the episode's finish reason, 0.0 for the others (means = fractions);
    - per role (``meta``/``reasoning``): ``turns``, ``tokens_per_turn``, ``empty_turn_rate``,
      ``truncated_turn_rate``, ``repetition_rate`` (mean within-turn repeated-n-gram share),
      ``echo_overlap`` (mean share of a message's n-grams copied from the message it answers);
    - ``rema/meta/answer_leak_rate``: share of MTA messages containing ``\\boxed{``;
    - ``rema/final_answer_boxed``: whether the RA's last message contains ``\\boxed{``.
    """
    if finish_reason not in FINISH_REASONS:
        raise ValueError(f"unknown finish reason {finish_reason!r}; expected one of {FINISH_REASONS}")
    first_role = messages[0].role if messages else None
    metrics: dict[str, float | None] = {
        f"{PREFIX}rounds": float(sum(1 for message in messages if message.role is first_role)),
        f"{PREFIX}messages": float(len(messages)),
    }
    for reason in FINISH_REASONS:
        metrics[f"{PREFIX}finish/{reason}"] = 1.0 if reason == finish_reason else 0.0

    for role in Role:
        indices = [i for i, message in enumerate(messages) if message.role is role]
        own = [messages[i] for i in indices]
        key = f"{PREFIX}{role.value}/"
        metrics[key + "turns"] = float(len(own))
        metrics[key + "tokens_per_turn"] = _mean(len(message.token_ids) for message in own)
        metrics[key + "empty_turn_rate"] = _mean(float(message.empty) for message in own)
        metrics[key + "truncated_turn_rate"] = _mean(float(message.truncated) for message in own)
        metrics[key + "repetition_rate"] = _mean(repeated_ngram_share(message.token_ids) for message in own)
        metrics[key + "echo_overlap"] = _mean(
            ngram_overlap(messages[i].token_ids, messages[i - 1].token_ids) for i in indices if i > 0
        )

    meta_messages = [message for message in messages if message.role is Role.META]
    metrics[f"{PREFIX}meta/answer_leak_rate"] = _mean(float(contains_boxed(m.content)) for m in meta_messages)
    reasoning_messages = [message for message in messages if message.role is Role.REASONING]
    metrics[f"{PREFIX}final_answer_boxed"] = (
        float(contains_boxed(reasoning_messages[-1].text)) if reasoning_messages else None
    )
    return metrics


def aggregate_episode_metrics(
    episodes: Iterable[Mapping[str, float | None] | None], prefix: str = ""
) -> dict[str, float]:
    """Mean of each metric over the episodes where it is defined, as one flat step-metrics dict.

    Feed it one dict per episode (``aggregate_row_metrics`` picks them from TransferQueue rows). ``prefix`` is
    prepended to every key, e.g. ``"training/"``.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for episode in episodes:
        for key, value in (episode or {}).items():
            if value is None or isinstance(value, str):
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {f"{prefix}{key}": sums[key] / counts[key] for key in sorted(sums)}


def aggregate_row_metrics(
    keys: Sequence[str], extra_fields: Sequence[Mapping[str, object] | None], prefix: str = ""
) -> dict[str, float]:
    """Step metrics from TransferQueue rows: one ``rema_metrics`` per episode, then ``aggregate_episode_metrics``.

    ``keys`` are veRL v1 row keys: an episode leaves one row per role, each with the same metrics, so averaging rows
    would count two-row episodes twice. Rows of other agent loops (no metrics field) are ignored.
    """
    per_session: dict[str, Mapping[str, float | None]] = {}
    for key, fields in zip(keys, extra_fields, strict=True):
        metrics = (fields or {}).get(METRICS_FIELD)
        if isinstance(metrics, Mapping):
            per_session.setdefault(RowKey.parse(key).episode, metrics)
    return aggregate_episode_metrics(per_session.values(), prefix=prefix)


__all__ = [
    "PREFIX",
    "REPETITION_NGRAM",
    "aggregate_episode_metrics",
    "aggregate_row_metrics",
    "contains_boxed",
    "episode_metrics",
    "ngram_overlap",
    "repeated_ngram_share",
]
