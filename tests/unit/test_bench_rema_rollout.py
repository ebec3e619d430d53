"""The pure parts of the rollout benchmarks (``benchmarks/rollout_records.py``): veRL's vLLM-output mapping, turn
labels, the prefill table, the ratio statistics; and the replay's request (``benchmarks/bench_rema_rollout.py``).

No engine is started: vLLM outputs are stood in for by plain namespaces with the attributes veRL reads.
"""

from __future__ import annotations

import importlib.util
import math
import random
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from verl.workers.rollout.replica import TokenOutput

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _loaded(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def records():
    yield from _loaded("rollout_records")


@pytest.fixture(scope="module")
def bench(records):
    yield from _loaded("bench_rema_rollout")


def request_output(token_ids, finish_reason, cached=5, logprobs=True, num_preempted=None):
    steps = [
        {t: SimpleNamespace(logprob=-0.5 - i), 999: SimpleNamespace(logprob=-9.0)} for i, t in enumerate(token_ids)
    ]
    completion = SimpleNamespace(token_ids=token_ids, finish_reason=finish_reason, logprobs=steps if logprobs else None)
    if num_preempted is not None:
        completion.num_preempted = num_preempted
    return SimpleNamespace(outputs=[completion], num_cached_tokens=cached)


def test_request_kwargs_follow_verl_server(records):
    params = {"temperature": 1.0, "logprobs": True, "max_tokens": 32}
    kwargs = records.vllm_request_kwargs(params, prompt_len=1000, max_model_len=1024)
    assert kwargs == {
        "temperature": 1.0,
        "logprobs": 0,
        "repetition_penalty": 1.0,
        "ignore_eos": False,
        "max_tokens": 24,
    }
    assert params == {"temperature": 1.0, "logprobs": True, "max_tokens": 32}, "the caller's dict is left alone"
    assert records.vllm_request_kwargs({"logprobs": False}, 10, 20) == {
        "logprobs": None,
        "repetition_penalty": 1.0,
        "ignore_eos": False,
        "max_tokens": 10,
    }
    with pytest.raises(ValueError, match="no room"):
        records.vllm_request_kwargs({"max_tokens": 4}, 20, 20)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("stop", "completed"), ("length", "completed"), ("abort", "aborted"), ("repetition", "repetition")],
)
def test_token_output_stop_reasons(records, finish, expected):
    fields = records.token_output_fields(request_output([3, 4], finish), logprobs_requested=True, global_steps=7)
    output = TokenOutput(**fields)
    assert output.token_ids == [3, 4]
    assert output.log_probs == [-0.5, -1.5], "the sampled token's log-prob, not the best alternative's"
    assert output.stop_reason == expected
    assert output.extra_fields == {"global_steps": 7, "num_cached_tokens": 5}
    assert output.num_preempted is None


def test_token_output_without_logprobs_and_aborted_empty(records):
    fields = records.token_output_fields(request_output([3], "length", logprobs=False, num_preempted=2), False)
    assert fields["log_probs"] is None and fields["num_preempted"] == 2
    empty = records.token_output_fields(SimpleNamespace(outputs=[], num_cached_tokens=0), True)
    assert TokenOutput(**empty).stop_reason == "aborted" and empty["token_ids"] == []


def test_episode_log_labels_roles_by_first_appearance(records):
    log = records.EpisodeLog(0, ["meta", "reasoning"])
    assert [log.label(rid) for rid in ["m", "r", "m", "r", "m"]] == [
        ("meta", 1),
        ("reasoning", 1),
        ("meta", 2),
        ("reasoning", 2),
        ("meta", 3),
    ]
    with pytest.raises(RuntimeError, match="more request ids"):
        log.label("third")


