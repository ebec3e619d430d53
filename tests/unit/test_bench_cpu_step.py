"""The pure parts of ``benchmarks/bench_cpu_step.py`` and ``benchmarks/bench_packed_attention.py``: the step-time
summary (medians after the warm-up step, shares, start-up, the per-step generation times) and the packed-attention
arithmetic. No run is started."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    loaded = {}
    for name in ("bench_cpu_step", "bench_packed_attention"):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        loaded[name] = module
    yield loaded
    for name in loaded:
        sys.modules.pop(name, None)


def _row(step, gen, update, total, testing=0.0):
    row = {"step": step, "timing_s/gen": gen, "timing_s/update_actor": update, "timing_s/step": total}
    if testing:
        row["timing_s/testing"] = testing
    return row


def test_summary_skips_the_warm_up_step_and_reports_medians_shares_and_start_up(bench):
    module = bench["bench_cpu_step"]
    rows = [
        {"step": 0, "val-core/acc": 0.1},  # a validation-only row is not a step
        _row(1, 16.0, 8.0, 40.0, testing=5.0),
        _row(2, 4.0, 6.0, 12.0),
        _row(3, 4.1, 5.0, 10.0),
        _row(4, 6.0, 7.0, 14.0),
    ]
    run = module.summarise(rows, wall=200.0)
    assert run.steps == 4 and run.first_step == 40.0
    assert run.startup == pytest.approx(200.0 - (40 + 5 + 12 + 10 + 14))
    assert run.phases["step"].median == 12.0 and run.phases["step"].share == 1.0
    gen = run.phases["gen"]
    assert (gen.median, gen.low, gen.high) == (4.1, 4.0, 6.0) and gen.share == pytest.approx(4.1 / 12.0)
    assert "old_log_prob" not in run.phases, "phases the run did not log are left out"
    assert run.gen_per_step == [16.0, 4.0, 4.1, 6.0]
    text = module.format_summary("after", run, baseline=run)
    assert "gen per step (s): 16.00, 4.00, 4.10, 6.00" in text and "1.000" in text
    with pytest.raises(ValueError, match="no training step"):
        module.summarise([{"step": 0}], wall=1.0)


def test_packed_layout_computes_the_square_of_the_micro_batch(bench):
    module = bench["bench_packed_attention"]
    lengths = module.row_lengths(1000, 100, 300, seed=1)
    assert sum(lengths) <= 1000 and all(100 <= n <= 300 for n in lengths)
    assert module.row_lengths(10, 100, 300) and len(module.row_lengths(10, 100, 300)) == 1, "at least one row"
    pairs = module.attention_pairs([2, 3])
    assert pairs == {"padded": 2 * 9, "packed": 25, "needed": 3 + 6}
    padded = module.padded_inputs([2, 3], vocab=50)
    assert padded["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert padded["position_ids"].tolist() == [[0, 1, 1], [0, 1, 2]]
    packed = module.packed_inputs(padded)
    assert packed["position_ids"].tolist() == [[0, 1, 0, 1, 2]], "positions restart at each row, as veRL packs"
    assert packed["input_ids"].shape == (1, 5)
