"""One builder per dataset: read its source (:mod:`.sources`), turn each row into veRL's RL schema (:mod:`.specs`
says which fields hold what), report what was read, filtered and skipped.

Malformed rows (missing or empty question or answer, wrong types, undecodable JSON) are reported with file, row
index and field, then skipped and counted or raised, as ``on_bad_row`` says. Rows that are well formed but out of
scope (wrong MATH level, another benchmark's rows, MATH500 problems in the training set) are "filtered", counted
separately.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from verl_rema.data.schema import BadRowError, BadRowPolicy, OnBadRow, is_missing, make_row, require_text
from verl_rema.data.sources import Record, is_local_source, iter_local_records
from verl_rema.data.specs import (
    EVAL_SPECS,
    EVAL_SUBSETS,
    HENDRYCKS_MATH_HUB,
    MATH_SPEC,
    MATH_SUBSET,
    SUBSET_TO_EVAL,
    SourceSpec,
    answer_of,
    question_of,
)

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_EVAL = ASSETS / "rema_math_eval_7bench.parquet"
"""The reference 8-benchmark evaluation set (3,251 rows), shipped so that evaluation data needs no download."""


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

    def count_answer_from_solution(self) -> None:
        self.answers_from_solution += 1

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


RowMaker = Callable[[Record, BuildResult], "dict[str, Any] | None"]
"""A row of the output for a record, or None when the record is filtered out (the maker counts why)."""


def collect(name: str, records: Iterable[Record], make: RowMaker, on_bad_row: OnBadRow) -> BuildResult:
    """The one record loop: every record is read, checked, made into a row, filtered or reported."""
    policy = BadRowPolicy(on_bad_row)
    result = BuildResult(name)
    for record in records:
        result.read += 1
        try:
            if isinstance(record.data, BadRowError):
                raise record.data
            row = make(record, result)
        except BadRowError as exc:
            policy.handle(exc)
            continue
        if row is not None:
            result.rows.append(row)
    result.skipped = policy.skipped
    return result


def _source_fields(record: Record, names: Sequence[str]) -> dict[str, Any]:
    return {name: record.data[name] for name in names if name in record.data}


def _row(record: Record, spec: SourceSpec, result: BuildResult, **source_fields: Any) -> dict[str, Any]:
    return make_row(
        question=question_of(record, spec),
        answer=answer_of(record, spec, result.count_answer_from_solution),
        subset=spec.subset,
        split=spec.split,
        index=len(result.rows),
        origin=record.origin,
        source_fields={**source_fields, **_source_fields(record, spec.source_fields)},
    )


# ---------------------------------------------------------------------------------------------------------------
# Evaluation benchmarks
# ---------------------------------------------------------------------------------------------------------------


def _eval_row(spec: SourceSpec, record: Record, result: BuildResult) -> dict[str, Any] | None:
    """A row of ``spec``'s benchmark; rows of other benchmarks in a prepared multi-benchmark file are filtered."""
    subset = record.data.get("subset")
    if isinstance(subset, str) and subset != spec.subset:
        result.filtered[f"subset {subset!r} is not {spec.subset!r}"] += 1
        return None
    return _row(record, spec, result)


