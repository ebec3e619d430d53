"""The LLM-as-a-judge datasets (arXiv 2503.09501 §4.1, App. D.1.2): RewardBench970 (strict and loose) and JudgeBench.

Every row is one ordered tuple (instruction, response A, response B) in veRL's RL schema (:mod:`.schema`, ability
``judge``): ``question`` = the instruction, ground truth ``"A"``/``"B"``, ``subset``, and in ``extra_info`` the two
responses (``response_a``, ``response_b``: the judge prompt sets' ``row_fields``), ``pair_id``
(``"<benchmark>:<id>"``), ``game`` (``"1"``: the source order, ``"2"``: the two responses swapped) and the source's
fields (``category``, ``model_a``, ``model_b``, ...).

- **rewardbench970** (``allenai/reward-bench``, split ``filtered``, 2,985 pairs in 23 subsets): every pair in both
  orders (chosen as A, label ``A``; chosen as B, label ``B``) = 5,970 tuples, split into train and exactly 970 test
  tuples, stratified by subset, ``strict`` (no instruction on both sides; the paper's Table 1b) or ``loose`` (no
  tuple on both sides). 5,000 + 970 = 2 x 2,985 is why both orders are built [reconstruction, like the split
  procedure: :mod:`.judge_split`].
- **judgebench** (``ScalerLab/JudgeBench``, splits ``gpt`` 350 + ``claude`` 270 = 620 pairs, label ``A>B``/``B>A``):
  each pair in its source order (game 1) and, by default, swapped (game 2), for JudgeBench's two-game score.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from verl_rema.data.builders import BuildResult, collect
from verl_rema.data.judge_lengths import OVERLONG, LengthBudget
from verl_rema.data.judge_split import Group, allocate, stratified_group_split
from verl_rema.data.schema import (
    BadRowError,
    MissingFieldError,
    OnBadRow,
    is_missing,
    make_row,
    require_text,
    write_parquet,
)
from verl_rema.data.sources import Record, iter_records

ABILITY = "judge"
RB_HUB, RB_SPLIT, RB_NAME, RB_TEST_SIZE = "allenai/reward-bench", "filtered", "rewardbench970", 970
JB_HUB, JB_SPLITS, JB_NAME, JB_PAIRS = "ScalerLab/JudgeBench", ("gpt", "claude"), "judgebench", 620
SPLITS: tuple[str, ...] = ("strict", "loose")
RB_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
                    "chat"),
    **dict.fromkeys(("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                     "llmbar-adver-GPTOut", "llmbar-adver-manual"), "chat-hard"),
    **dict.fromkeys(("refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
                     "donotanswer"), "safety"),
    **dict.fromkeys(("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"), "reasoning"),
}  # fmt: skip
JB_CATEGORY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"mmlu-pro(-.*)?", "knowledge"),
    (r"livebench-reasoning", "reasoning"),
    (r"livebench-math", "math"),
    (r"livecodebench", "coding"),
)


@dataclass(frozen=True)
class Pair:
    """One source pair; ``first`` is shown as assistant A in game 1, ``gold`` is game 1's label."""

    pair_id: str
    subset: str
    instruction: str
    first: str
    second: str
    gold: str
    origin: str
    models: tuple[str | None, str | None] = (None, None)
    fields: Mapping[str, Any] = field(default_factory=dict)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _response(record: Record, name: str) -> str:
    """A response: any string, empty included (a judge may compare an answer with an empty one)."""
    value = record.data.get(name)
    if is_missing(value):
        raise MissingFieldError(record.file, record.row, name, "missing")
    if not isinstance(value, str):
        raise BadRowError(record.file, record.row, name, f"expected a string, got {type(value).__name__}")
    return value


def _optional_text(record: Record, name: str) -> str | None:
    value = record.data.get(name)
    return None if is_missing(value) else str(value)


def _pair_id(record: Record, name: str, benchmark: str, seen: set[str]) -> str:
    value = record.data.get(name)
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        raise MissingFieldError(record.file, record.row, name, "missing pair id")
    pair_id = f"{benchmark}:{value}"
    if pair_id in seen:
        raise BadRowError(record.file, record.row, name, f"duplicate id {value!r}")
    seen.add(pair_id)
    return pair_id


