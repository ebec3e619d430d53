"""One builder per dataset: read its public source (Hugging Face hub or local files), emit veRL RL rows.

Sources. ``source`` is a local path (a ``.jsonl``/``.json``/``.parquet`` file, or a folder searched recursively for
them, e.g. the original MATH release's one-JSON-object-per-problem tree) or a hub dataset id read with
``datasets.load_dataset``. Each builder understands its benchmark's raw format (MATH's boxed solutions, GSM8K's
``#### answer``, OlympiadBench's ``final_answer`` list, ...) and also already-prepared rows in veRL's schema
(``question`` + ``reward_model.ground_truth``, optionally ``subset``), such as the bundled evaluation parquet.

Malformed rows (missing or empty question or answer, wrong types, undecodable JSON) are reported with file, row
index (0-based: parquet row, JSON-lines line, JSON array position) and field, then skipped and counted or raised,
as ``on_bad_row`` says. Rows that are well formed but out of scope (wrong MATH level, another benchmark's rows,
MATH500 problems in the training set) are "filtered", counted separately.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from verl_rema.data.schema import (
    BadRowError,
    BadRowPolicy,
    MissingFieldError,
    OnBadRow,
    answer_text,
    get_path,
    is_missing,
    last_boxed,
    make_row,
    require_text,
    strip_math_delimiters,
)

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_EVAL = ASSETS / "rema_math_eval_7bench.parquet"
"""The reference 8-benchmark evaluation set (3,251 rows), shipped so that evaluation data needs no download."""

EVAL_SUBSETS: tuple[str, ...] = (
    "MATH500",
    "gsm8k",
    "aime24",
    "amc23",
    "gaokao2023en",
    "minerva_math",
    "olympiadbench",
    "aime25",
)
MATH_SUBSET = "MATH"
HENDRYCKS_MATH_HUB = "EleutherAI/hendrycks_math"
HENDRYCKS_MATH_CONFIGS: tuple[str, ...] = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")

AnswerParser = Callable[..., str]


@dataclass(frozen=True)
class Record:
    """One raw input row and where it came from (``file``: full path or hub label, used in error messages)."""

    file: str
    row: int
    data: Mapping[str, Any]
    label: str = ""  # short, machine-independent file name for ``extra_info.origin``

    @property
    def origin(self) -> str:
        return f"{self.label or self.file}#{self.row}"


@dataclass
class BuildResult:
    """A builder's rows plus what it read, filtered out and skipped."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    skipped: list[BadRowError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers_from_solution: int = 0  # answers taken from a worked solution's last \boxed{}

    def summary(self) -> str:
        lines = [f"{self.name}: {len(self.rows)} rows written, {self.read} read, {len(self.skipped)} malformed skipped"]
        if self.answers_from_solution:
            lines.append(f"  {self.answers_from_solution} answers taken from the last \\boxed{{}} of a solution")
        for reason, count in sorted(self.filtered.items()):
            lines.append(f"  filtered {count}: {reason}")
        for error in self.skipped[:20]:
            lines.append(f"  skipped: {error}")
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more skipped rows")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------------------


def is_local_source(source: str | Path) -> bool:
    """A path that exists, or one that clearly names a file; everything else is taken for a hub dataset id."""
    text = str(source)
    return Path(text).exists() or text.startswith((".", "/", "~")) or text.lower().endswith(LOCAL_SUFFIXES)


def _local_files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(LOCAL_SUFFIXES)} files under {path}")
    return files


def _read_json_lines(path: Path, label: str) -> Iterator[Record]:
    with path.open(encoding="utf-8") as handle:
        for row, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:  # reported by the builder, under its --on-bad-row policy
                data = BadRowError(str(path), row, "<json>", f"invalid JSON: {exc.msg}")
            yield Record(str(path), row, data, label)