def build_eval(name: str, source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """One evaluation benchmark (``EVAL_SPECS[name]``) from its hub source or a local file or folder."""
    spec = EVAL_SPECS[name]
    return collect(name, spec.records(source), partial(_eval_row, spec), on_bad_row)


def _any_benchmark_row(record: Record, result: BuildResult) -> dict[str, Any]:
    subset = record.data.get("subset")
    if subset not in SUBSET_TO_EVAL:
        raise BadRowError(record.file, record.row, "subset", f"{subset!r} is not one of {EVAL_SUBSETS}")
    return _row(record, EVAL_SPECS[SUBSET_TO_EVAL[subset]], result)


def build_eval_7bench(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """All evaluation benchmarks in one file, ``subset`` naming each row's benchmark.

    ``source``: a prepared file or folder whose rows carry ``subset`` (default: the bundled reference parquet,
    offline), or ``"hub"`` to build every benchmark from its hub source.
    """
    if str(source) == "hub":
        result = BuildResult("eval_7bench")
        for name in EVAL_SPECS:
            part = build_eval(name, None, on_bad_row=on_bad_row)
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
    return collect("eval_7bench", iter_local_records(source), _any_benchmark_row, on_bad_row)


# ---------------------------------------------------------------------------------------------------------------
# Training sets (MATH)
# ---------------------------------------------------------------------------------------------------------------


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


def _math_row(
    levels: Sequence[int | None], excluded: frozenset[str], record: Record, result: BuildResult
) -> dict[str, Any] | None:
    level = _math_level(record)
    if level not in levels:
        result.filtered[f"level {level if level is not None else '?'} not in {tuple(levels)}"] += 1
        return None
    if _normalise_question(question_of(record, MATH_SPEC)) in excluded:
        result.filtered["MATH500 problem"] += 1
        return None
    return _row(record, MATH_SPEC, result, level=level, type=_math_type(record))


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
    excluded = math500_questions() if exclude_math500 else frozenset()
    return collect("math_lv3to5", MATH_SPEC.records(source), partial(_math_row, levels, excluded), on_bad_row)


def build_math_train(source: str | Path | None = None, *, on_bad_row: OnBadRow = "skip") -> BuildResult:
    """MATH's train split, all levels (7,500 problems): the single-turn paper runs' training set ("7.5k training
    samples in MATH"). Default source: HF ``EleutherAI/hendrycks_math``, train split only; a local source is read
    whole, so pass the train split (MATH500, drawn from the test split, is still kept out)."""
    levels = (1, 2, 3, 4, 5, None)  # "Level ?" rows are part of the 7,500
    spec = replace(MATH_SPEC, description="MATH (all subjects, train split)", hub_splits=("train",))
    return collect("math_train", spec.records(source), partial(_math_row, levels, math500_questions()), on_bad_row)


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
    description: str


def _first_paragraph(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].replace("``", "").split())


BUILDERS: dict[str, Builder] = {
    "math_lv3to5": Builder(build_math_lv3to5, "train", HENDRYCKS_MATH_HUB, _first_paragraph(build_math_lv3to5)),
    "math_train": Builder(build_math_train, "train", HENDRYCKS_MATH_HUB, _first_paragraph(build_math_train)),
    "math_133": Builder(build_math_133, "train", HENDRYCKS_MATH_HUB, _first_paragraph(build_math_133)),
    **{
        name: Builder(partial(build_eval, name), "eval", spec.hub_id, spec.description)
        for name, spec in EVAL_SPECS.items()
    },
    "eval_7bench": Builder(
        build_eval_7bench, "eval", f"bundled: {BUNDLED_EVAL.name}", _first_paragraph(build_eval_7bench)
    ),
}


def _build_rewardbench970(*args: Any, **kwargs: Any) -> BuildResult:
    from verl_rema.data.judge import build_rewardbench970  # imported late: judge.py builds on this module

    return build_rewardbench970(*args, **kwargs)


def _build_judgebench(*args: Any, **kwargs: Any) -> BuildResult:
    from verl_rema.data.judge import build_judgebench

    return build_judgebench(*args, **kwargs)


BUILDERS["rewardbench970"] = Builder(
    _build_rewardbench970, "train", "allenai/reward-bench [filtered]",
    "LLM-as-a-judge: RewardBench pairs in both A/B orders, 5,000 train + 970 test tuples (--split strict|loose)",
)  # fmt: skip
BUILDERS["judgebench"] = Builder(
    _build_judgebench, "eval", "ScalerLab/JudgeBench [gpt, claude]",
    "LLM-as-a-judge: JudgeBench's 620 pairs, source order and swapped (--games 2)",
)  # fmt: skip

__all__ = [
    "BUILDERS",
    "BUNDLED_EVAL",
    "EVAL_SPECS",
    "EVAL_SUBSETS",
    "MATH_SUBSET",
    "BuildResult",
    "build_eval",
    "build_eval_7bench",
    "build_math_133",
    "build_math_lv3to5",
    "build_math_train",
    "collect",
]