def _rewardbench_pair(seen: set[str], record: Record, result: BuildResult) -> Pair:
    subset = require_text(record.data.get("subset"), file=record.file, row=record.row, field="subset")
    return Pair(
        pair_id=_pair_id(record, "id", "rewardbench", seen),
        subset=subset,
        instruction=require_text(record.data.get("prompt"), file=record.file, row=record.row, field="prompt"),
        first=_response(record, "chosen"),
        second=_response(record, "rejected"),
        gold="A",
        origin=record.origin,
        models=(_optional_text(record, "chosen_model"), _optional_text(record, "rejected_model")),
        fields={"category": RB_CATEGORIES.get(subset, "unknown")},
    )


def _judgebench_category(record: Record) -> str:
    source = require_text(record.data.get("source"), file=record.file, row=record.row, field="source")
    for pattern, category in JB_CATEGORY_PATTERNS:
        if re.fullmatch(pattern, source):
            return category
    raise BadRowError(record.file, record.row, "source", f"{source!r} is not a JudgeBench source (mmlu-pro-*, ...)")


def _judgebench_pair(seen: set[str], record: Record, result: BuildResult) -> Pair:
    label = record.data.get("label")
    if label not in ("A>B", "B>A"):
        raise BadRowError(record.file, record.row, "label", f"expected 'A>B' or 'B>A', got {label!r}")
    category = _judgebench_category(record)
    model = _optional_text(record, "response_model")
    return Pair(
        pair_id=_pair_id(record, "pair_id", "judgebench", seen),
        subset=f"judgebench-{category}",
        instruction=require_text(record.data.get("question"), file=record.file, row=record.row, field="question"),
        first=_response(record, "response_A"),
        second=_response(record, "response_B"),
        gold=label[0],
        origin=record.origin,
        models=(model, model),
        fields={
            "category": category,
            "source": record.data.get("source"),
            "label": label,
            "response_model": model,
            "original_id": record.data.get("original_id"),
        },
    )


def _pairs(name: str, records, make, on_bad_row: OnBadRow, budget: LengthBudget | None) -> tuple[BuildResult, list]:
    """Read the source's pairs (malformed rows skipped or raised), then apply the length budget."""
    result = collect(name, records, partial(make, set()), on_bad_row)
    pairs: list[Pair] = result.rows  # type: ignore[assignment]  (the makers return pairs; rows are built below)
    result.rows = []
    if budget is None:
        return result, pairs
    kept, truncated = [], 0
    for pair in pairs:
        trimmed = budget.apply(pair.instruction, pair.first, pair.second)
        if trimmed is None:
            result.filtered[f"over the length budget of {budget.describe()} ({budget.overlong})"] += 1
            continue
        truncated += trimmed.truncated
        kept.append(replace(pair, first=trimmed.response_1, second=trimmed.response_2))
    if truncated:
        result.notes.append(f"{truncated} pairs truncated to the length budget of {budget.describe()}")
    return result, kept


def judge_row(pair: Pair, game: int, split: str, index: int) -> dict[str, Any]:
    """The row of ``pair`` in ``game`` 1 (source order) or 2 (responses swapped, label flipped)."""
    swap = game == 2
    response_a, response_b = (pair.second, pair.first) if swap else (pair.first, pair.second)
    model_a, model_b = pair.models[::-1] if swap else pair.models
    gold = {"A": "B", "B": "A"}[pair.gold] if swap else pair.gold
    return make_row(
        question=pair.instruction,
        answer=gold,
        subset=pair.subset,
        split=split,
        index=index,
        origin=pair.origin,
        source_fields={
            "response_a": response_a,
            "response_b": response_b,
            "pair_id": pair.pair_id,
            "game": str(game),
            "model_a": model_a,
            "model_b": model_b,
            **pair.fields,
        },
        ability=ABILITY,
    )


