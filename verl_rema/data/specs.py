"""What each dataset's raw rows look like: hub location, question and answer fields, and how to read them.

One :class:`SourceSpec` per benchmark (the evaluation sets, ``EVAL_SPECS``) and one for the MATH training set.
Each understands its benchmark's raw format (MATH's boxed solutions, GSM8K's ``#### answer``, OlympiadBench's
``final_answer`` list, ...) and also already-prepared rows in veRL's schema (``question`` +
``reward_model.ground_truth``), such as the bundled evaluation parquet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_rema.data.schema import (
    BadRowError,
    MissingFieldError,
    answer_text,
    get_path,
    is_missing,
    last_boxed,
    require_text,
    strip_math_delimiters,
)
from verl_rema.data.sources import Record, iter_records

logger = logging.getLogger(__name__)

AnswerParser = Callable[..., str]
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


PLAIN_ANSWER = (("answer", plain_answer), PREPARED_ANSWER)


@dataclass(frozen=True)
class SourceSpec:
    """Where a dataset lives on the hub and which fields of its rows hold what (defaults: an evaluation set)."""

    subset: str
    hub_id: str
    description: str  # one line for ``python -m verl_rema.data list``
    split: str = "test"  # written to extra_info.split
    hub_configs: tuple[str | None, ...] = (None,)
    hub_splits: tuple[str, ...] = ("test",)
    question_fields: tuple[str, ...] = ("problem", "question")
    answer_fields: tuple[tuple[str, AnswerParser], ...] = PLAIN_ANSWER
    solution_fields: tuple[str, ...] = ()  # fallback: the last \boxed{} of a worked solution
    context_fields: tuple[str, ...] = ()  # prepended to the question when present and non-empty
    source_fields: tuple[str, ...] = PREPARED_SOURCE_FIELDS  # copied into extra_info

    def records(self, source: str | Path | None) -> Iterator[Record]:
        return iter_records(source or self.hub_id, self.hub_id, self.hub_configs, self.hub_splits)


def question_of(record: Record, spec: SourceSpec) -> str:
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


def answer_of(record: Record, spec: SourceSpec, on_solution: Callable[[], None]) -> str:
    """The first usable answer field; a missing or empty one falls back to the boxed answer of a solution field
    (``on_solution`` is called then, to count it)."""
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
            on_solution()
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


# ---------------------------------------------------------------------------------------------------------------
# Evaluation benchmarks and the MATH training set
# ---------------------------------------------------------------------------------------------------------------

_ID, _URL = ("id",), ("id", "url")
EVAL_SPECS: dict[str, SourceSpec] = {
    "math500": SourceSpec(
        "MATH500", "HuggingFaceH4/MATH-500", "MATH500 (problem, solution, answer, subject, level, unique_id)",
        solution_fields=("solution", "groundtruth"), source_fields=("unique_id", *PREPARED_SOURCE_FIELDS),
    ),
    "gsm8k": SourceSpec(
        "gsm8k", "openai/gsm8k", "GSM8K test (config main: question, answer ending in #### <number>)",
        hub_configs=("main",), question_fields=("question",), answer_fields=(("answer", gsm8k_answer), PREPARED_ANSWER),
    ),
    "aime24": SourceSpec(
        "aime24", "HuggingFaceH4/aime_2024", "AIME 2024 (problem, answer)",
        hub_splits=("train",), source_fields=(*_URL, "year", *PREPARED_SOURCE_FIELDS),
    ),
    "amc23": SourceSpec(
        "amc23", "math-ai/amc23", "AMC 2023 (question, answer as a float such as 27.0)",
        question_fields=("question", "problem"), source_fields=(*_URL, *PREPARED_SOURCE_FIELDS),
    ),
    "gaokao2023en": SourceSpec(
        "gaokao2023en", "MARIO-Math-Reasoning/Gaokao2023-Math-En", "Gaokao 2023 English (question, answer in $...$)",
        hub_splits=("train",), question_fields=("question", "problem"),
        source_fields=(*_ID, "source", "sourcename", *PREPARED_SOURCE_FIELDS),
    ),
    "minerva_math": SourceSpec(
        "minerva_math", "math-ai/minervamath", "Minerva Math (question, answer; or problem + boxed solution)",
        question_fields=("question", "problem"), solution_fields=("solution", "groundtruth"),
    ),
    "olympiadbench": SourceSpec(
        "olympiadbench", "Hothan/OlympiadBench",
        "OlympiadBench, English open-ended text-only maths (question, optional context, final_answer list)",
        hub_configs=("OE_TO_maths_en_COMP",), hub_splits=("train",), question_fields=("question", "problem"),
        answer_fields=(("final_answer", plain_answer), *PLAIN_ANSWER), context_fields=("context",),
        source_fields=(*_ID, "subfield", "answer_type", "is_multiple_answer", *PREPARED_SOURCE_FIELDS),
    ),
    "aime25": SourceSpec(
        "aime25", "math-ai/aime25", "AIME 2025 (problem, answer)", source_fields=(*_ID, *PREPARED_SOURCE_FIELDS),
    ),
}  # fmt: skip
EVAL_SUBSETS: tuple[str, ...] = tuple(spec.subset for spec in EVAL_SPECS.values())
SUBSET_TO_EVAL = {spec.subset: name for name, spec in EVAL_SPECS.items()}

MATH_SPEC = SourceSpec(
    MATH_SUBSET, HENDRYCKS_MATH_HUB, "MATH (all subjects, train and test splits)",
    split="train", hub_configs=HENDRYCKS_MATH_CONFIGS, hub_splits=("train", "test"),
    answer_fields=(*PLAIN_ANSWER, ("ground_truth_answer", plain_answer)), solution_fields=("solution",),
    source_fields=("unique_id", "idx"),
)  # fmt: skip