def _read_json(path: Path, label: str) -> Iterator[Record]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        yield Record(str(path), 0, BadRowError(str(path), 0, "<json>", f"invalid JSON: {exc.msg}"), label)
        return
    items = data if isinstance(data, list) else [data]  # the MATH release: one object per file
    for row, item in enumerate(items):
        yield Record(str(path), row, item, label)


def _read_parquet(path: Path, label: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

    for row, item in enumerate(pq.read_table(path).to_pylist()):
        yield Record(str(path), row, item, label)


def iter_local_records(source: str | Path) -> Iterator[Record]:
    """Rows of every ``.jsonl``/``.json``/``.parquet`` file at ``source`` (a file or a folder), in path order.

    An undecodable JSON row comes through with a :class:`BadRowError` as its ``data``."""
    root = Path(source).expanduser()
    for path in _local_files(root):
        label = path.relative_to(root).as_posix() if root.is_dir() else path.name
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from _read_json_lines(path, label)
        elif suffix == ".json":
            yield from _read_json(path, label)
        else:
            yield from _read_parquet(path, label)


def iter_hub_records(hub_id: str, configs: Sequence[str | None], splits: Sequence[str]) -> Iterator[Record]:
    """Rows of a hub dataset, config by config and split by split (``datasets`` caches the download)."""
    import datasets

    for config in configs:
        for split in splits:
            label = f"hf://{hub_id}" + (f"/{config}" if config else "") + f"[{split}]"
            try:
                dataset = datasets.load_dataset(hub_id, config, split=split)
            except Exception as exc:
                raise RuntimeError(
                    f"could not load {label} from the Hugging Face hub ({type(exc).__name__}: {exc}); "
                    "offline? pass --source with a local .jsonl/.json/.parquet file or folder"
                ) from exc
            for row, item in enumerate(dataset):
                yield Record(label, row, item)


# ---------------------------------------------------------------------------------------------------------------
# Field extraction
# ---------------------------------------------------------------------------------------------------------------


def plain_answer(value: Any, *, file: str, row: int, field: str) -> str:
    """An answer field that holds just the answer (string, number, or list of answers)."""
    return answer_text(value, file=file, row=row, field=field)


def gsm8k_answer(value: Any, *, file: str, row: int, field: str) -> str:
    """GSM8K's ``answer``: worked solution, then ``#### 70,000``; the number after ``####``, commas removed."""
    text = require_text(value, file=file, row=row, field=field)
    if "####" not in text:
        raise BadRowError(file, row, field, "no '#### <answer>' line (GSM8K format)")
    final = text.rsplit("####", 1)[1].strip()
    final = re.sub(r"(?<=\d),(?=\d{3}\b)", "", final)
    if not final:
        raise MissingFieldError(file, row, field, "empty answer after '####'")
    return final


# Already-prepared rows (veRL schema) carry the answer here; every builder accepts them.
PREPARED_ANSWER = ("reward_model.ground_truth", plain_answer)
PREPARED_SOURCE_FIELDS = ("idx", "level", "type", "unit", "subject")


@dataclass(frozen=True)
class SourceSpec:
    """Where a dataset lives on the hub and which fields of its rows hold what."""

    subset: str
    split: str  # written to extra_info.split
    hub_id: str
    hub_configs: tuple[str | None, ...]
    hub_splits: tuple[str, ...]
    question_fields: tuple[str, ...]
    answer_fields: tuple[tuple[str, AnswerParser], ...]
    solution_fields: tuple[str, ...] = ()  # fallback: the last \boxed{} of a worked solution
    context_fields: tuple[str, ...] = ()  # prepended to the question when present and non-empty
    source_fields: tuple[str, ...] = ()  # copied into extra_info

    def records(self, source: str | Path | None) -> Iterator[Record]:
        source = source or self.hub_id
        if is_local_source(source):
            return iter_local_records(source)
        configs = self.hub_configs if str(source) == self.hub_id else (None,)
        return iter_hub_records(str(source), configs, self.hub_splits)


def _question(record: Record, spec: SourceSpec) -> str:
    for name in spec.question_fields:
        value = get_path(record.data, name)
        if not is_missing(value):
            question = require_text(value, file=record.file, row=record.row, field=name)
            break
    else:
        looked = "/".join(spec.question_fields)
        raise MissingFieldError(
            record.file, record.row, spec.question_fields[0], f"missing question (looked for {looked})"
        )
    for name in spec.context_fields:
        context = get_path(record.data, name)
        if isinstance(context, str) and context.strip():
            question = f"{context.strip()}\n\n{question}"
    return question


def _answer(record: Record, spec: SourceSpec, result: BuildResult) -> str:
    """The first usable answer field; a missing or empty one falls back to the boxed answer of a solution field."""
    first_error: BadRowError | None = None
    for name, parser in spec.answer_fields:
        value = get_path(record.data, name)
        if is_missing(value):
            continue
        try:
            return parser(value, file=record.file, row=record.row, field=name)
        except MissingFieldError as exc:  # empty: try the next field; a wrong type or format is raised as is
            first_error = first_error or exc
    for name in spec.solution_fields:
        solution = get_path(record.data, name)
        if isinstance(solution, str) and (boxed := last_boxed(solution)):
            result.answers_from_solution += 1
            if first_error is not None:
                logger.info("%s: %s; using the last \\boxed{} of %r instead", record.origin, first_error.reason, name)
            return strip_math_delimiters(boxed)
    if first_error is not None:
        raise first_error
    solutions = [name for name in spec.solution_fields if isinstance(get_path(record.data, name), str)]
    if solutions:
        raise MissingFieldError(record.file, record.row, solutions[0], "no answer field and no \\boxed{} answer in it")
    looked = "/".join(name for name, _ in spec.answer_fields)
    raise MissingFieldError(record.file, record.row, spec.answer_fields[0][0], f"missing answer (looked for {looked})")


def _source_fields(record: Record, names: Sequence[str]) -> dict[str, Any]:
    return {name: record.data[name] for name in names if name in record.data}


def _check_record(record: Record) -> None:
    if isinstance(record.data, BadRowError):
        raise record.data
    if not isinstance(record.data, Mapping):
        raise BadRowError(record.file, record.row, "<row>", f"expected an object, got {type(record.data).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# Evaluation benchmarks
# ---------------------------------------------------------------------------------------------------------------

EVAL_SPECS: dict[str, SourceSpec] = {
    "math500": SourceSpec(
        subset="MATH500",
        split="test",
        hub_id="HuggingFaceH4/MATH-500",
        hub_configs=(None,),
        hub_splits=("test",),
        question_fields=("problem", "question"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        solution_fields=("solution", "groundtruth"),
        source_fields=("unique_id", *PREPARED_SOURCE_FIELDS),
    ),
    "gsm8k": SourceSpec(
        subset="gsm8k",
        split="test",
        hub_id="openai/gsm8k",
        hub_configs=("main",),
        hub_splits=("test",),
        question_fields=("question",),
        answer_fields=(("answer", gsm8k_answer), PREPARED_ANSWER),
        source_fields=PREPARED_SOURCE_FIELDS,
    ),
    "aime24": SourceSpec(
        subset="aime24",
        split="test",
        hub_id="HuggingFaceH4/aime_2024",
        hub_configs=(None,),
        hub_splits=("train",),
        question_fields=("problem", "question"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        source_fields=("id", "url", "year", *PREPARED_SOURCE_FIELDS),
    ),
    "amc23": SourceSpec(
        subset="amc23",
        split="test",
        hub_id="math-ai/amc23",
        hub_configs=(None,),
        hub_splits=("test",),
        question_fields=("question", "problem"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        source_fields=("id", "url", *PREPARED_SOURCE_FIELDS),
    ),
    "gaokao2023en": SourceSpec(
        subset="gaokao2023en",
        split="test",
        hub_id="MARIO-Math-Reasoning/Gaokao2023-Math-En",
        hub_configs=(None,),
        hub_splits=("train",),
        question_fields=("question", "problem"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        source_fields=("id", "source", "sourcename", *PREPARED_SOURCE_FIELDS),
    ),
    "minerva_math": SourceSpec(
        subset="minerva_math",
        split="test",
        hub_id="math-ai/minervamath",
        hub_configs=(None,),
        hub_splits=("test",),
        question_fields=("question", "problem"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        solution_fields=("solution", "groundtruth"),
        source_fields=PREPARED_SOURCE_FIELDS,
    ),
    "olympiadbench": SourceSpec(
        subset="olympiadbench",
        split="test",
        hub_id="Hothan/OlympiadBench",
        hub_configs=("OE_TO_maths_en_COMP",),
        hub_splits=("train",),
        question_fields=("question", "problem"),
        answer_fields=(("final_answer", plain_answer), ("answer", plain_answer), PREPARED_ANSWER),
        context_fields=("context",),
        source_fields=("id", "subfield", "answer_type", "is_multiple_answer", *PREPARED_SOURCE_FIELDS),
    ),
    "aime25": SourceSpec(
        subset="aime25",
        split="test",
        hub_id="math-ai/aime25",
        hub_configs=(None,),
        hub_splits=("test",),
        question_fields=("problem", "question"),
        answer_fields=(("answer", plain_answer), PREPARED_ANSWER),
        source_fields=("id", *PREPARED_SOURCE_FIELDS),
    ),
}
SUBSET_TO_EVAL = {spec.subset: name for name, spec in EVAL_SPECS.items()}


def _eval_row(record: Record, spec: SourceSpec, result: BuildResult) -> dict[str, Any]:
    _check_record(record)
    return make_row(
        question=_question(record, spec),
        answer=_answer(record, spec, result),
        subset=spec.subset,
        split=spec.split,
        index=len(result.rows),
        origin=record.origin,
        source_fields=_source_fields(record, spec.source_fields),
    )


def _build_eval(name: str, source: str | Path | None, on_bad_row: OnBadRow) -> BuildResult:
    """One benchmark; rows of other benchmarks in a prepared multi-benchmark file are filtered out."""
    spec = EVAL_SPECS[name]
    policy = BadRowPolicy(on_bad_row)
    result = BuildResult(name)
    for record in spec.records(source):
        result.read += 1
        try:
            _check_record(record)
            subset = record.data.get("subset")
            if isinstance(subset, str) and subset != spec.subset:
                result.filtered[f"subset {subset!r} is not {spec.subset!r}"] += 1
                continue
            result.rows.append(_eval_row(record, spec, result))
        except BadRowError as exc:
            policy.handle(exc)
    result.skipped = policy.skipped
    return result


def build_math500(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """MATH500 (HF ``HuggingFaceH4/MATH-500``: problem, solution, answer, subject, level, unique_id)."""
    return _build_eval("math500", source, on_bad_row)


def build_gsm8k(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """GSM8K test (HF ``openai/gsm8k``, config ``main``: question, answer ending in ``#### <number>``)."""
    return _build_eval("gsm8k", source, on_bad_row)


def build_aime24(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """AIME 2024 (HF ``HuggingFaceH4/aime_2024``: problem, answer)."""
    return _build_eval("aime24", source, on_bad_row)


def build_amc23(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """AMC 2023 (HF ``math-ai/amc23``: question, answer as a float such as 27.0)."""
    return _build_eval("amc23", source, on_bad_row)


def build_gaokao2023en(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """Gaokao 2023 English (HF ``MARIO-Math-Reasoning/Gaokao2023-Math-En``: question, answer in ``$...$``)."""
    return _build_eval("gaokao2023en", source, on_bad_row)


def build_minerva_math(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """Minerva Math (HF ``math-ai/minervamath``: question, answer; or problem + boxed solution)."""
    return _build_eval("minerva_math", source, on_bad_row)


def build_olympiadbench(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """OlympiadBench, English open-ended text-only maths (HF ``Hothan/OlympiadBench`` ``OE_TO_maths_en_COMP``:
    question, optional context, ``final_answer`` list)."""
    return _build_eval("olympiadbench", source, on_bad_row)


def build_aime25(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """AIME 2025 (HF ``math-ai/aime25``: problem, answer)."""
    return _build_eval("aime25", source, on_bad_row)


def build_eval_7bench(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """All evaluation benchmarks in one file, ``subset`` naming each row's benchmark.

    ``source``: a prepared file or folder whose rows carry ``subset`` (default: the bundled reference parquet,
    offline), or ``"hub"`` to build every benchmark from its hub source.
    """
    result = BuildResult("eval_7bench")
    if str(source) == "hub":
        for name in EVAL_SPECS:
            part = _build_eval(name, None, on_bad_row)
            result.read += part.read
            result.filtered.update(part.filtered)
            result.skipped.extend(part.skipped)
            result.answers_from_solution += part.answers_from_solution
            for row in part.rows:
                row["extra_info"]["index"] = len(result.rows)
                result.rows.append(row)
        return result
    source = source or BUNDLED_EVAL
    if not is_local_source(source):
        raise ValueError(f"eval_7bench reads a local prepared file or folder, or 'hub'; got {source!r}")
    policy = BadRowPolicy(on_bad_row)
    for record in iter_local_records(source):
        result.read += 1
        try:
            _check_record(record)
            subset = record.data.get("subset")
            if subset not in SUBSET_TO_EVAL:
                raise BadRowError(record.file, record.row, "subset", f"{subset!r} is not one of {EVAL_SUBSETS}")
            result.rows.append(_eval_row(record, EVAL_SPECS[SUBSET_TO_EVAL[subset]], result))
        except BadRowError as exc:
            policy.handle(exc)
    result.skipped = policy.skipped
    return result


# ---------------------------------------------------------------------------------------------------------------
# Training sets (MATH)
# ---------------------------------------------------------------------------------------------------------------

MATH_SPEC = SourceSpec(
    subset=MATH_SUBSET,
    split="train",
    hub_id=HENDRYCKS_MATH_HUB,
    hub_configs=HENDRYCKS_MATH_CONFIGS,
    hub_splits=("train", "test"),
    question_fields=("problem", "question"),
    answer_fields=(("answer", plain_answer), PREPARED_ANSWER, ("ground_truth_answer", plain_answer)),
    solution_fields=("solution",),
    source_fields=("unique_id", "idx"),
)


def _math_level(record: Record) -> int | None:
    """MATH levels come as "Level 5", 5 or "5"; "Level ?" (a handful of MATH rows) is unknown, not malformed."""
    value = record.data.get("level")
    if is_missing(value):
        raise BadRowError(record.file, record.row, "level", "missing")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:Level\s*)?(\d+|\?)\s*", value)
        if match:
            return None if match.group(1) == "?" else int(match.group(1))
    raise BadRowError(record.file, record.row, "level", f"expected 'Level N' or an integer, got {value!r}")


def _math_type(record: Record) -> str:
    for name in ("type", "subject"):
        value = record.data.get(name)
        if not is_missing(value):
            return require_text(value, file=record.file, row=record.row, field=name)
    raise BadRowError(record.file, record.row, "type", "missing MATH subject (looked for type/subject)")


def _normalise_question(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=1)
def math500_questions() -> frozenset[str]:
    """MATH500's problems (from the bundled evaluation set), kept out of the training set."""
    import pandas as pd

    frame = pd.read_parquet(BUNDLED_EVAL, columns=["question", "subset"])
    return frozenset(_normalise_question(q) for q in frame.loc[frame["subset"] == "MATH500", "question"])


def build_math_lv3to5(
    source: str | Path | None = None,
    *,
    on_bad_row: OnBadRow = "skip",
    levels: Sequence[int] = (3, 4, 5),
    exclude_math500: bool = True,
) -> BuildResult:
    """MATH levels 3-5, train and test splits, minus the MATH500 problems; the answer is the solution's last
    balanced ``\\boxed{}``. Default source: HF ``EleutherAI/hendrycks_math`` (all seven subject configs).

    The reference run's file has 8,523 rows; this recipe gives a few hundred more (the reference's extra filter
    is not published): pass that file as ``source`` to reproduce it row for row.
    """
    policy = BadRowPolicy(on_bad_row)
    result = BuildResult("math_lv3to5")
    excluded = math500_questions() if exclude_math500 else frozenset()
    for record in MATH_SPEC.records(source):
        result.read += 1
        try:
            _check_record(record)
            level = _math_level(record)
            if level not in levels:
                result.filtered[f"level {level if level is not None else '?'} not in {tuple(levels)}"] += 1
                continue
            question = _question(record, MATH_SPEC)
            if _normalise_question(question) in excluded:
                result.filtered["MATH500 problem"] += 1
                continue
            row = make_row(
                question=question,
                answer=_answer(record, MATH_SPEC, result),
                subset=MATH_SUBSET,
                split="train",
                index=len(result.rows),
                origin=record.origin,
                source_fields={
                    "level": level,
                    "type": _math_type(record),
                    **_source_fields(record, MATH_SPEC.source_fields),
                },
            )
        except BadRowError as exc:
            policy.handle(exc)
            continue
        result.rows.append(row)
    result.skipped = policy.skipped
    return result


def build_math_133(
    source: str | Path | None = None,
    *,
    on_bad_row: OnBadRow = "skip",
    per_type: int = 19,
    seed: int = 42,
) -> BuildResult:
    """The ablation subset: per_type questions per MATH subject (19 x 7 = 133), seeded sampling from math_lv3to5.

    Same source and seed give the same rows."""
    base = build_math_lv3to5(source, on_bad_row=on_bad_row)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in base.rows:
        by_type[row["extra_info"]["type"]].append(row)
    short = {t: len(rows) for t, rows in by_type.items() if len(rows) < per_type}
    if not by_type or short:
        raise ValueError(f"math_133 needs {per_type} questions per MATH subject; too few in {short or 'the source'}")
    rng = random.Random(seed)
    result = BuildResult(
        "math_133",
        read=base.read,
        filtered=base.filtered,
        skipped=base.skipped,
        answers_from_solution=base.answers_from_solution,
    )
    for subject in sorted(by_type):
        for row in rng.sample(by_type[subject], per_type):
            row = {**row, "extra_info": {**row["extra_info"], "index": len(result.rows)}}
            result.rows.append(row)
    result.notes.append(f"{per_type} per subject x {len(by_type)} subjects, seed {seed}")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Builder:
    fn: Callable[..., BuildResult]
    kind: str  # "train" | "eval"
    default_source: str

    @property
    def description(self) -> str:
        """The docstring's first paragraph on one line."""
        paragraph = (self.fn.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.replace("``", "").split())


BUILDERS: dict[str, Builder] = {
    "math_lv3to5": Builder(build_math_lv3to5, "train", HENDRYCKS_MATH_HUB),
    "math_133": Builder(build_math_133, "train", HENDRYCKS_MATH_HUB),
    **{
        name: Builder(fn, "eval", EVAL_SPECS[name].hub_id)
        for name, fn in (
            ("math500", build_math500),
            ("gsm8k", build_gsm8k),
            ("aime24", build_aime24),
            ("amc23", build_amc23),
            ("gaokao2023en", build_gaokao2023en),
            ("minerva_math", build_minerva_math),
            ("olympiadbench", build_olympiadbench),
            ("aime25", build_aime25),
        )
    },
    "eval_7bench": Builder(build_eval_7bench, "eval", f"bundled: {BUNDLED_EVAL.name}"),
}
