"""The LLM-as-a-judge builders: RewardBench970 (both orders, strict/loose split, exact counts) and JudgeBench, on the
shipped real-format samples and on a synthetic stand-in with RewardBench's 2,985-pair shape. Nothing downloads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from verl_rema.data.__main__ import main
from verl_rema.data.builders import BUILDERS
from verl_rema.data.judge import build_judgebench, build_rewardbench970
from verl_rema.data.judge_lengths import MARKER, LengthBudget
from verl_rema.data.judge_split import Group, allocate, stratified_group_split
from verl_rema.data.schema import BadRowError, validate_row

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
RB_SAMPLE = FIXTURES / "rewardbench_sample.jsonl"
JB_SAMPLE = FIXTURES / "judgebench_sample.jsonl"

# RewardBench's filtered split (HF dataset card, rewardbench/constants.py): 23 subsets, 2,985 pairs.
RB_COUNTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28, "mt-bench-med": 40,
    "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "refusals-dangerous": 100, "refusals-offensive": 100,
    "xstest-should-refuse": 250, "xstest-should-respond": 154, "donotanswer": 136, "math-prm": 447,
    **{f"hep-{lang}": 164 for lang in ("cpp", "go", "java", "js", "python", "rust")},
}  # fmt: skip


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """2,985 pairs with RewardBench's subsets and counts; AlpacaEval prompts repeat across the three alpacaeval
    subsets and MT-Bench prompts across the three mt-bench subsets, as in the real data."""
    assert sum(RB_COUNTS.values()) == 2985
    rows, pair_id = [], 0
    for subset, count in RB_COUNTS.items():
        for k in range(count):
            family = subset.split("-")[0] if subset.startswith(("alpacaeval", "mt-bench")) else subset
            prompt = f"{family} prompt {k % 70}" if family != subset else f"{subset} prompt {k}"
            rows.append({"prompt": prompt, "chosen": f"good answer {pair_id}", "chosen_model": "m1",
                         "rejected": f"bad answer {pair_id}", "rejected_model": "m2", "subset": subset,
                         "id": pair_id})  # fmt: skip
            pair_id += 1
    path = tmp_path_factory.mktemp("standin") / "reward_bench_filtered.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _tuples(rows) -> list[tuple[str, str, str]]:
    return [(r["question"], r["extra_info"]["response_a"], r["extra_info"]["response_b"]) for r in rows]


def test_every_pair_is_built_in_both_orders_with_the_label_following_the_chosen_response():
    result = build_rewardbench970(RB_SAMPLE, test_size=8)
    source = [json.loads(line) for line in RB_SAMPLE.read_text().splitlines()]
    assert len(result.rows) == 2 * len(source) == 28
    by_pair = {}
    for row in result.rows:
        validate_row(row)
        info = row["extra_info"]
        assert row["ability"] == "judge" and row["data_source"] == row["subset"]
        by_pair.setdefault(info["pair_id"], {})[info["game"]] = row
    for pair in source:
        games = by_pair[f"rewardbench:{pair['id']}"]
        chosen_first, chosen_second = games["1"], games["2"]
        assert chosen_first["question"] == chosen_second["question"] == pair["prompt"]
        assert (chosen_first["extra_info"]["response_a"], chosen_first["extra_info"]["response_b"]) == (
            pair["chosen"], pair["rejected"])  # fmt: skip
        assert (chosen_second["extra_info"]["response_a"], chosen_second["extra_info"]["response_b"]) == (
            pair["rejected"], pair["chosen"])  # fmt: skip
        assert chosen_first["reward_model"]["ground_truth"] == "A"
        assert chosen_second["reward_model"]["ground_truth"] == "B"
        assert chosen_second["extra_info"]["model_a"] == pair["rejected_model"]
        assert chosen_first["subset"] == pair["subset"]


@pytest.mark.parametrize("split", ["strict", "loose"])
def test_standin_split_has_exactly_5000_train_and_970_test_tuples_stratified_by_subset(standin, split):
    result = build_rewardbench970(standin, split=split)
    assert (len(result.train_rows), len(result.test_rows)) == (5000, 970)
    assert {r["extra_info"]["split"] for r in result.train_rows} == {"train"}
    assert {r["extra_info"]["split"] for r in result.test_rows} == {"test"}
    test_counts = Counter(r["subset"] for r in result.test_rows)
    assert set(test_counts) == set(RB_COUNTS)  # every subset is in the test set
    for subset, count in RB_COUNTS.items():
        expected = 970 * 2 * count / 5970  # 16.25% of the subset's tuples
        assert abs(test_counts[subset] - expected) <= 3, (subset, test_counts[subset], expected)
        assert result.counts[subset] == {"tuples": 2 * count, "train": 2 * count - test_counts[subset],
                                         "test": test_counts[subset], "target": result.counts[subset]["target"]}  # fmt: skip
    assert sum(c["target"] for c in result.counts.values()) == 970


def test_strict_split_shares_no_instruction_and_keeps_both_orders_together(standin):
    result = build_rewardbench970(standin, split="strict")
    train = {r["question"] for r in result.train_rows}
    test = {r["question"] for r in result.test_rows}
    assert not train & test
    # prompts repeated across alpacaeval subsets exist and were grouped, not just avoided
    assert any(sum(1 for r in result.test_rows if r["question"] == q) > 2 for q in test)
    sides = {}
    for split, rows in (("train", result.train_rows), ("test", result.test_rows)):
        for row in rows:
            sides.setdefault(row["extra_info"]["pair_id"], set()).add(split)
    assert all(len(s) == 1 for s in sides.values())


def test_loose_split_shares_no_tuple_but_may_share_instructions(standin):
    result = build_rewardbench970(standin, split="loose")
    assert not set(_tuples(result.train_rows)) & set(_tuples(result.test_rows))
    shared = {r["question"] for r in result.train_rows} & {r["question"] for r in result.test_rows}
    assert shared  # the loose setting only forbids identical tuples; the orders of one pair may straddle


def test_split_is_deterministic_from_the_seed(standin):
    first, again = build_rewardbench970(standin, seed=7), build_rewardbench970(standin, seed=7)
    other = build_rewardbench970(standin, seed=8)
    assert _tuples(first.test_rows) == _tuples(again.test_rows)
    assert set(_tuples(first.test_rows)) != set(_tuples(other.test_rows))
    shuffled = standin.with_name("shuffled.jsonl")
    lines = standin.read_text().splitlines()
    shuffled.write_text("\n".join(reversed(lines)) + "\n")  # the split does not depend on the source's row order
    assert set(_tuples(build_rewardbench970(shuffled, seed=7).test_rows)) == set(_tuples(first.test_rows))


def test_cli_prints_and_stores_the_per_subset_counts(standin, tmp_path, capsys):
    assert main(["build", "rewardbench970", "--split", "loose", "--source", str(standin), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "5000 train + 970 test tuples" in printed and "math-prm" in printed
    stored = json.loads((tmp_path / "rewardbench970_loose_split.json").read_text())
    assert stored["settings"]["split"] == "loose" and stored["settings"]["seed"] == 42
    assert sum(c["test"] for c in stored["counts"].values()) == 970
    assert len(pd.read_parquet(tmp_path / "rewardbench970_loose_test.parquet")) == 970
    assert len(pd.read_parquet(tmp_path / "rewardbench970_loose_train.parquet")) == 5000
    assert {"rewardbench970", "judgebench"} <= set(BUILDERS)


def test_allocation_and_group_split_are_exact_or_refuse():
    assert allocate(970, {"a": 2985 * 2 - 10, "b": 10}, unit=2) == {"a": 968, "b": 2}
    assert sum(allocate(7, {"x": 5, "y": 5, "z": 5}).values()) == 7
    with pytest.raises(ValueError, match="multiple of 2"):
        allocate(5, {"x": 10}, unit=2)
    groups = [Group("g1", {"x": 4}), Group("g2", {"x": 4})]
    with pytest.raises(ValueError, match="cannot take exactly 2"):
        stratified_group_split(groups, 2, {"x": 2}, seed=0)


def test_rewardbench_bad_rows_are_named_by_file_row_and_field(tmp_path):
    good = json.loads(RB_SAMPLE.read_text().splitlines()[0])
    bad = [{**good, "id": 1, "prompt": "  "}, {**good, "id": 2, "chosen": None}, {**good, "id": 3, "rejected": 5},
           {**good, "id": 4}, {**good, "id": 4, "prompt": "duplicate id"}]  # fmt: skip
    rows = [{**good, "id": 10 + i, "prompt": f"q{i}"} for i in range(4)] + bad
    path = tmp_path / "rb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = build_rewardbench970(path, test_size=2)
    assert [(e.row, e.field) for e in result.skipped] == [(4, "prompt"), (5, "chosen"), (6, "rejected"), (8, "id")]
    with pytest.raises(BadRowError, match=r"rb.jsonl: row 4: field 'prompt'"):
        build_rewardbench970(path, test_size=2, on_bad_row="error")


def test_judgebench_rows_both_games_labels_and_categories():
    source = [json.loads(line) for line in JB_SAMPLE.read_text().splitlines()]
    result = build_judgebench(JB_SAMPLE)
    assert len(result.rows) == 2 * len(source)
    for pair, (game1, game2) in zip(source, zip(result.rows[::2], result.rows[1::2], strict=True), strict=True):
        for row in (game1, game2):
            validate_row(row)
            assert (
                row["question"] == pair["question"] and row["extra_info"]["pair_id"] == f"judgebench:{pair['pair_id']}"
            )
        assert game1["reward_model"]["ground_truth"] == pair["label"][0]
        assert game2["reward_model"]["ground_truth"] == {"A": "B", "B": "A"}[pair["label"][0]]
        assert (game1["extra_info"]["response_a"], game2["extra_info"]["response_b"]) == (pair["response_A"],) * 2
        assert game1["extra_info"]["label"] == pair["label"] and game1["extra_info"]["source"] == pair["source"]
    assert Counter(r["subset"] for r in result.rows[::2]) == {
        "judgebench-knowledge": 3, "judgebench-reasoning": 1, "judgebench-math": 1, "judgebench-coding": 1}  # fmt: skip
    assert "gpt-4o-2024-05-13: 4 pairs" in result.summary() and "this source gave 6" in result.summary()
    assert [r["extra_info"]["game"] for r in build_judgebench(JB_SAMPLE, games=1).rows] == ["1"] * len(source)


def test_judgebench_bad_label_and_source_are_reported(tmp_path):
    good = json.loads(JB_SAMPLE.read_text().splitlines()[0])
    path = tmp_path / "jb.jsonl"
    rows = [good, {**good, "pair_id": "x", "label": "A=B"}, {**good, "pair_id": "y", "source": "gsm8k"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = build_judgebench(path)
    assert [(e.row, e.field) for e in result.skipped] == [(1, "label"), (2, "source")]
    assert len(result.rows) == 2


def test_length_budget_truncates_by_the_stated_rule_or_filters():
    budget = LengthBudget(100, "truncate")
    kept = budget.apply("q" * 20, "short answer", "x" * 200)
    assert kept.truncated and kept.response_1 == "short answer"  # fits its half: untouched
    assert kept.response_2.endswith(MARKER) and len(kept.response_2) == 80 - len("short answer")
    even = budget.apply("q" * 20, "a" * 100, "b" * 100)
    assert len(even.response_1) == len(even.response_2) == 40 and even.response_1.startswith("a" * 20)
    assert budget.apply("q" * 20, "a", "b").truncated is False
    assert budget.apply("q" * 95, "a" * 10, "b" * 10) is None  # the instruction is never cut
    assert LengthBudget(100, "filter").apply("q" * 20, "a" * 100, "b") is None


def test_length_budget_applies_to_both_orders_and_is_reported(tmp_path):
    result = build_rewardbench970(RB_SAMPLE, test_size=8, budget=LengthBudget(150, "truncate"))
    assert len(result.rows) == 28
    for row in result.rows:
        info = row["extra_info"]
        assert len(row["question"]) + len(info["response_a"]) + len(info["response_b"]) <= 150
    by_pair = {}
    for row in result.rows:
        by_pair.setdefault(row["extra_info"]["pair_id"], []).append(row["extra_info"])
    for first, second in by_pair.values():
        assert (first["response_a"], first["response_b"]) == (second["response_b"], second["response_a"])
    assert any("pairs truncated to the length budget of 150 characters" in note for note in result.notes)
    filtered = build_rewardbench970(RB_SAMPLE, test_size=4, budget=LengthBudget(150, "filter"))
    assert sum(filtered.filtered.values()) > 0 and len(filtered.rows) == 2 * (14 - sum(filtered.filtered.values()))
    assert main(["build", "judgebench", "--source", str(JB_SAMPLE), "--tokenizer", "x", "--out", str(tmp_path)]) == 1


def test_length_budget_in_tokens_of_a_tokenizer(embedded):
    from transformers import AutoTokenizer

    budget = LengthBudget(80, "truncate", AutoTokenizer.from_pretrained(embedded.model))
    question = "Which answer explains photosynthesis better?"
    long = "Plants turn light, water and carbon dioxide into sugar and oxygen inside their chloroplasts. " * 3
    trimmed = budget.apply(question, long, "Photosynthesis is when plants eat soil.")
    assert budget.unit == "tokens" and "80 tokens of" in budget.describe()
    assert (
        trimmed.truncated and trimmed.response_1.startswith("Plants turn light") and trimmed.response_1.endswith(MARKER)
    )
    total = sum(budget.measure(text) for text in (question, trimmed.response_1, trimmed.response_2))
    assert 70 <= total <= 80  # cut by tokens, not characters