# ---------------------------------------------------------------------------------------------------------------
# RewardBench970
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class JudgeSplitResult(BuildResult):
    """A train/test build: both row lists, the per-subset counts, and the settings that reproduce the split."""

    train_rows: list[dict[str, Any]] = field(default_factory=list)
    test_rows: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{'subset':<24} {'tuples':>6} {'train':>6} {'test':>5} {'target':>6} {'test %':>6}"]
        for subset, c in sorted(self.counts.items()):
            share = 100 * c["test"] / c["tuples"] if c["tuples"] else 0.0
            lines.append(f"{subset:<24} {c['tuples']:>6} {c['train']:>6} {c['test']:>5} {c['target']:>6} {share:>6.1f}")
        total = {k: sum(c[k] for c in self.counts.values()) for k in ("tuples", "train", "test", "target")}
        lines.append(f"{'total':<24} {total['tuples']:>6} {total['train']:>6} {total['test']:>5} {total['target']:>6}")
        return "\n".join(lines)

    def summary(self) -> str:
        head = f"{self.name}: {len(self.train_rows)} train + {len(self.test_rows)} test tuples; {self.settings}"
        return "\n".join([head, super().summary(), self.table()])

    def write(self, out_dir: str | Path) -> list[Path]:
        """``<name>_train.parquet``, ``<name>_test.parquet`` and ``<name>_split.json`` (settings and counts)."""
        out = Path(out_dir)
        paths = [write_parquet(self.train_rows, out / f"{self.name}_train.parquet")]
        paths.append(write_parquet(self.test_rows, out / f"{self.name}_test.parquet"))
        record = {"name": self.name, "settings": self.settings, "counts": self.counts, "read": self.read,
                  "filtered": dict(self.filtered), "skipped": len(self.skipped), "notes": self.notes}  # fmt: skip
        paths.append(out / f"{self.name}_split.json")
        paths[-1].write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return paths


def _groups(tuples: list[tuple[Pair, int]], split: str) -> tuple[list[Group], list[str]]:
    """Groups of tuples that must stay together, and each tuple's group key."""
    keys = []
    for pair, game in tuples:
        text = _normalise(pair.instruction)
        shown = (pair.first, pair.second) if game == 1 else (pair.second, pair.first)
        keys.append(text if split == "strict" else json.dumps([text, *shown]))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for (pair, _), key in zip(tuples, keys, strict=True):
        counts[key][pair.subset] += 1
    return [Group(key, dict(c)) for key, c in counts.items()], keys


def build_rewardbench970(
    source: str | Path | None = None,
    *,
    on_bad_row: OnBadRow = "skip",
    split: str = "strict",
    test_size: int = RB_TEST_SIZE,
    seed: int = 42,
    budget: LengthBudget | None = None,
) -> JudgeSplitResult:
    """RewardBench970: RewardBench's filtered pairs in both A/B orders, split into train and ``test_size`` (970)
    test tuples stratified by subset, ``strict`` (no shared instruction) or ``loose`` (no shared tuple)."""
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
    records = iter_records(source or RB_HUB, RB_HUB, (None,), (RB_SPLIT,))
    read, pairs = _pairs(f"{RB_NAME}_{split}", records, _rewardbench_pair, on_bad_row, budget)
    if not pairs:
        raise ValueError(f"{source or RB_HUB}: no usable RewardBench pairs")
    tuples = [(pair, game) for pair in pairs for game in (1, 2)]
    groups, keys = _groups(tuples, split)
    per_subset = Counter(pair.subset for pair, _ in tuples)
    targets = allocate(test_size, per_subset, unit=2 if split == "strict" else 1)
    chosen = dict(zip((g.key for g in groups), stratified_group_split(groups, test_size, targets, seed), strict=True))
    result = JudgeSplitResult(read.name, read=read.read, filtered=read.filtered, skipped=read.skipped)
    result.notes = read.notes
    for i in sorted(range(len(tuples)), key=lambda i: (tuples[i][0].subset, i)):  # by subset, then source order
        pair, game = tuples[i]
        side = result.test_rows if chosen[keys[i]] else result.train_rows
        side.append(judge_row(pair, game, "test" if chosen[keys[i]] else "train", len(side)))
    result.rows = result.train_rows + result.test_rows
    for subset, total in per_subset.items():
        test = sum(1 for row in result.test_rows if row["subset"] == subset)
        result.counts[subset] = {"tuples": total, "train": total - test, "test": test, "target": targets[subset]}
    unknown = sorted(s for s in per_subset if s not in RB_CATEGORIES)
    if unknown:
        result.notes.append(f"subsets not in RewardBench's 23 (category 'unknown'): {unknown}")
    result.settings = {"split": split, "test_size": test_size, "seed": seed, "source": str(source or RB_HUB),
                       "pairs": len(pairs), "groups": len(groups),
                       "length_budget": None if budget is None else budget.describe(),
                       "overlong": None if budget is None else budget.overlong}  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------------------------
