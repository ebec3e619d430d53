"""The pure parts of the rollout benchmarks: veRL's vLLM-output mapping, per-request records, turn labels, the
prefill table and the ratio statistics. Importable without vLLM (``tests/unit/test_bench_rema_rollout.py``)."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def vllm_request_kwargs(sampling_params: dict[str, Any], prompt_len: int, max_model_len: int) -> dict[str, Any]:
    """veRL's vLLM server's translation of a ``generate`` sampling dict into ``vllm.SamplingParams`` kwargs.

    As ``vLLMHttpServer.generate``: ``max_tokens`` clamped to ``[1, max_model_len - prompt_len]`` (when absent: the
    room left; veRL's server also caps that at ``rollout.response_length``, which the agent loop never relies on),
    ``logprobs`` True -> 0 (the sampled token's log-prob only) / False -> None, ``repetition_penalty`` and
    ``ignore_eos`` defaulted. The caller's dict is not modified.
    """
    params = dict(sampling_params)
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(f"prompt of {prompt_len} tokens leaves no room within max_model_len={max_model_len}")
    max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", room))
    params["logprobs"] = 0 if params.pop("logprobs", False) else None
    params.setdefault("repetition_penalty", 1.0)
    params.setdefault("ignore_eos", False)
    return {**params, "max_tokens": max(1, min(int(max_tokens), room))}


def token_output_fields(final_res: Any, logprobs_requested: bool, global_steps: int | None = None) -> dict[str, Any]:
    """The ``TokenOutput`` fields veRL's vLLM server builds from a final vLLM ``RequestOutput``.

    token ids of the first completion; the log-prob of each sampled token; ``stop_reason`` "aborted" for
    vLLM's "abort", "completed" for "stop" (eos or stop string) and "length", else vLLM's reason verbatim;
    ``num_preempted`` when vLLM reports it; ``extra_fields`` with ``global_steps`` and ``num_cached_tokens``.
    """
    extra_fields: dict[str, Any] = {"global_steps": global_steps}
    if not final_res.outputs:
        return {"token_ids": [], "log_probs": None, "stop_reason": "aborted", "extra_fields": extra_fields}
    extra_fields["num_cached_tokens"] = getattr(final_res, "num_cached_tokens", None)
    completion = final_res.outputs[0]
    token_ids = list(completion.token_ids)
    log_probs = None
    if logprobs_requested:
        log_probs = [step[token_ids[i]].logprob for i, step in enumerate(completion.logprobs)]
    finish = completion.finish_reason
    stop_reason = "aborted" if finish == "abort" else "completed" if finish in ("stop", "length") else finish
    return {
        "token_ids": token_ids,
        "log_probs": log_probs,
        "stop_reason": stop_reason,
        "num_preempted": getattr(completion, "num_preempted", None),
        "extra_fields": extra_fields,
    }


@dataclass
class RequestRecord:
    """One generate call of an episode, as the engine saw it."""

    episode: int
    role: str
    turn: int  # 1 for the role's first message, 2 for its second, ...
    prompt_ids: list[int]
    output_ids: list[int]
    cached: int  # prompt tokens served from the prefix cache
    seed: int
    params: dict[str, Any] | None = None  # the vLLM sampling kwargs the request was sent with

    @property
    def prefilled(self) -> int:
        return len(self.prompt_ids) - self.cached


@dataclass
class EpisodeLog:
    """Names the calls of one episode: the k-th call with a request id is that role's turn k.

    The loop keeps one request id per role for the whole episode and the first speaker is ``roles[0]``, so the
    order in which request ids first appear gives the role without looking inside the prompt.
    """

    episode: int
    roles: Sequence[str]
    records: list[RequestRecord] = field(default_factory=list)
    _role_of: dict[str, str] = field(default_factory=dict)
    _turns: dict[str, int] = field(default_factory=dict)

    def label(self, request_id: str) -> tuple[str, int]:
        if request_id not in self._role_of:
            if len(self._role_of) >= len(self.roles):
                raise RuntimeError(f"episode {self.episode}: more request ids than roles {list(self.roles)}")
            self._role_of[request_id] = self.roles[len(self._role_of)]
        self._turns[request_id] = self._turns.get(request_id, 0) + 1
        return self._role_of[request_id], self._turns[request_id]


@dataclass(frozen=True)
class TurnRow:
    """Means over the requests of one (turn, role)."""

    turn: int
    role: str
    requests: int
    prompt: float
    cached: float
    prefilled: float
    new: float | None  # prompt tokens the role's stream had not held before: prompt - (previous prompt + reply)


def prefill_table(records: Sequence[RequestRecord]) -> list[TurnRow]:
    """Mean prompt, cached, prefilled and new tokens per (turn, role); turn-major, roles in order of first record."""
    previous: dict[tuple[int, str], RequestRecord] = {}
    groups: dict[tuple[int, str], list[tuple[RequestRecord, int | None]]] = defaultdict(list)
    role_order = {role: i for i, role in enumerate(dict.fromkeys(record.role for record in records))}
    for record in sorted(records, key=lambda r: (r.episode, r.turn)):
        before = previous.get((record.episode, record.role))
        new = None if before is None else len(record.prompt_ids) - len(before.prompt_ids) - len(before.output_ids)
        groups[(record.turn, record.role)].append((record, new))
        previous[(record.episode, record.role)] = record
    rows = []
    for turn, role in sorted(groups, key=lambda key: (key[0], role_order[key[1]])):
        items = groups[(turn, role)]
        news = [new for _, new in items if new is not None]
        rows.append(
            TurnRow(
                turn=turn,
                role=role,
                requests=len(items),
                prompt=statistics.mean(len(r.prompt_ids) for r, _ in items),
                cached=statistics.mean(r.cached for r, _ in items),
                prefilled=statistics.mean(r.prefilled for r, _ in items),
                new=statistics.mean(news) if news else None,
            )
        )
    return rows


def format_prefill_table(rows: Sequence[TurnRow]) -> str:
    lines = [f"{'turn':>4} {'role':<10}{'requests':>9}{'prompt':>9}{'cached':>9}{'prefilled':>10}{'new text':>10}"]
    for row in rows:
        new = "-" if row.new is None else f"{row.new:.1f}"
        lines.append(
            f"{row.turn:>4} {row.role:<10}{row.requests:>9}{row.prompt:>9.1f}{row.cached:>9.1f}"
            f"{row.prefilled:>10.1f}{new:>10}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class RatioSummary:
    """The median of per-round ratios and a percentile-bootstrap confidence interval of that median."""

    median: float
    low: float
    high: float
    rounds: int

    def __str__(self) -> str:
        return f"median {self.median:.3f} (95% CI {self.low:.3f}-{self.high:.3f}, {self.rounds} rounds)"


def ratio_summary(ratios: Sequence[float], resamples: int = 10_000, seed: int = 0) -> RatioSummary:
    """Median of ``ratios`` with a 95% percentile-bootstrap interval (rounds resampled with replacement).

    Why: on a small CPU one round's ratio varies by tens of percent, so the median alone does not say whether a
    target is met; the interval says how far the median of this many rounds can move.
    """
    if not ratios:
        raise ValueError("no rounds to summarise")
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    low, high = medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]
    return RatioSummary(statistics.median(ratios), low, high, len(ratios))


class GcMeter:
    """Collections and seconds spent in them, per generation, while the ``with`` block runs (``gc.callbacks``).

    Why: a full (generation 2) collection walks the whole heap of the process; with vLLM, torch and transformers
    loaded and not frozen that is most of a second on a small CPU, and it stalls the front end of every request.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            self._started[generation] = self.clock()
        elif generation in self._started:
            self.counts[generation] += 1
            self.seconds[generation] += self.clock() - self._started.pop(generation)

    def __enter__(self) -> GcMeter:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)