def test_prefill_table_means_and_new_text(records):
    Record = records.RequestRecord
    requests = [
        # episode 0: meta 10-token prompt, 4 sampled; reasoning; then meta's second prompt adds 6 new tokens
        Record(0, "meta", 1, list(range(10)), [1] * 4, cached=0, seed=0),
        Record(0, "reasoning", 1, list(range(12)), [1] * 3, cached=0, seed=1),
        Record(0, "meta", 2, list(range(20)), [1] * 2, cached=12, seed=2),
        Record(1, "meta", 1, list(range(10)), [1] * 5, cached=8, seed=3),
        Record(1, "reasoning", 1, list(range(14)), [1] * 3, cached=0, seed=4),
        Record(1, "meta", 2, list(range(25)), [1] * 2, cached=14, seed=5),
    ]
    rows = records.prefill_table(requests[3:] + requests[:3])  # the episodes' order does not matter
    assert [(r.turn, r.role, r.requests) for r in rows] == [(1, "meta", 2), (1, "reasoning", 2), (2, "meta", 2)]
    meta1, reasoning1, meta2 = rows
    assert (meta1.prompt, meta1.cached, meta1.prefilled, meta1.new) == (10, 4, 6, None)
    assert reasoning1.new is None
    assert (meta2.prompt, meta2.cached, meta2.prefilled) == (22.5, 13, 9.5)
    assert math.isclose(meta2.new, ((20 - 14) + (25 - 15)) / 2)
    text = records.format_prefill_table(rows)
    assert text.splitlines()[0].split() == ["turn", "role", "requests", "prompt", "cached", "prefilled", "new", "text"]
    assert len(text.splitlines()) == 4


def test_replay_sends_the_very_request_rema_sent_with_its_length_pinned(bench, records):
    sent = records.vllm_request_kwargs(
        {
            "temperature": 1.0,
            "logprobs": True,
            "max_tokens": 32,
            "seed": 9,
            "stop": ["[FINISH]"],
            "stop_token_ids": [2],
        },
        prompt_len=10,
        max_model_len=100,
    )
    record = records.RequestRecord(0, "meta", 1, [1, 2, 3], [5, 6, 2], cached=0, seed=9, params=sent)
    replay = bench.raw_params(record)
    assert replay == {**sent, "max_tokens": 3}, "stop strings, stop ids, seed and log-probs as sent"
    bare = bench.raw_params(record, same=False)
    assert bare["ignore_eos"] is True and "stop" not in bare and bare["seed"] == 9 and bare["max_tokens"] == 3
    assert bench.raw_params(records.RequestRecord(0, "meta", 1, [1], [], cached=0, seed=1))["max_tokens"] == 1


def test_ratio_summary_is_the_median_with_an_interval_around_it(records):
    ratios = [0.9, 1.1, 0.95, 1.0, 0.85, 1.2, 0.97]
    summary = records.ratio_summary(ratios)
    assert summary.median == statistics.median(ratios) and summary.rounds == 7
    assert min(ratios) <= summary.low <= summary.median <= summary.high <= max(ratios)
    assert records.ratio_summary(ratios) == summary, "seeded: the same rounds print the same interval"
    assert records.ratio_summary([1.0] * 5) == records.RatioSummary(1.0, 1.0, 1.0, 5)
    assert "median 0.970 (95% CI" in str(summary)
    with pytest.raises(ValueError, match="no rounds"):
        records.ratio_summary([])


def test_ratio_summary_interval_narrows_with_rounds_and_covers_the_true_median(records):
    """Rounds drawn from a known distribution: the interval of 40 rounds is narrower than of 10, and the 95%
    interval holds the distribution's median in about 95% of repeated benchmarks."""
    rng = random.Random(1)

    def width(n: int) -> float:
        summary = records.ratio_summary([rng.gauss(1.0, 0.1) for _ in range(n)], resamples=1000)
        return summary.high - summary.low

    assert statistics.mean(width(40) for _ in range(10)) < 0.7 * statistics.mean(width(10) for _ in range(10))
    covered = 0
    for trial in range(100):
        summary = records.ratio_summary([rng.gauss(1.0, 0.1) for _ in range(21)], resamples=500, seed=trial)
        covered += summary.low <= 1.0 <= summary.high
    assert 85 <= covered <= 100


def test_gc_meter_counts_collections_and_their_time_per_generation(records):
    ticks = iter([10.0, 10.5, 20.0, 20.25, 30.0, 31.0])
    meter = records.GcMeter(clock=lambda: next(ticks))
    meter("start", {"generation": 2})
    meter("stop", {"generation": 2})
    meter("start", {"generation": 0})
    meter("stop", {"generation": 0})
    meter("stop", {"generation": 1})  # a stop whose start the meter did not see is not counted
    meter("start", {"generation": 2})
    meter("stop", {"generation": 2})
    assert meter.counts == [1, 0, 2] and meter.seconds == [0.25, 0.0, 1.5]

    import gc

    with records.GcMeter() as real:
        gc.collect(2)
        gc.collect(0)
    assert real.counts[2] >= 1 and real.counts[0] >= 1 and real.seconds[2] > 0
    assert real not in gc.callbacks, "the meter leaves the collector's callbacks as it found them"
    before = list(real.counts)
    gc.collect()
    assert real.counts == before
