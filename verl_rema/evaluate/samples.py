"""Read veRL's validation dump into one :class:`Episode` per sampled answer, each tagged with its subset.

veRL's v1 trainer dumps one JSON line per TransferQueue row (``<step>.jsonl``): ``input``, ``output``, ``gts``,
``score``, ``step``, every key the reward returned (``acc``, ``finish_reason``, ...) and ``uid``, the row key
``{prompt uid}_{session}_{index}``. A ReMA episode leaves one row per role, all carrying the episode's reward, so
rows are grouped by ``{prompt uid}_{session}`` and the last one (highest index, the one veRL scores) is kept.

The subset of each episode comes from, in this order:

1. the ``rema_eval`` trainer's record ``<step>.rema.jsonl`` (the row's ``data_source``, which
   ``python -m verl_rema.evaluate`` sets to ``subset``), joined on the row key: exact;
2. otherwise (a dump of a training run in another trainer mode) the evaluation parquet: the question whose text
   occurs in the row's decoded prompt, among the questions with the row's ground truth (the longest match wins;
   a tie between subsets, or no match, is an error naming the row).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verl_rema.protocol import FINISH_REASON_FIELD, METRICS_FIELD, NUM_ROUNDS_FIELD, RowKey

SIDECAR_SUFFIX = ".rema.jsonl"  # == verl_rema.evaluate.trainer.SIDECAR_SUFFIX (not imported: that pulls in veRL)
_SPACE = re.compile(r"\s+")


class JoinError(ValueError):
    """A generation that cannot be tied to exactly one subset."""


@dataclass(frozen=True)
class Episode:
    """One sampled answer to one question (a session), with what the report aggregates."""

    question: str  # the prompt uid veRL gave the question in this run
    session: str
    subset: str
    acc: float | None
    score: float | None
    finish_reason: str | None
    rounds: float | None = None
    num_turns: float | None = None
    rows: int = 1
    metrics: Mapping[str, float | None] = field(default_factory=dict)


def split_row_key(key: str) -> tuple[str, str, int]:
    """A veRL row key -> (uid, episode ``{uid}_{session}``, index); other keys are their own episode."""
    try:
        row = RowKey.parse(key)
    except ValueError:
        return key, key, 0
    return row.uid, row.episode, row.index


def read_jsonl(path: Path, desc: str) -> list[dict[str, Any]]:
    """All records of a JSON-lines file; a malformed line is an error naming the file and line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(tqdm(lines, desc=desc, unit="row", leave=False), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number}: not JSON ({error.msg})") from None
    return records


def find_dump(path: str | Path) -> Path:
    """A dump file, or the latest step's dump in a ``validation_data_dir`` folder."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no validation dump at {path}")
    steps = [p for p in path.glob("*.jsonl") if not p.name.endswith(SIDECAR_SUFFIX) and p.stem.isdigit()]
    if not steps:
        raise FileNotFoundError(f"{path}: no <step>.jsonl validation dump (is trainer.validation_data_dir set?)")
    return max(steps, key=lambda p: int(p.stem))


def sidecar_of(dump: Path) -> Path:
    return dump.with_name(dump.stem + SIDECAR_SUFFIX)


def normalise(text: Any) -> str:
    """NFC and single spaces: decoded prompts may differ from the dataset text in whitespace only."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", str(text))).strip()


class QuestionIndex:
    """Questions of an evaluation parquet, found again in decoded prompts (join fallback 2)."""

    def __init__(self, rows: Iterable[tuple[str, str, str]], source: str = "evaluation data") -> None:
        self.source = source
        self.by_answer: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.everything: list[tuple[str, str]] = []
        for subset, question, answer in rows:
            entry = (normalise(question), subset)
            self.by_answer[normalise(answer)].append(entry)
            self.everything.append(entry)

    def subset_of(self, prompt_text: str, answer: Any, key: str) -> str:
        text = normalise(prompt_text)
        for candidates in (self.by_answer.get(normalise(answer), []), self.everything):
            hits = [(len(question), subset) for question, subset in candidates if question and question in text]
            if hits:
                longest = max(length for length, _ in hits)
                subsets = sorted({subset for length, subset in hits if length == longest})
                if len(subsets) > 1:
                    raise JoinError(f"row {key}: its question occurs in subsets {subsets} of {self.source}")
                return subsets[0]
        raise JoinError(f"row {key}: no question of {self.source} occurs in its prompt {prompt_text[:120]!r}...")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _rounds(record: Mapping[str, Any]) -> float | None:
    rounds = _number(record.get(NUM_ROUNDS_FIELD))
    if rounds is None and isinstance(record.get(METRICS_FIELD), Mapping):
        rounds = _number(record[METRICS_FIELD].get("rema/rounds"))
    return rounds


