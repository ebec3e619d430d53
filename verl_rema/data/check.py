"""Checking RL data files as the ReMA rollout and reward will read them, before a step is spent on them.

veRL reads ``data.train_files`` / ``data.val_files`` itself (``RLHFDataset``: parquet, json, jsonl) and a malformed
row surfaces late: inside an agent-loop worker (no question: the rollout raises), in the reward (no gold answer:
scored 0 with status ``error``, silently) or as an episode that can never start (an opening chat over the context
cap: ``context_overflow`` at round 1, reward 0). :func:`check_file` finds them all up front, each as a
:class:`~verl_rema.data.schema.BadRowError` naming file, row index (0-based, in file order) and field:

* ``data_source``: a non-empty string (veRL's reward and metrics key);
* ``question``: a non-empty string, or absent with a user message with text in ``prompt`` (as the rollout reads it);
* ``prompt``: veRL's chat, a non-empty list of ``{role, content}`` messages;
* the prompt set's extra fields (the judge's ``response_a`` / ``response_b``): text, a column or in ``extra_info``;
* ``reward_model.ground_truth``: present and non-empty (a string, a number, or a list of them);
* ``extra_info``: a mapping or null, its ``index`` an integer; (``data_source``, ``subset``, ``extra_info.index``)
  unique in a file: veRL gives each sample its row's ``index``, and the rollout's errors and the per-sample dumps
  name a row by it (a duplicate makes them ambiguous);
* JSON rows: valid JSON objects without duplicate keys (a JSON parser keeps the last one silently);
* with a tokenizer: each role's opening chat (system prompt and first user message, as rendered by the chat
  template) within that role's context cap ``rema.rollout.max_context_tokens``.

``--on-bad-row`` (``python -m verl_rema.data check``, and ``rema.on_bad_row`` at the start of ``main_ppo``):
``error`` stops at the first bad row; ``skip`` lists every bad row and keeps the others.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from verl_rema.data.schema import BadRowError, BadRowPolicy, MissingFieldError, is_missing
from verl_rema.protocol import Role
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue, question_from_row, row_fields_of

READABLE = (".parquet", ".json", ".jsonl")


@dataclass
class FileCheck:
    """One file's outcome: the rows read, the indices kept (in order) and the bad rows."""

    file: str
    rows: int = 0
    kept: list[int] = field(default_factory=list)
    bad: list[BadRowError] = field(default_factory=list)
    overlong: list[BadRowError] = field(default_factory=list)  # kept rows whose opening chat is over its cap

    def summary(self) -> str:
        over = f", {len(self.overlong)} over the context cap (kept: they end context_overflow)" if self.overlong else ""
        return f"{self.file}: {self.rows} rows, {len(self.kept)} kept, {len(self.bad)} bad{over}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise KeyError(key)
    return dict(pairs)


def _json_row(text: str, file: str, row: int) -> dict[str, Any] | BadRowError:
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except KeyError as error:
        return BadRowError(file, row, str(error.args[0]), "duplicate key in the JSON object")
    except json.JSONDecodeError as error:
        return BadRowError(file, row, "<json>", f"invalid JSON: {error.msg}")
    return value if isinstance(value, dict) else BadRowError(file, row, "<json>", "not a JSON object")


