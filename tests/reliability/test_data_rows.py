"""Data validation drill (issue 16, item 4): every malformed training/evaluation row is reported with file, row index
and field; ``--on-bad-row skip|error`` (``python -m verl_rema.data check``) and ``rema.on_bad_row`` (the start of
``main_ppo`` / ``evaluate``) behave as documented for training data.

The rows are the embedded default's validation rows (veRL's RL schema, as ReMA builds them); each case breaks one
row in one way and expects exactly that row and field to be named.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from transformers import AutoTokenizer

from verl_rema.data.__main__ import main as data_cli
from verl_rema.data.check import OpeningLengths, check_file, read_rows
from verl_rema.data.schema import BadRowError, BadRowPolicy
from verl_rema.data.startup import check_data
from verl_rema.rollout.config import ReMARolloutConfig

N_ROWS = 12
LONG = "Compute " + " + ".join(str(i) for i in range(400)) + "."  # ~1,600 tokens of the embedded tokenizer


def _set(path: str, value: Any):
    def corrupt(row: dict) -> None:
        *parents, last = path.split(".")
        node = row
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return corrupt


def _no_question(row: dict) -> None:
    row["question"] = None
    row["prompt"] = [{"role": "user", "content": "   "}]


# (case id, corruption, field named, reason fragment)
CASES = [
    ("question missing, prompt without text", _no_question, "question", "missing or empty"),
    (
        "question empty, prompt without text",
        lambda r: (_no_question(r), r.update(question="  ")),
        "question",
        "missing or empty",
    ),  # fmt: skip
    ("question not a string", _set("question", 5), "question", "expected a string, got int"),
    ("prompt missing", _set("prompt", None), "prompt", "expected veRL's chat"),
    ("prompt a string", _set("prompt", "Compute 1+1"), "prompt", "expected veRL's chat"),
    ("prompt message without content", _set("prompt", [{"role": "user"}]), "prompt", "{role, content}"),
    ("gold answer missing", _set("reward_model.ground_truth", None), "reward_model.ground_truth", "missing gold"),
    ("gold answer empty", _set("reward_model.ground_truth", "  "), "reward_model.ground_truth", "empty gold"),
    ("gold answer a boolean", _set("reward_model.ground_truth", True), "reward_model.ground_truth", "got bool"),
    (
        "gold answer list with an empty item",
        _set("reward_model.ground_truth", ["3", ""]),
        "reward_model.ground_truth[1]",
        "empty",
    ),  # fmt: skip
    ("reward_model missing", _set("reward_model", None), "reward_model", "style, ground_truth"),
    ("data_source empty", _set("data_source", ""), "data_source", "missing or empty"),
    ("data_source not a string", _set("data_source", 7), "data_source", "expected a string, got int"),
    ("extra_info a string", _set("extra_info", "split=val"), "extra_info", "expected a mapping"),
    ("extra_info.index not an integer", _set("extra_info.index", "x"), "extra_info.index", "expected an integer"),
    ("duplicate key", "duplicate", "extra_info.index", "duplicate key .* of row 1"),
    (
        "prompt over the length budget",
        lambda r: r.update(question=LONG),
        "question",
        "opening chat is \\d+ tokens, over its cap of 512",
    ),  # fmt: skip
]


@pytest.fixture(scope="module")
def clean_rows(embedded) -> list[dict]:
    return read_rows(embedded.val)[:N_ROWS]


@pytest.fixture(scope="module")
def lengths(embedded) -> OpeningLengths:
    settings = ReMARolloutConfig(max_context_tokens=512)
    return OpeningLengths(
        settings, AutoTokenizer.from_pretrained(str(embedded.model)), {role: 512 for role in settings.roles}
    )


def write(rows: list[dict], path: Path) -> Path:
    """Parquet (one type per column: only missing/empty values can be broken) or JSON lines (any type; veRL reads
    both)."""
    if path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path, index=False)
    else:
        lines = (json.dumps(row, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)) for row in rows)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_embedded_data_and_a_built_evaluation_file_pass(embedded, lengths):
    """No false positives: the data ReMA ships and builds pass every check, the length check included."""
    for path in (embedded.train, embedded.val):
        result = check_file(path, lengths.settings, BadRowPolicy("error"), lengths)
        assert result.rows > 0 and not result.bad and len(result.kept) == result.rows


@pytest.mark.parametrize(("case", "corrupt", "field", "reason"), CASES, ids=[c[0] for c in CASES])
def test_a_malformed_row_is_named_by_file_row_and_field(case, corrupt, field, reason, clean_rows, lengths, tmp_path):
    rows = copy.deepcopy(clean_rows)
    bad = 7
    if corrupt == "duplicate":  # the key of row 1: (data_source, subset, extra_info.index)
        rows[bad].update(data_source=rows[1]["data_source"], subset=rows[1]["subset"])
        rows[bad]["extra_info"]["index"] = rows[1]["extra_info"]["index"]
    else:
        corrupt(rows[bad])
    path = write(rows, tmp_path / "train.jsonl")
    with pytest.raises(BadRowError, match=reason) as error:
        check_file(path, lengths.settings, BadRowPolicy("error"), lengths)
    assert (error.value.file, error.value.row, error.value.field) == (str(path), bad, field)
    assert f"{path}: row {bad}: field {field!r}" in str(error.value)
    # skip: the same row is listed, every other row is kept, in order
    result = check_file(path, lengths.settings, BadRowPolicy("skip"), lengths)
    assert [(e.row, e.field) for e in result.bad] == [(bad, field)]
    assert result.kept == [i for i in range(N_ROWS) if i != bad]


def test_a_question_only_in_the_prompt_is_fine(clean_rows, lengths, tmp_path):
    """The rollout falls back to the prompt's last user message; the check accepts what the rollout accepts."""
    rows = copy.deepcopy(clean_rows)
    rows[3]["question"] = None
    assert not check_file(write(rows, tmp_path / "t.parquet"), lengths.settings, BadRowPolicy("error"), lengths).bad