def episodes_from_rows(
    rows: list[Mapping[str, Any]],
    sidecar: Mapping[str, Mapping[str, Any]] | None = None,
    index: QuestionIndex | None = None,
    source: str = "dump",
) -> list[Episode]:
    """Group dump rows into episodes and tag each with its subset (sidecar first, then ``index``)."""
    if sidecar is None and index is None:
        raise JoinError(
            f"{source}: no {SIDECAR_SUFFIX} record beside the dump (run with trainer.v1.trainer_mode=rema_eval) "
            "and no evaluation parquet to join on (--data): cannot tell the subsets apart"
        )
    sessions: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    for position, row in enumerate(rows):
        key = row.get("uid")
        if not isinstance(key, str):
            raise ValueError(f"{source}: row {position} has no 'uid' row key")
        _, session, row_index = split_row_key(key)
        sessions[session].append((row_index, row))
    episodes = []
    for session, members in sessions.items():
        members.sort(key=lambda item: item[0])
        final = members[-1][1]
        key = final["uid"]
        record = (sidecar or {}).get(key)
        if record is not None and record.get("data_source") is not None:
            subset = str(record["data_source"])
        elif index is not None:
            subset = index.subset_of(final.get("input", ""), final.get("gts"), key)
        elif record is None:
            raise JoinError(f"{source}: row {key} has no record in the {SIDECAR_SUFFIX} file")
        else:
            raise JoinError(f"{source}: the {SIDECAR_SUFFIX} record of row {key} has no data_source; pass --data")
        record = record or {}
        reason = final.get("finish_reason", record.get(FINISH_REASON_FIELD))
        metrics = record.get(METRICS_FIELD) if isinstance(record.get(METRICS_FIELD), Mapping) else {}
        episodes.append(
            Episode(
                question=split_row_key(key)[0],
                session=session,
                subset=subset,
                acc=_number(final.get("acc")),
                score=_number(final.get("score")),
                finish_reason=None if reason is None else str(reason),
                rounds=_rounds(record),
                num_turns=_number(record.get("num_turns")),
                rows=len(members),
                metrics={k: _number(v) for k, v in metrics.items()},
            )
        )
    return episodes


def question_index_from_parquet(path: str | Path) -> QuestionIndex:
    """Index an evaluation parquet: ``question`` (or the last user message), ``subset`` (or ``data_source``)."""
    return QuestionIndex(iter_questions(path), source=str(path))


def iter_questions(path: str | Path) -> Iterable[tuple[str, str, str]]:
    """(subset, question, ground truth) per row of an evaluation parquet."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if "reward_model" not in frame.columns:
        raise ValueError(f"{path}: no 'reward_model' column (veRL RL parquet schema expected)")
    if "subset" not in frame.columns and "data_source" not in frame.columns:
        raise ValueError(f"{path}: neither a 'subset' nor a 'data_source' column")
    for position, row in enumerate(frame.to_dict("records")):
        subset = row.get("subset") or row.get("data_source")
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            prompt = row.get("prompt")
            messages = [m for m in (prompt if prompt is not None else []) if m.get("role") == "user"]
            question = messages[-1].get("content") if messages else None
        if not isinstance(question, str):
            raise ValueError(f"{path}: row {position}: no 'question' and no user message in 'prompt'")
        yield str(subset), question, str((row["reward_model"] or {}).get("ground_truth"))


def load_episodes(dump: str | Path, data: str | Path | None = None) -> tuple[Path, list[Episode]]:
    """Read a dump (file or folder) and its record file if present; ``data`` enables the text join for rows
    whose subset the record file does not give."""
    dump = find_dump(dump)
    rows = read_jsonl(dump, "reading generations")
    sidecar_path = sidecar_of(dump)
    sidecar = None
    if sidecar_path.is_file():
        sidecar = {record["key"]: record for record in read_jsonl(sidecar_path, "reading ReMA records")}
    index = question_index_from_parquet(data) if data is not None else None
    return dump, episodes_from_rows(rows, sidecar, index, source=str(dump))
