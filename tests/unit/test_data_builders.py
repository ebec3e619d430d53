"""Dataset builders on the small raw-format samples in tests/fixtures/data (never the hub)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from verl_rema.data import builders
from verl_rema.data.__main__ import main as cli
from verl_rema.data.builders import (
    BUILDERS,
    BUNDLED_EVAL,
    EVAL_SUBSETS,
    build_eval,
    build_eval_7bench,
    build_math_133,
    build_math_lv3to5,
    build_math_train,
)
from verl_rema.data.schema import BadRowError, answer_text, last_boxed, strip_math_delimiters, validate_row

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "data"
MATH_TYPES = {
    "Algebra",
    "Counting & Probability",
    "Geometry",
    "Intermediate Algebra",
    "Number Theory",
    "Prealgebra",
    "Precalculus",
}

# Gold answers as the reference parquet has them (the fixtures hold them in each source's raw format).
EXPECTED_EVAL = {
    "math500": ("math500_sample.jsonl", "MATH500", ["\\left( 3, \\frac{\\pi}{2} \\right)", "p - q", "\\frac{14}{3}"]),
    "gsm8k": ("gsm8k_sample.jsonl", "gsm8k", ["18", "3", "70000", "540", "20"]),  # "#### 70,000" in the file
    "aime24": ("aime24_sample.jsonl", "aime24", ["204", "113", "371", "385", "110"]),
    "amc23": ("amc23_sample.jsonl", "amc23", ["27", "36", "45", "3159", "36"]),  # floats in the file
    "gaokao2023en": ("gaokao2023en_sample.jsonl", "gaokao2023en", ["{x|-2\\lex<1}", "-1-\\sqrt{3}", "-1"]),  # $..$
    "minerva_math": ("minerva_math_sample.jsonl", "minerva_math", ["1.6", "4.5e33", "41.8", "20.39", "0.006"]),
    "olympiadbench": ("olympiadbench_sample.jsonl", "olympiadbench", ["2", "\\frac{1}{2n+2}", "2^{1009}"]),
    "aime25": ("aime25_sample.jsonl", "aime25", ["70", "588", "16", "117", "279"]),
}


def gold(row: dict) -> str:
    return row["reward_model"]["ground_truth"]


# -- schema helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{5}$.", "5"),
        ("\\boxed{\\frac{2\\sqrt{3}}{3}}", "\\frac{2\\sqrt{3}}{3}"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed{\\left\\{ x \\right.}", "\\left\\{ x \\right."),  # an escaped brace does not count
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\fbox{7}", "7"),
        ("$\\boxed 9$", "9"),
        ("\\boxed{unclosed", None),
        ("no box", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def test_answer_text_normalises_source_types() -> None:
    kw = {"file": "f", "row": 3, "field": "answer"}
    assert answer_text(27.0, **kw) == "27"
    assert answer_text(2.5, **kw) == "2.5"
    assert answer_text(["$(1,8,19)$", "$(2,7,13)$"], **kw) == "(1,8,19), (2,7,13)"
    assert strip_math_delimiters("$$x$$") == "x" and strip_math_delimiters("$a$ or $b$") == "$a$ or $b$"
    with pytest.raises(BadRowError, match="f: row 3: field 'answer': expected an answer, got a boolean"):
        answer_text(True, **kw)
    with pytest.raises(BadRowError, match="empty answer"):
        answer_text("  ", **kw)


# -- evaluation builders --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_EVAL))
def test_eval_builder_parses_its_raw_format(name: str) -> None:
    file, subset, answers = EXPECTED_EVAL[name]
    result = BUILDERS[name].fn(FIXTURES / file, on_bad_row="error")
    assert len(result.rows) == 5 and not result.skipped
    assert [gold(r) for r in result.rows[: len(answers)]] == answers
    for i, row in enumerate(result.rows):
        validate_row(row)
        assert row["data_source"] == row["subset"] == subset
        assert row["prompt"] == [{"role": "user", "content": row["question"]}]
        assert row["extra_info"]["split"] == "test" and row["extra_info"]["index"] == i
        assert row["extra_info"]["origin"] == f"{file}#{i}"


def test_minerva_answer_from_boxed_solution() -> None:
    result = BUILDERS["minerva_math"].fn(FIXTURES / "minerva_math_sample.jsonl")
    assert result.answers_from_solution == 1 and gold(result.rows[-1]) == "0.006"


def test_eval_7bench_from_prepared_rows_repairs_and_skips() -> None:
    result = build_eval_7bench(FIXTURES / "eval_7bench_sample.parquet")
    assert {r["subset"] for r in result.rows} == set(EVAL_SUBSETS)
    assert len(result.rows) == 41 and result.read == 42
    # row 97 of the reference (MATH500): empty gold answer, repaired from the boxed solution
    assert gold(result.rows[-1]) == "\\text{east}" and result.answers_from_solution == 1
    # row 1972 (gaokao2023en): empty gold answer and nothing to repair it from
    [skipped] = result.skipped
    assert (Path(skipped.file).name, skipped.row, skipped.field) == (
        "eval_7bench_sample.parquet",
        41,
        "reward_model.ground_truth",
    )
    with pytest.raises(BadRowError, match="eval_7bench_sample.parquet: row 41: field 'reward_model.ground_truth'"):
        build_eval_7bench(FIXTURES / "eval_7bench_sample.parquet", on_bad_row="error")


def test_eval_7bench_defaults_to_the_bundled_parquet() -> None:
    reference = pd.read_parquet(BUNDLED_EVAL, columns=["subset"])
    assert len(reference) == 3251
    result = build_eval_7bench()
    assert result.read == 3251 and len(result.rows) == 3248 and len(result.skipped) == 3
    counts = pd.Series([r["subset"] for r in result.rows]).value_counts().to_dict()
    expected = reference["subset"].value_counts().to_dict()
    expected["gaokao2023en"] -= 3  # the reference's three gaokao rows without a gold answer
    assert counts == expected


def test_single_benchmark_from_a_multi_benchmark_file_keeps_its_own_rows() -> None:
    result = build_eval("gsm8k", BUNDLED_EVAL)
    assert len(result.rows) == 1319 and sum(result.filtered.values()) == 3251 - 1319


def test_hub_sources_use_the_right_ids_configs_and_splits(monkeypatch) -> None:
    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [{"question": "Q?", "final_answer": ["$1$"], "answer": "5\n#### 5", "problem": "P?", "level": "Level 4"}]

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert len(BUILDERS["olympiadbench"].fn().rows) == 1
    assert calls == [("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train")]
    calls.clear()
    assert gold(build_eval("gsm8k").rows[0]) == "5" and calls == [("openai/gsm8k", "main", "test")]
    calls.clear()
    result = build_math_lv3to5(exclude_math500=False)  # the fake MATH rows lack `type`: malformed, skipped
    assert {c[0] for c in calls} == {"EleutherAI/hendrycks_math"} and len(calls) == 14  # 7 subjects x 2 splits
    assert len(result.skipped) == 14 and result.skipped[0].field == "type"
    calls.clear()
    build_eval("gsm8k", "someone/gsm8k-mirror")  # another hub id: its default config
    assert calls == [("someone/gsm8k-mirror", None, "test")]


def test_hub_failure_says_how_to_go_offline(monkeypatch) -> None:
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="pass --source with a local"):
        build_eval("gsm8k")


# -- training builders ----------------------------------------------------------------------------------------


def test_math_lv3to5_filters_levels_and_math500() -> None:
    result = build_math_lv3to5(FIXTURES / "hendrycks_math_sample.jsonl", on_bad_row="error")
    assert len(result.rows) == 21 and result.read == 25
    assert result.filtered == {
        "level 2 not in (3, 4, 5)": 2,
        "level ? not in (3, 4, 5)": 1,
        "MATH500 problem": 1,
    }
    assert {r["extra_info"]["type"] for r in result.rows} == MATH_TYPES
    assert {r["extra_info"]["level"] for r in result.rows} <= {"3", "4", "5"}
    assert all(r["subset"] == "MATH" and r["extra_info"]["split"] == "train" for r in result.rows)
    answers = [gold(r) for r in result.rows]
    assert answers[:8] == ["5", "6", "5", "23", "\\frac{5}{9}", "160", "420", "\\frac{2\\sqrt{3}}{3}"]
    assert "1, 6, 3 + \\sqrt{2}, 3 - \\sqrt{2}" in answers and "\\text{August}" in answers


def test_math_train_keeps_every_level_and_reads_only_the_hub_train_split(monkeypatch) -> None:
    result = build_math_train(FIXTURES / "hendrycks_math_sample.jsonl", on_bad_row="error")
    # 25 read, 3 are MATH500 problems (both level-2 rows among them); the "Level ?" row is kept, unlike math_lv3to5
    assert len(result.rows) == 22 and result.filtered == {"MATH500 problem": 3}
    assert any(r["extra_info"]["level"] is None for r in result.rows)
    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return []

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    build_math_train()
    assert {c[2] for c in calls} == {"train"} and len(calls) == 7  # 7 subjects, train split only


def test_math_lv3to5_reads_the_original_math_release_tree() -> None:
    result = build_math_lv3to5(FIXTURES / "math_raw")
    assert [r["extra_info"]["origin"] for r in result.rows] == ["test/geometry/0.json#0", "train/geometry/0.json#0"]


def test_math_133_is_seeded_stratified_sampling() -> None:
    source = FIXTURES / "hendrycks_math_sample.jsonl"
    first = build_math_133(source, per_type=2, seed=7)
    again = build_math_133(source, per_type=2, seed=7)
    assert [r["question"] for r in first.rows] == [r["question"] for r in again.rows]
    assert len(first.rows) == 14 and [r["extra_info"]["index"] for r in first.rows] == list(range(14))
    per_type = pd.Series([r["extra_info"]["type"] for r in first.rows]).value_counts()
    assert set(per_type.index) == MATH_TYPES and set(per_type) == {2}
    other = {tuple(r["question"] for r in build_math_133(source, per_type=2, seed=s).rows) for s in range(5)}
    assert len(other) > 1  # the seed matters
    with pytest.raises(ValueError, match="needs 4 questions per MATH subject"):
        build_math_133(source, per_type=4)


def test_malformed_rows_are_located_and_skipped_or_rejected() -> None:
    source = FIXTURES / "hendrycks_math_bad.jsonl"
    result = build_math_lv3to5(source)
    assert len(result.rows) == 1 and result.read == 6
    located = [(e.row, e.field) for e in result.skipped]
    assert located == [(1, "problem"), (2, "solution"), (3, "level"), (4, "<json>"), (5, "<row>")]
    assert all(Path(e.file) == source for e in result.skipped)
    with pytest.raises(BadRowError) as error:
        build_math_lv3to5(source, on_bad_row="error")
    assert (error.value.row, error.value.field) == (1, "problem")
    assert str(error.value) == f"{source}: row 1: field 'problem': empty"


# -- output: parquet that veRL's own dataset class loads -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    """A byte-level BPE tokenizer trained here on a few strings, with a ChatML template (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["What is 1 + 2? The answer is \\boxed{3}.", "Let $x$ be a real number."] * 20, trainer)
    template = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=template
    )


