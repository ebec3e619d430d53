"""The pure parts of ``benchmarks/bench_rema_rollout.py``: veRL's vLLM-output mapping, turn labels, prefill table.

No engine is started: vLLM outputs are stood in for by plain namespaces with the attributes veRL reads.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from verl.workers.rollout.replica import TokenOutput

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rema_rollout.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rema_rollout", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def request_output(token_ids, finish_reason, cached=5, logprobs=True, num_preempted=None):
    steps = [
        {t: SimpleNamespace(logprob=-0.5 - i), 999: SimpleNamespace(logprob=-9.0)} for i, t in enumerate(token_ids)
    ]
    completion = SimpleNamespace(token_ids=token_ids, finish_reason=finish_reason, logprobs=steps if logprobs else None)
    if num_preempted is not None:
        completion.num_preempted = num_preempted
    return SimpleNamespace(outputs=[completion], num_cached_tokens=cached)


def test_request_kwargs_follow_verl_server(bench):
    params = {"temperature": 1.0, "logprobs": True, "max_tokens": 32}
    kwargs = bench.vllm_request_kwargs(params, prompt_len=1000, max_model_len=1024)
    assert kwargs == {
        "temperature": 1.0,
        "logprobs": 0,
        "repetition_penalty": 1.0,
        "ignore_eos": False,
        "max_tokens": 24,
    }
    assert params == {"temperature": 1.0, "logprobs": True, "max_tokens": 32}, "the caller's dict is left alone"
    assert bench.vllm_request_kwargs({"logprobs": False}, 10, 20) == {
        "logprobs": None,
        "repetition_penalty": 1.0,
        "ignore_eos": False,
        "max_tokens": 10,
    }
    with pytest.raises(ValueError, match="no room"):
        bench.vllm_request_kwargs({"max_tokens": 4}, 20, 20)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("stop", "completed"), ("length", "completed"), ("abort", "aborted"), ("repetition", "repetition")],
)
def test_token_output_stop_reasons(bench, finish, expected):
    fields = bench.token_output_fields(request_output([3, 4], finish), logprobs_requested=True, global_steps=7)
    output = TokenOutput(**fields)
    assert output.token_ids == [3, 4]
    assert output.log_probs == [-0.5, -1.5], "the sampled token's log-prob, not the best alternative's"
    assert output.stop_reason == expected
    assert output.extra_fields == {"global_steps": 7, "num_cached_tokens": 5}
    assert output.num_preempted is None


def test_token_output_without_logprobs_and_aborted_empty(bench):
    fields = bench.token_output_fields(request_output([3], "length", logprobs=False, num_preempted=2), False)
    assert fields["log_probs"] is None and fields["num_preempted"] == 2
    empty = bench.token_output_fields(SimpleNamespace(outputs=[], num_cached_tokens=0), True)
    assert TokenOutput(**empty).stop_reason == "aborted" and empty["token_ids"] == []


def test_episode_log_labels_roles_by_first_appearance(bench):
    log = bench.EpisodeLog(0, ["meta", "reasoning"])
    assert [log.label(rid) for rid in ["m", "r", "m", "r", "m"]] == [
        ("meta", 1),
        ("reasoning", 1),
        ("meta", 2),
        ("reasoning", 2),
        ("meta", 3),
    ]
    with pytest.raises(RuntimeError, match="more request ids"):
        log.label("third")


def test_prefill_table_means_and_new_text(bench):
    Record = bench.RequestRecord
    records = [
        # episode 0: meta 10-token prompt, 4 sampled; reasoning; then meta's second prompt adds 6 new tokens
        Record(0, "meta", 1, list(range(10)), [1] * 4, cached=0, seed=0),
        Record(0, "reasoning", 1, list(range(12)), [1] * 3, cached=0, seed=1),
        Record(0, "meta", 2, list(range(20)), [1] * 2, cached=12, seed=2),
        Record(1, "meta", 1, list(range(10)), [1] * 5, cached=8, seed=3),
        Record(1, "reasoning", 1, list(range(14)), [1] * 3, cached=0, seed=4),
        Record(1, "meta", 2, list(range(25)), [1] * 2, cached=14, seed=5),
    ]
    rows = bench.prefill_table(records[3:] + records[:3])  # the episodes' order does not matter
    assert [(r.turn, r.role, r.requests) for r in rows] == [(1, "meta", 2), (1, "reasoning", 2), (2, "meta", 2)]
    meta1, reasoning1, meta2 = rows
    assert (meta1.prompt, meta1.cached, meta1.prefilled, meta1.new) == (10, 4, 6, None)
    assert reasoning1.new is None
    assert (meta2.prompt, meta2.cached, meta2.prefilled) == (22.5, 13, 9.5)
    assert math.isclose(meta2.new, ((20 - 14) + (25 - 15)) / 2)
    text = bench.format_prefill_table(rows)
    assert text.splitlines()[0].split() == ["turn", "role", "requests", "prompt", "cached", "prefilled", "new", "text"]
    assert len(text.splitlines()) == 4


def test_replay_sends_the_very_request_rema_sent_with_its_length_pinned(bench):
    sent = bench.vllm_request_kwargs(
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
    record = bench.RequestRecord(0, "meta", 1, [1, 2, 3], [5, 6, 2], cached=0, seed=9, params=sent)
    replay = bench.raw_params(record)
    assert replay == {**sent, "max_tokens": 3}, "stop strings, stop ids, seed and log-probs as sent"
    bare = bench.raw_params(record, same=False)
    assert bare["ignore_eos"] is True and "stop" not in bare and bare["seed"] == 9 and bare["max_tokens"] == 3
    assert bench.raw_params(bench.RequestRecord(0, "meta", 1, [1], [], cached=0, seed=1))["max_tokens"] == 1
