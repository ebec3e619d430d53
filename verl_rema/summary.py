"""A short end-of-run summary read from veRL's JSONL file logger, and its learning curve as a PNG beside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

#: (metric key in veRL, column title)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("critic/score/mean", "reward"),
    ("training/rema/episode/reward", "episode_reward"),  # one value per episode (a ReMA episode has a row per role)
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


def plot_curves(rows: list[dict], out: str | Path) -> Path | None:
    """Training reward (per episode where logged) and every validation accuracy against the step, in one PNG."""
    train_key = next(
        (k for k in ("training/rema/episode/reward", "critic/score/mean") if any(k in r for r in rows)), None
    )
    val_keys = sorted({k for r in rows for k in r if k.startswith("val-core/")})
    if train_key is None and not val_keys:
        return None
    lines = [
        (
            [r["step"] for r in rows if key in r],
            [r[key] for r in rows if key in r],
            style,
            key.replace("val-core/", "validation "),
            None,
        )
        for key, style in [(train_key, "-")] * (train_key is not None) + [(k, "o-") for k in val_keys]
    ]
    return line_chart(lines, "step", "reward / accuracy", out, size=(6, 3.5))


def line_chart(
    lines: list[tuple[list[float], list[float], str, str | None, str | None]],
    xlabel: str,
    ylabel: str,
    out: str | Path,
    size: tuple[float, float] = (6.5, 4),
) -> Path:
    """One PNG of ``(xs, ys, style, label, color)`` lines: the learning curves of a run or of an experiment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=size)
    for xs, ys, style, label, color in lines:
        axis.plot(xs, ys, style, label=label, color=color, alpha=0.85)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return Path(out)


def print_summary(path: str | Path) -> None:
    rows = read_metrics(path)
    print(format_summary(rows), flush=True)
    print(f"metrics: {path}", flush=True)
    png = plot_curves(rows, Path(path).with_suffix(".png")) if rows else None
    if png is not None:
        print(f"learning curve: {png}", flush=True)