def read_rows(path: str | Path) -> list[dict[str, Any] | BadRowError]:
    """Every row of a parquet/json/jsonl file, in file order; a row that cannot be parsed is its BadRowError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    if suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [_json_row(line, str(path), i) for i, line in enumerate(lines) if line.strip()]
    if suffix == ".json":
        text = path.read_text(encoding="utf-8")
        whole = _json_row(f'{{"rows": {text}}}', str(path), 0)
        if isinstance(whole, BadRowError) or not isinstance(whole.get("rows"), list):
            return [whole if isinstance(whole, BadRowError) else BadRowError(str(path), 0, "<json>", "not a list")]
        return [r if isinstance(r, dict) else BadRowError(str(path), i, "<json>", "not an object") for i, r in enumerate(whole["rows"])]  # fmt: skip
    raise ValueError(f"{path}: cannot read {suffix or 'a file without suffix'}; use one of {READABLE}")


def _listish(value: Any) -> list | None:
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist") and not isinstance(value, str | bytes | Mapping):
        listed = value.tolist()
        return listed if isinstance(listed, list) else None
    return None


def _check_gold(value: Any, file: str, row: int, where: str = "reward_model.ground_truth") -> None:
    if is_missing(value):
        raise MissingFieldError(file, row, where, "missing gold answer")
    items = _listish(value)
    if items is not None:
        if not items:
            raise MissingFieldError(file, row, where, "empty list of gold answers")
        for i, item in enumerate(items):
            _check_gold(item, file, row, f"{where}[{i}]")
        return
    if isinstance(value, bool) or not isinstance(value, str | numbers.Real):
        raise BadRowError(file, row, where, f"expected a string, a number or a list of them, got {type(value).__name__}")  # fmt: skip
    if isinstance(value, str) and not value.strip():
        raise MissingFieldError(file, row, where, "empty gold answer")


def _check_prompt(value: Any, file: str, row: int) -> None:
    messages = _listish(value)
    if is_missing(value) or messages is None:
        raise MissingFieldError(file, row, "prompt", f"expected veRL's chat (a list of messages), got {type(value).__name__}")  # fmt: skip
    if not messages or not all(isinstance(m, Mapping) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in messages):  # fmt: skip
        raise BadRowError(file, row, "prompt", "expected a non-empty list of {role, content} messages with text")


def check_row(record: Mapping[str, Any], file: str, row: int, settings: ReMARolloutConfig) -> None:
    """Raise the first BadRowError of one row (see the module doc for the rules)."""
    source = record.get("data_source")
    if is_missing(source) or (isinstance(source, str) and not source.strip()):
        raise MissingFieldError(file, row, "data_source", "missing or empty")
    if not isinstance(source, str):
        raise BadRowError(file, row, "data_source", f"expected a string, got {type(source).__name__}")
    question = record.get("question")
    if not is_missing(question) and not isinstance(question, str):
        raise BadRowError(file, row, "question", f"expected a string, got {type(question).__name__}")
    _check_prompt(record.get("prompt"), file, row)
    try:
        question_from_row(record)
    except ValueError:
        raise MissingFieldError(file, row, "question", "missing or empty, and no user message with text in `prompt`") from None  # fmt: skip
    try:
        row_fields_of(record, settings.prompts.row_fields)
    except ValueError as error:
        name = next((n for n in settings.prompts.row_fields if f"{n!r}" in str(error)), "row_fields")
        raise BadRowError(file, row, name, f"the prompt set {settings.prompts.name!r} needs it as text") from None
    reward = record.get("reward_model")
    if not isinstance(reward, Mapping):
        raise MissingFieldError(file, row, "reward_model", f"expected {{style, ground_truth}}, got {reward!r:.60}")
    _check_gold(reward.get("ground_truth"), file, row)
    extra = record.get("extra_info")
    if not is_missing(extra) and not isinstance(extra, Mapping):
        raise BadRowError(file, row, "extra_info", f"expected a mapping, got {type(extra).__name__}")
    index = extra.get("index") if isinstance(extra, Mapping) else None
    if index is not None and (isinstance(index, bool) or not isinstance(index, numbers.Integral)):
        raise BadRowError(file, row, "extra_info.index", f"expected an integer, got {index!r:.40}")


class OpeningLengths:
    """Each role's opening chat in tokens, as the rollout renders it (a lower bound for the RA: no MTA text yet)."""

    def __init__(self, settings: ReMARolloutConfig, tokenizer: Any, caps: Mapping[Role, int], chat_kwargs: Mapping[str, Any] | None = None):  # fmt: skip
        self.settings, self.tokenizer, self.caps, self.kwargs = settings, tokenizer, dict(caps), dict(chat_kwargs or {})

    def check(self, record: Mapping[str, Any], file: str, row: int) -> None:
        from verl.utils.tokenizer.chat_template import apply_chat_template

        dialogue = Dialogue(question_from_row(record), self.settings, row_fields_of(record, self.settings.prompts.row_fields))  # fmt: skip
        for role in self.settings.roles:
            ids = apply_chat_template(self.tokenizer, dialogue.opening(role), tokenize=True, add_generation_prompt=True, **self.kwargs)  # fmt: skip
            n = len(ids["input_ids"] if isinstance(ids, Mapping) else ids)
            if n > self.caps[role]:
                raise BadRowError(
                    file, row, "question",
                    f"the {role.value} opening chat is {n} tokens, over its cap of {self.caps[role]} "
                    f"({CONFIG_PATH}.max_context_tokens): every episode would end context_overflow before a message",
                )  # fmt: skip


def check_file(path: str | Path, settings: ReMARolloutConfig, policy: BadRowPolicy, lengths: OpeningLengths | None = None, overlong_is_bad: bool = True) -> FileCheck:  # fmt: skip
    """Check every row of ``path``; ``policy.mode == "error"`` raises the first BadRowError.

    ``overlong_is_bad=False`` (validation and evaluation data) keeps a row whose opening chat is over its cap and
    lists it in ``overlong``: an evaluation scores every row (such a row ends ``context_overflow``, reward 0), so
    dropping it would change the denominator."""
    file = str(path)
    result, seen = FileCheck(file), {}
    for row, record in enumerate(read_rows(path)):
        result.rows += 1
        try:
            if isinstance(record, BadRowError):
                raise record
            check_row(record, file, row, settings)
            extra = record.get("extra_info")
            index = extra.get("index") if isinstance(extra, Mapping) else None
            if index is not None:
                key = (record["data_source"], record.get("subset"), int(index))
                if key in seen:
                    raise BadRowError(file, row, "extra_info.index", f"duplicate key (data_source, subset, index)={key} of row {seen[key]}")  # fmt: skip
                seen[key] = row
            if lengths is not None:
                try:
                    lengths.check(record, file, row)
                except BadRowError as error:
                    if overlong_is_bad:
                        raise
                    result.overlong.append(error)
        except BadRowError as error:
            policy.handle(error)
            result.bad.append(error)
            continue
        result.kept.append(row)
    return result


def write_kept(path: str | Path, check: FileCheck, out: str | Path) -> Path:
    """The kept rows of ``path`` as a parquet file (what ``skip`` trains on)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if Path(path).suffix.lower() == ".parquet":  # the original columns and types, minus the bad rows
        frame = pd.read_parquet(path).iloc[check.kept]
    else:
        rows = read_rows(path)
        frame = pd.DataFrame([rows[i] for i in check.kept])
    frame.to_parquet(out, index=False)
    return out


__all__ = ["FileCheck", "OpeningLengths", "check_file", "check_row", "read_rows", "write_kept"]