def test_output_loads_with_verl_rlhf_dataset(tmp_path, tiny_tokenizer) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    assert (
        cli(["build", "eval_7bench", "--source", str(FIXTURES / "eval_7bench_sample.parquet"), "--out", str(tmp_path)])
        == 0
    )
    path = tmp_path / "eval_7bench.parquet"
    config = OmegaConf.create(
        {"prompt_key": "prompt", "max_prompt_length": 4096, "filter_overlong_prompts": True, "cache_dir": str(tmp_path)}
    )
    dataset = RLHFDataset(str(path), tiny_tokenizer, config)
    assert len(dataset) == 41
    item = dataset[5]
    assert item["raw_prompt"] == [{"role": "user", "content": item["question"]}]
    assert item["reward_model"]["ground_truth"] == "18" and item["data_source"] == "gsm8k"
    assert item["index"] == 5 and item["extra_info"]["split"] == "test"
    text = tiny_tokenizer.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")


# -- command line ---------------------------------------------------------------------------------------------


def test_cli_build_list_and_errors(tmp_path, capsys) -> None:
    assert cli(["build", "gsm8k", "--source", str(FIXTURES / "gsm8k_sample.jsonl"), "--out", str(tmp_path)]) == 0
    assert "gsm8k: 5 rows written" in capsys.readouterr().out
    assert (
        pd.read_parquet(tmp_path / "gsm8k.parquet")["reward_model"].map(lambda r: r["ground_truth"]).tolist()[2]
        == "70000"
    )
    bad = FIXTURES / "hendrycks_math_bad.jsonl"
    assert cli(["build", "math_lv3to5", "--source", str(bad), "--out", str(tmp_path), "--on-bad-row", "error"]) == 1
    assert f"error: malformed row: {bad}: row 1: field 'problem': empty" in capsys.readouterr().err
    assert cli(["build", "math_lv3to5", "--source", str(bad), "--out", str(tmp_path)]) == 0
    assert "5 malformed skipped" in capsys.readouterr().out
    assert cli(["build", "aime24", "--source", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert cli(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in BUILDERS) and "present" in listed


def test_cli_entry_point_runs_as_a_module(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "verl_rema.data", "build", "math_133", "--per-type", "3", "--seed", "1"]
        + ["--source", str(FIXTURES / "hendrycks_math_sample.jsonl"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "math_133.parquet")) == 21


def test_every_builder_has_a_default_source() -> None:
    judge = {"rewardbench970", "judgebench"}  # tests/unit/test_judge_data.py
    assert set(BUILDERS) == {"math_lv3to5", "math_train", "math_133", "eval_7bench", *builders.EVAL_SPECS, *judge}
    assert all(b.default_source and b.description for b in BUILDERS.values())