# JudgeBench
# ---------------------------------------------------------------------------------------------------------------


def build_judgebench(
    source: str | Path | None = None,
    *,
    on_bad_row: OnBadRow = "skip",
    games: int = 2,
    budget: LengthBudget | None = None,
) -> BuildResult:
    """JudgeBench (gpt + claude splits, 620 pairs): each pair in its source order and, with ``games=2`` (default),
    swapped, for JudgeBench's two-game score; subsets ``judgebench-{knowledge,reasoning,math,coding}``."""
    if games not in (1, 2):
        raise ValueError(f"--games must be 1 or 2, got {games!r}")
    records = iter_records(source or JB_HUB, JB_HUB, (None,), JB_SPLITS)
    result, pairs = _pairs(JB_NAME, records, _judgebench_pair, on_bad_row, budget)
    for pair in pairs:
        for game in range(1, games + 1):
            result.rows.append(judge_row(pair, game, "test", len(result.rows)))
    table = Counter((p.fields["response_model"], p.fields["category"], p.gold) for p in pairs)
    for model in sorted({m for m, _, _ in table}, key=str):
        cells = {c: sum(n for (m, k, _), n in table.items() if m == model and k == c) for _, c in JB_CATEGORY_PATTERNS}
        labels = "/".join(str(sum(n for (m, _, g), n in table.items() if m == model and g == x)) for x in "AB")
        result.notes.append(f"{model}: {sum(cells.values())} pairs {cells}, A>B/B>A {labels}")
    result.notes.append(f"{len(pairs)} pairs x {games} game(s) = {len(result.rows)} rows")
    if len(pairs) != JB_PAIRS:
        result.notes.append(f"the full JudgeBench has {JB_PAIRS} pairs; this source gave {len(pairs)}")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Command line (python -m verl_rema.data build rewardbench970|judgebench)
# ---------------------------------------------------------------------------------------------------------------


def add_cli_arguments(build: argparse.ArgumentParser) -> None:
    """The options of the judge builders on ``python -m verl_rema.data build``."""
    build.add_argument("--split", choices=SPLITS, default="strict", help="rewardbench970: strict (default) or loose")
    build.add_argument("--test-size", type=int, default=RB_TEST_SIZE, help="rewardbench970: test tuples (970)")
    build.add_argument("--games", type=int, choices=(1, 2), default=2, help="judgebench: 2 = both orders (default)")
    build.add_argument(
        "--max-length", type=int, help="judge sets: length budget for instruction + both responses (default: none)"
    )
    build.add_argument("--tokenizer", help="judge sets: measure --max-length in this tokenizer's tokens, not chars")
    build.add_argument("--overlong", choices=OVERLONG, default="truncate", help="judge sets: over the budget")


def cli_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of builder ``name`` from the parsed command line."""
    if name not in (RB_NAME, JB_NAME):
        return {}
    if args.tokenizer and args.max_length is None:
        raise ValueError("--tokenizer measures --max-length: give --max-length too")
    budget = None if args.max_length is None else LengthBudget(args.max_length, args.overlong, args.tokenizer)
    if name == RB_NAME:
        return {"split": args.split, "test_size": args.test_size, "seed": args.seed, "budget": budget}
    return {"games": args.games, "budget": budget}


__all__ = [
    "JB_NAME",
    "RB_NAME",
    "JudgeSplitResult",
    "Pair",
    "add_cli_arguments",
    "build_judgebench",
    "build_rewardbench970",
    "cli_kwargs",
    "judge_row",
]