def test_the_judge_prompt_set_needs_both_responses(clean_rows, tmp_path):
    rows = copy.deepcopy(clean_rows)
    for row in rows:
        row["extra_info"] = {**row["extra_info"], "response_a": "A says 3", "response_b": "B says 4"}
    del rows[4]["extra_info"]["response_b"]
    settings = ReMARolloutConfig(prompt_set="judge_singleturn", max_turns=1)
    result = check_file(write(rows, tmp_path / "judge.parquet"), settings, BadRowPolicy("skip"))
    assert [(e.row, e.field) for e in result.bad] == [(4, "response_b")]


def test_jsonl_rows_duplicate_keys_and_invalid_json_are_named(clean_rows, tmp_path):
    lines = write(clean_rows[:5], tmp_path / "rows.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('{"data_source"', '{"question": "first", "data_source"', 1)  # "question" twice
    lines[3] = lines[3][:-5]  # cut short
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = check_file(path, ReMARolloutConfig(), BadRowPolicy("skip"))
    assert [(e.row, e.field) for e in result.bad] == [(1, "question"), (3, "<json>")]  # 0-based line numbers
    assert "duplicate key" in result.bad[0].reason and "invalid JSON" in result.bad[1].reason
    assert result.kept == [0, 2, 4]


def test_the_check_command_error_stops_and_skip_writes_the_good_rows(clean_rows, tmp_path, capsys):
    rows = copy.deepcopy(clean_rows)
    rows[2]["reward_model"]["ground_truth"] = None
    rows[9]["question"] = 3
    path = write(rows, tmp_path / "train.jsonl")
    assert data_cli(["check", str(path)]) == 1  # --on-bad-row error is the default
    assert f"{path}: row 2: field 'reward_model.ground_truth'" in capsys.readouterr().err
    assert data_cli(["check", str(path), "--on-bad-row", "skip", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "12 rows, 10 kept, 2 bad" in printed and "row 9: field 'question'" in printed
    kept = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert kept["question"].tolist() == [r["question"] for i, r in enumerate(rows) if i not in (2, 9)]


def _config(embedded, train: Path, tmp_path: Path, on_bad_row: str):
    from tests.reliability.test_config_table import Composer

    overrides = ["+preset=cpu", f"data.train_files={train}", f"trainer.default_local_dir={tmp_path / 'ck'}"]
    return Composer(embedded).real("rema_multiturn", [*overrides, f"rema.on_bad_row={on_bad_row}"])


def test_start_up_check_error_names_the_row_and_skip_trains_on_the_others(embedded, clean_rows, tmp_path):
    """``main_ppo``'s start: error stops before Ray naming file/row/field; skip repoints data.train_files at a copy
    of the good rows (under the run's checkpoint folder) and leaves the clean validation file as it is."""
    from verl_rema.checks import rollout_settings

    rows = copy.deepcopy(clean_rows)
    rows[5]["question"] = ""
    rows[5]["prompt"] = [{"role": "user", "content": ""}]
    train = write(rows, tmp_path / "train.parquet")
    config = _config(embedded, train, tmp_path, "error")
    with pytest.raises(ValueError, match=rf"data.train_files: {train}: row 5: field 'question'.*rema.on_bad_row=skip"):
        check_data(config, rollout_settings(config))
    config = _config(embedded, train, tmp_path, "skip")
    results = check_data(config, rollout_settings(config))
    assert [(r.file, [e.row for e in r.bad]) for r in results] == [(str(train), [5]), (str(embedded.val), [])]
    checked = Path(config.data.train_files)
    assert checked.parent == tmp_path / "ck" / "checked_data" and config.data.val_files == str(embedded.val)
    assert pd.read_parquet(checked)["question"].tolist() == [r["question"] for i, r in enumerate(rows) if i != 5]
    config = _config(embedded, train, tmp_path, "sometimes")
    with pytest.raises(ValueError, match=r"rema.on_bad_row='sometimes'; allowed: \['error', 'skip'\]"):
        check_data(config, rollout_settings(config))


def test_validation_rows_over_the_context_cap_are_kept_and_reported(embedded, clean_rows, tmp_path, capsys):
    """An evaluation scores every row: an over-long validation opening stays (it ends context_overflow, reward 0) and
    is reported; the same row in the training data stops the start under ``error``."""
    from verl_rema.checks import rollout_settings

    rows = copy.deepcopy(clean_rows)
    rows[3]["question"] = LONG
    long_file = write(rows, tmp_path / "long.parquet")
    config = _config(embedded, embedded.train, tmp_path, "error")
    config.data.val_files = str(long_file)
    results = check_data(config, rollout_settings(config))
    assert [(r.file, len(r.kept), [e.row for e in r.overlong]) for r in results][1] == (str(long_file), N_ROWS, [3])
    assert config.data.val_files == str(long_file)  # not repointed at a copy
    assert "1 over the context cap (kept: they end context_overflow)" in capsys.readouterr().out
    config = _config(embedded, long_file, tmp_path, "error")
    with pytest.raises(ValueError, match=rf"data.train_files: {long_file}: row 3: field 'question'.*over its cap"):
        check_data(config, rollout_settings(config))


def test_an_evaluation_checks_its_evaluation_files_only(embedded, clean_rows, tmp_path):
    """``python -m verl_rema.evaluate`` never reads data.train_files (a judge recipe's default is the math set)."""
    from verl_rema.checks import rollout_settings

    rows = copy.deepcopy(clean_rows)
    rows[2]["reward_model"] = None
    train = write(rows, tmp_path / "train.parquet")
    config = _config(embedded, train, tmp_path, "error")
    with pytest.raises(ValueError, match="data.train_files"):
        check_data(config, rollout_settings(config))
    config.trainer.v1.trainer_mode = "rema_eval"
    assert [r.file for r in check_data(config, rollout_settings(config))] == [str(embedded.val)]
