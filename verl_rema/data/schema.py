"""Rows of veRL's RL dataset schema, their validation, and how malformed input rows are reported.

An output row (one prompt)::

    data_source   str                      benchmark name, e.g. "MATH500" (veRL groups validation metrics by it)
    prompt        [{"role": "user", "content": question}]
    ability       "math" ("judge" for the pairwise judge rows)
    reward_model  {"style": "rule", "ground_truth": answer}
    extra_info    {"split": ..., "index": int, "origin": "file#row", ...source fields as strings}
    question      str                      the bare question (the ReMA rollout builds its own prompts from it)
    subset        str                      benchmark name, as in the reference evaluation parquet

Every source field copied into ``extra_info`` is stored as a string (or null): Parquet needs one type per struct
field, and the benchmarks disagree (MATH500's ``level`` is an int, MATH's is "Level 5").
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

logger = logging.getLogger(__name__)

ABILITY = "math"
ABILITIES: tuple[str, ...] = (ABILITY, "judge")  # "judge": pairwise LLM-as-a-judge rows (verl_rema.data.judge)
COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info", "question", "subset")
OnBadRow = Literal["skip", "error"]


class BadRowError(ValueError):
    """A malformed input row, located by file, row index and field."""

    def __init__(self, file: str, row: int, field: str, reason: str) -> None:
        self.file, self.row, self.field, self.reason = file, row, field, reason
        super().__init__(f"{file}: row {row}: field {field!r}: {reason}")


class MissingFieldError(BadRowError):
    """A field that is absent, null or empty (as opposed to present with a wrong type or format)."""


@dataclass
class BadRowPolicy:
    """``--on-bad-row``: ``error`` raises the first :class:`BadRowError`; ``skip`` logs it, counts it, goes on."""

    mode: OnBadRow = "skip"
    skipped: list[BadRowError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in ("skip", "error"):
            raise ValueError(f"on_bad_row must be 'skip' or 'error', got {self.mode!r}")

    def handle(self, error: BadRowError) -> None:
        if self.mode == "error":
            raise error
        logger.warning("skipping malformed row: %s", error)
        self.skipped.append(error)


def is_missing(value: Any) -> bool:
    """``None`` or NaN (pandas' null for a missing number)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def get_path(record: Mapping[str, Any], dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; ``None`` when any level is missing."""
    value: Any = record
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def require_text(value: Any, *, file: str, row: int, field: str) -> str:
    """A non-empty string, stripped; anything else is a bad row."""
    if is_missing(value):
        raise MissingFieldError(file, row, field, "missing")
    if not isinstance(value, str):
        raise BadRowError(file, row, field, f"expected a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise MissingFieldError(file, row, field, "empty")
    return text


_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def strip_math_delimiters(text: str) -> str:
    """``"$\\frac12$"`` -> ``"\\frac12"``: some sources wrap final answers in math-mode delimiters."""
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for left, right in _DELIMITERS:
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                inner = text[len(left) : -len(right)].strip()
                if left == "$" and "$" in inner:  # "$a$ or $b$" is two formulas, not one wrapped formula
                    continue
                text, changed = inner, True
    return text


def answer_text(value: Any, *, file: str, row: int, field: str) -> str:
    """A gold answer as a string: strings as they are (minus math delimiters), integral floats as integers
    (AMC's ``27.0`` -> ``"27"``), a list of answers joined with ``", "`` (OlympiadBench's multi-answer rows)."""
    if is_missing(value):
        raise MissingFieldError(file, row, field, "missing answer")
    if isinstance(value, bool):
        raise BadRowError(file, row, field, f"expected an answer, got a boolean ({value})")
    if isinstance(value, str):
        text = strip_math_delimiters(value)
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise BadRowError(file, row, field, f"non-finite answer {value!r}")
        text = str(int(number)) if number.is_integer() else repr(number)
    elif isinstance(value, list | tuple) or (hasattr(value, "tolist") and not isinstance(value, Mapping)):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        parts = [answer_text(item, file=file, row=row, field=f"{field}[{i}]") for i, item in enumerate(items)]
        text = ", ".join(parts)
    else:
        raise BadRowError(file, row, field, f"expected an answer string or number, got {type(value).__name__}")
    if not text:
        raise MissingFieldError(file, row, field, "empty answer")
    return text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in ``text``; ``None`` if absent.

    Braces are matched with a counter that skips escaped ``\\{`` and ``\\}``, so nested and set-valued answers
    (``\\boxed{\\{1,2\\}}``, ``\\boxed{\\frac{1}{2}}``) come out whole; an unclosed box gives ``None``.
    """
    starts = [m for m in re.finditer(r"\\(?:boxed|fbox)\s*", text)]
    for match in reversed(starts):
        i = match.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                ch = text[j]
                if ch == "\\":
                    j += 2
                    continue
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        content = text[i + 1 : j].strip()
                        return content or None
                j += 1
            return None
        if match.group(0).endswith((" ", "\t")):  # "\boxed 5$": one token up to the closing dollar or space
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                return token.group(0)
    return None


def source_value(value: Any) -> str | None:
    """A source field for ``extra_info``: a string, or null when missing (one Parquet type per field)."""
    if is_missing(value):
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return str(value)


def make_row(
    *,
    question: str,
    answer: str,
    subset: str,
    split: str,
    index: int,
    origin: str,
    source_fields: Mapping[str, Any] | None = None,
    ability: str = ABILITY,
) -> dict[str, Any]:
    """One output row; ``data_source`` is the subset, so veRL reports validation metrics per benchmark."""
    extra: dict[str, Any] = {"split": split, "index": int(index), "origin": origin}
    for key, value in (source_fields or {}).items():
        if key in extra:
            raise ValueError(f"source field {key!r} collides with a reserved extra_info key")
        extra[key] = source_value(value)
    row = {
        "data_source": subset,
        "prompt": [{"role": "user", "content": question}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": extra,
        "question": question,
        "subset": subset,
    }
    validate_row(row)
    return row


def validate_row(row: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first field of ``row`` that breaks the output schema."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise ValueError(f"row lacks columns {missing}")
    for key in ("data_source", "question", "subset"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise ValueError(f"{key} must be a non-empty string, got {row[key]!r}")
    prompt = row["prompt"]
    if (
        not isinstance(prompt, list | tuple)
        or not prompt
        or not all(isinstance(m, Mapping) and set(m) == {"role", "content"} for m in prompt)
        or not all(isinstance(m["content"], str) and m["content"] for m in prompt)
    ):
        raise ValueError(f"prompt must be a non-empty list of {{role, content}} messages, got {prompt!r:.200}")
    if row["ability"] not in ABILITIES:
        raise ValueError(f"ability must be one of {ABILITIES}, got {row['ability']!r}")
    reward = row["reward_model"]
    if not isinstance(reward, Mapping) or reward.get("style") != "rule":
        raise ValueError(f"reward_model must be {{'style': 'rule', 'ground_truth': str}}, got {reward!r:.200}")
    if not isinstance(reward.get("ground_truth"), str) or not reward["ground_truth"].strip():
        raise ValueError(f"reward_model.ground_truth must be a non-empty string, got {reward.get('ground_truth')!r}")
    extra = row["extra_info"]
    if not isinstance(extra, Mapping) or not isinstance(extra.get("split"), str) or "index" not in extra:
        raise ValueError(f"extra_info must hold 'split' (str) and 'index' (int), got {extra!r:.200}")
    if not isinstance(extra["index"], numbers.Integral):
        raise ValueError(f"extra_info.index must be an integer, got {extra['index']!r}")


def write_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Validate every row and write them as one Parquet file (parent folders created)."""
    rows = list(rows)
    if not rows:
        raise ValueError(f"refusing to write {path}: no rows")
    for i, row in enumerate(rows):
        try:
            validate_row(row)
        except ValueError as exc:
            raise ValueError(f"output row {i}: {exc}") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(path, index=False)
    return path
