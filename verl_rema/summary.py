"""A short end-of-run summary read from veRL's JSONL file logger."""

from __future__ import annotations

import json
import math
from pathlib import Path

#: (metric key in veRL, column title)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("critic/score/mean", "reward"),
    ("actor/pg_loss", "pg_loss"),
    ("actor/grad_norm", "grad_norm"),
    ("response_length/mean", "resp_len"),
    ("timing_s/step", "step_s"),
)


def read_metrics(path: str | Path) -> list[dict]:
    """One dict per logged step: ``{"step": int, **metrics}``."""
    path = Path(path)
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"step": row["step"], **row["data"]} for row in rows]


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and math.isfinite(value) else "-"


def format_summary(rows: list[dict]) -> str:
    if not rows:
        return "verl-rema: no metrics were logged."
    train = [r for r in rows if "timing_s/step" in r]
    val_keys = sorted({k for r in rows for k in r if k.startswith("val-core/")})
    lines = ["", "verl-rema run summary", "step | " + " | ".join(title for _, title in COLUMNS)]
    lines += [f"{r['step']:>4} | " + " | ".join(_fmt(r.get(key)) for key, _ in COLUMNS) for r in train]
    for key in val_keys:
        points = [(r["step"], r[key]) for r in rows if key in r]
        lines.append(f"{key}: " + ", ".join(f"step {s}: {_fmt(v)}" for s, v in points))
    if train:
        lines.append(
            f"{len(train)} training steps, last step {train[-1]['step']}, "
            f"mean step time {sum(r['timing_s/step'] for r in train) / len(train):.2f} s"
        )
    return "\n".join(lines)


def print_summary(path: str | Path) -> None:
    print(format_summary(read_metrics(path)), flush=True)
    print(f"metrics: {path}", flush=True)
