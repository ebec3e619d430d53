"""The formats every evaluation report writes (Markdown tables, CSV, bar charts with 95% error bars), and the ending
their command lines share.

Used by the per-subset report (:mod:`.report`), the comparison (:mod:`.compare`), the judge report (:mod:`.judge`)
and Table 1 (:mod:`.table1`), so that their files look alike.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def bar_chart(
    groups: Sequence[str], series: Mapping[str, Sequence[tuple[float, float, float] | None]], title: str, path: Path
) -> None:
    """Grouped bars in percent with asymmetric 95% error bars; ``series`` maps a label to one
    (value, low, high) per group (None: no bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(series))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1, len(series)) ** 0.5 + 2), 4.5))
    for i, (label, points) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g, point in enumerate(points) if point is not None]
        kept = [point for point in points if point is not None]
        values = [100 * v for v, _, _ in kept]
        errors = [[100 * (v - lo) for v, lo, _ in kept], [100 * (hi - v) for v, _, hi in kept]]
        bars = axes.bar(xs, values, width, yerr=errors, capsize=3, label=label)
        axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
    axes.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    axes.set_ylim(0, 105)
    axes.set_ylabel("accuracy % (95% CI)")
    axes.set_title(title)
    if len(series) > 1:
        axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_and_show(write: Callable[[], Mapping[str, Path]], shown: str) -> int:
    """A report command's last step: run ``write``, then print the Markdown file ``shown`` and every file written
    (exit code 0); an unreadable or unusable input prints ``error: ...`` instead (exit code 1)."""
    try:
        paths = write()
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(paths[shown].read_text())
    print("\n".join(f"wrote {path}" for path in paths.values()))
    return 0
