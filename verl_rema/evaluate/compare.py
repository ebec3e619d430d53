"""Side by side: several evaluation runs in one table and one grouped bar plot.

    python -m verl_rema.evaluate.compare RUN [RUN ...] --out DIR [--names A,B,...]

Each RUN is an evaluation output folder (or its ``results.json``), e.g. the CoT baseline and ReMA, or the
turn-level and token-level ratio ablations. Writes ``DIR/comparison.{md,json,csv,png}``: accuracy with its 95%
interval per subset and run, and each run's difference to the first. Runs evaluated with different metrics
(``pass@1`` vs ``avg@8``) are compared, but the table says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verl_rema.evaluate.report import AVERAGE, accuracy_points
from verl_rema.evaluate.writers import bar_chart, md_table, pct, write_and_show, write_csv


def load_results(path: str | Path) -> dict[str, Any]:
    """A run's ``results.json`` (given the file or its folder), checked for the keys the comparison reads."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no results.json at {path} (run `python -m verl_rema.evaluate` first)")
    results = json.loads(file.read_text())
    for key in ("run", "metric", "subsets", AVERAGE):
        if key not in results:
            raise ValueError(f"{file}: missing key {key!r}; not a verl_rema.evaluate results file")
    return results


def run_labels(runs: Sequence[Mapping[str, Any]], names: Sequence[str] | None) -> list[str]:
    """Given names, else each run's name; repeated labels get a numeric suffix so columns stay apart."""
    if names is not None and len(names) != len(runs):
        raise ValueError(f"{len(names)} names for {len(runs)} runs")
    labels = list(names) if names is not None else [str(r["run"].get("name", f"run{i}")) for i, r in enumerate(runs)]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def groups_of(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Subsets in first-seen order over the runs, then the average."""
    groups: list[str] = []
    for results in runs:
        groups += [s["subset"] for s in results["subsets"] if s["subset"] not in groups]
    return [*groups, AVERAGE]


def comparison(runs: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Per subset and run: accuracy, interval, questions, and the difference to the first run."""
    groups = groups_of(runs)
    table: dict[str, dict[str, Any]] = {}
    for group in groups:
        row: dict[str, Any] = {}
        base = None
        for label, results in zip(labels, runs, strict=True):
            point = accuracy_points(results, [group])[0]
            if point is None:
                row[label] = None
                continue
            questions = next((s["questions"] for s in results["subsets"] if s["subset"] == group), None)
            value, low, high = point
            base = value if base is None and label == labels[0] else base
            row[label] = {"accuracy": value, "ci_low": low, "ci_high": high, "questions": questions}
            if base is not None and label != labels[0]:
                row[label]["delta_vs_first"] = value - base
        table[group] = row
    return {
        "runs": [
            {"label": label, "metric": r["metric"], "run": r["run"]} for label, r in zip(labels, runs, strict=True)
        ],
        "groups": groups,
        "table": table,
    }


def markdown(result: Mapping[str, Any]) -> str:
    runs, labels = result["runs"], [r["label"] for r in result["runs"]]
    header = ["subset", *(f"{label} ({r['metric']}) %" for label, r in zip(labels, runs, strict=True))]
    header += [f"{label} − {labels[0]}" for label in labels[1:]]
    rows = []
    for group in result["groups"]:
        cells = result["table"][group]
        row = [f"**{group}**" if group == AVERAGE else group]
        for label in labels:
            cell = cells.get(label)
            row.append(
                "-" if cell is None else f"{pct(cell['accuracy'])} [{pct(cell['ci_low'])}, {pct(cell['ci_high'])}]"
            )
        for label in labels[1:]:
            cell = cells.get(label)
            delta = None if cell is None else cell.get("delta_vs_first")
            row.append("-" if delta is None else f"{100 * delta:+.1f}")
        rows.append(row)
    lines = ["# Comparison", "", *md_table(header, rows), ""]
    metrics = {r["metric"] for r in runs}
    if len(metrics) > 1:
        lines.append(f"- The runs use different metrics ({', '.join(sorted(metrics))}); compare with care.")
    lines.append("- Brackets: 95% interval of each run on its own; a difference whose intervals overlap may be noise.")
    for label, r in zip(labels, runs, strict=True):
        described = ", ".join(f"{k}={v}" for k, v in r["run"].items() if v is not None and k != "generations")
        lines.append(f"- {label}: {described}")
    return "\n".join(lines) + "\n"


def write_comparison(
    paths: Sequence[str | Path], out_dir: str | Path, names: Sequence[str] | None = None
) -> dict[str, Path]:
    """Read the runs, write ``comparison.{json,md,csv,png}`` into ``out_dir``; returns their paths."""
    if len(paths) < 2:
        raise ValueError("a comparison needs at least two runs")
    runs = [load_results(p) for p in paths]
    labels = run_labels(runs, names)
    result = comparison(runs, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {ext: out / f"comparison.{ext}" for ext in ("json", "md", "csv", "png")}
    files["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    files["md"].write_text(markdown(result))
    csv_rows = [
        {"subset": group, "run": label, **(cell or {})}
        for group in result["groups"]
        for label, cell in result["table"][group].items()
    ]
    write_csv(csv_rows, files["csv"])
    series = {label: accuracy_points(r, result["groups"]) for label, r in zip(labels, runs, strict=True)}
    bar_chart(result["groups"], series, "accuracy per subset (95% CI)", files["png"])
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.evaluate.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="evaluation output folders (or results.json files)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for comparison.{md,json,csv,png}")
    parser.add_argument("--names", help="comma-separated labels, one per run (default: each run's name)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    return write_and_show(lambda: write_comparison(args.runs, args.out, names), "md")


if __name__ == "__main__":
    sys.exit(main())
