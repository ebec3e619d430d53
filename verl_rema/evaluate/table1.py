"""Table 1 (math, single-turn) of the paper beside our runs: greedy pass@1 per benchmark and the unweighted average.

    python -m verl_rema.evaluate.table1 --model Qwen/Qwen2.5-7B-Instruct \\
        VRP=eval/vrp VRP_RL=eval/vrp_rl MRP_RL=eval/mrp_rl ReMA=eval/rema --out eval/table1

Each ``COLUMN=RUN`` is a ``verl_rema.evaluate`` output folder. Every cell prints ours, then the paper's value in
brackets where the stored sources have it: the seven-benchmark averages of VRP (CoT) and ReMA for the three models,
ReMA's per-benchmark cells (from the correct counts the paper's percentages imply) and Llama3.1-8B's VRP_RL average.
Other paper cells are not in our sources and print as ``?`` rather than a guess. The average is the unweighted mean
of the seven unrounded accuracies, as the paper computes it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from verl_rema.evaluate.compare import load_results
from verl_rema.evaluate.report import AVERAGE
from verl_rema.evaluate.writers import md_table

BENCHMARKS: dict[str, int] = {  # subset name in eval_7bench -> questions (each implied by every Table 1a cell)
    "MATH500": 500,
    "gsm8k": 1319,
    "aime24": 30,
    "amc23": 40,
    "gaokao2023en": 385,
    "minerva_math": 272,
    "olympiadbench": 675,
}
COLUMNS = ("VRP", "VRP_RL", "MRP_RL", "ReMA")

# Correct counts of the ReMA column, in BENCHMARKS order: Table 1a's percentages times the question counts above.
_REMA_CORRECT = {
    "llama3-8b-instruct": (169, 1047, 0, 9, 110, 38, 60),
    "llama3.1-8b-instruct": (266, 1151, 4, 8, 143, 77, 132),
    "qwen2.5-7b-instruct": (372, 1195, 6, 23, 223, 95, 245),
}
# Seven-benchmark averages (%) printed in Table 1a.
_PAPER_AVERAGE = {
    "llama3-8b-instruct": {"VRP": 20.05, "ReMA": 26.73},
    "llama3.1-8b-instruct": {"VRP": 35.89, "VRP_RL": 33.32, "ReMA": 36.97},
    "qwen2.5-7b-instruct": {"VRP": 50.24, "ReMA": 53.09},
}
_ALIASES = {
    "meta-llama/meta-llama-3-8b-instruct": "llama3-8b-instruct",
    "meta-llama/llama-3-8b-instruct": "llama3-8b-instruct",
    "meta-llama/llama-3.1-8b-instruct": "llama3.1-8b-instruct",
    "meta-llama/meta-llama-3.1-8b-instruct": "llama3.1-8b-instruct",
    "qwen/qwen2.5-7b-instruct": "qwen2.5-7b-instruct",
}


def paper_model(model: str) -> str:
    """The Table 1 row for a model name or hub id; raises naming the valid choices."""
    key = model.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REMA_CORRECT:
        raise ValueError(f"--model {model!r} is not a Table 1 model; choose one of {sorted(_REMA_CORRECT)}")
    return key


def paper_cells(model: str) -> dict[str, dict[str, float]]:
    """``{column: {benchmark or "average": accuracy in [0, 1]}}`` for what the sources hold."""
    key = paper_model(model)
    cells: dict[str, dict[str, float]] = {column: {} for column in COLUMNS}
    for (bench, questions), correct in zip(BENCHMARKS.items(), _REMA_CORRECT[key], strict=True):
        cells["ReMA"][bench] = correct / questions
    for column, average in _PAPER_AVERAGE[key].items():
        cells[column][AVERAGE] = average / 100
    return cells


def our_cells(results: Mapping) -> dict[str, float]:
    """Accuracy per benchmark of one evaluation run, and the unweighted mean over the seven benchmarks."""
    by_subset = {s["subset"]: s["accuracy"] for s in results["subsets"]}
    cells = {bench: by_subset[bench] for bench in BENCHMARKS if bench in by_subset}
    if len(cells) == len(BENCHMARKS):
        cells[AVERAGE] = sum(cells.values()) / len(BENCHMARKS)
    return cells


def table(model: str, runs: Mapping[str, Mapping]) -> str:
    """Markdown: rows = benchmarks + average, columns = the runs given, each ``ours (paper)``."""
    paper = paper_cells(model)
    ours = {column: our_cells(results) for column, results in runs.items()}
    header = ["benchmark", *(f"{column} ours (paper) %" for column in runs)]
    rows = []
    for group in [*BENCHMARKS, AVERAGE]:
        row = [f"**{group}**" if group == AVERAGE else group]
        for column in runs:
            mine, theirs = ours[column].get(group), paper.get(column, {}).get(group)
            row.append(f"{_pct(mine)} ({_pct(theirs, missing='?')})")
        rows.append(row)
    metrics = {column: results["metric"] for column, results in runs.items()}
    lines = [f"# Table 1 — {paper_model(model)}", "", *md_table(header, rows), ""]
    lines.append(
        "- Ours: " + ", ".join(f"{c} = {m}" for c, m in metrics.items()) + "; the paper's cells are greedy pass@1."
    )
    lines.append("- `?`: the paper's cell is not in our sources. `-`: the run has no such benchmark.")
    lines.append(
        "- One AIME24 question is 3.33 points and one AMC23 question 2.5: read those rows with their intervals."
    )
    return "\n".join(lines) + "\n"


def _pct(value: float | None, missing: str = "-") -> str:
    return missing if value is None else f"{100 * value:.2f}"


def parse_runs(specs: Sequence[str]) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for spec in specs:
        column, sep, path = spec.partition("=")
        if not sep or column not in COLUMNS:
            raise ValueError(f"run {spec!r}: expected COLUMN=PATH with COLUMN one of {', '.join(COLUMNS)}")
        runs[column] = Path(path)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.evaluate.table1", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="COLUMN=PATH, COLUMN in " + ", ".join(COLUMNS))
    parser.add_argument("--model", required=True, help="Table 1 row: hub id or e.g. qwen2.5-7b-instruct")
    parser.add_argument("--out", type=Path, help="also write table1.md here")
    args = parser.parse_args(argv)
    try:
        text = table(args.model, {column: load_results(p) for column, p in parse_runs(args.runs).items()})
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table1.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
