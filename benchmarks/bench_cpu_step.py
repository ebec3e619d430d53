"""CPU step-time breakdown of a real run (veRL's ``timing_s/*`` metrics), optionally against a baseline run.

    python benchmarks/bench_cpu_step.py [--steps 5] [--recipe rema_multiturn] [overrides...]
    python benchmarks/bench_cpu_step.py --recipe rema_multiturn \\
        --baseline 'trainer.v1.sampler.sampler_kwargs.poll_interval=2.0'      # veRL's poll interval, same run
    python benchmarks/bench_cpu_step.py --recipe rema_multiturn --baseline '' \
        --baseline-env VERL_REMA_GC_FREEZE=0                                 # a patch switched off by its variable

Runs ``python -m verl_rema.main_ppo`` on the embedded default with the cpu preset (``overrides`` apply to every
run), then prints, over the steps after the first (warm-up), each phase's median seconds, its spread (min-max) and
its share of the step, the generation time of every step (a fixed polling quantum shows there as equal values),
and start-up time = wall time minus time spent in steps and validation. With ``--baseline`` the baseline
configuration runs first, in the same invocation, and the table gains the baseline's figures and the ratio
candidate / baseline per phase.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verl_rema.summary import read_metrics

PHASES = ("gen", "reward", "old_log_prob", "ref", "adv", "update_actor", "update_weights", "save_checkpoint", "step")


@dataclass(frozen=True)
class Phase:
    median: float
    low: float
    high: float
    share: float  # of the median step


@dataclass(frozen=True)
class RunSummary:
    steps: int
    wall: float
    startup: float
    first_step: float
    phases: dict[str, Phase]
    gen_per_step: list[float]


def summarise(rows: Sequence[dict], wall: float) -> RunSummary:
    """Medians over the steps after the first (all steps if there is one); ``rows`` are veRL's logged steps."""
    rows = [row for row in rows if "timing_s/step" in row]
    if not rows:
        raise ValueError("no training step was logged")
    warm = rows[1:] or rows
    step = statistics.median(row["timing_s/step"] for row in warm)
    phases = {}
    for name in PHASES:
        values = [row[f"timing_s/{name}"] for row in warm if f"timing_s/{name}" in row]
        if values:
            median = statistics.median(values)
            phases[name] = Phase(median, min(values), max(values), median / step)
    in_steps = sum(row["timing_s/step"] + row.get("timing_s/testing", 0.0) for row in rows)
    return RunSummary(
        steps=len(rows),
        wall=wall,
        startup=wall - in_steps,
        first_step=rows[0]["timing_s/step"],
        phases=phases,
        gen_per_step=[row.get("timing_s/gen", float("nan")) for row in rows],
    )


def format_summary(label: str, run: RunSummary, baseline: RunSummary | None = None) -> str:
    lines = [
        f"{label}: {run.steps} steps, wall {run.wall:.1f} s, start-up {run.startup:.1f} s, first step "
        f"{run.first_step:.2f} s; medians of steps 2..{run.steps}",
        f"  gen per step (s): {', '.join(f'{value:.2f}' for value in run.gen_per_step)}",
        f"  {'phase':<16}{'median s':>10}{'min-max':>16}{'share':>8}"
        + (f"{'baseline s':>12}{'share':>8}{'this/base':>11}" if baseline else ""),
    ]
    for name, phase in run.phases.items():
        line = f"  {name:<16}{phase.median:>10.3f}{f'{phase.low:.2f}-{phase.high:.2f}':>16}{phase.share:>8.1%}"
        base = baseline.phases.get(name) if baseline else None
        if base is not None:
            line += f"{base.median:>12.3f}{base.share:>8.1%}{phase.median / base.median:>11.3f}"
        lines.append(line)
    return "\n".join(lines)


def run_once(recipe: str, steps: int, overrides: Sequence[str], env: dict[str, str] | None = None) -> RunSummary:
    work = Path(tempfile.mkdtemp(prefix="bench_cpu_step_"))
    metrics_path = work / "metrics.jsonl"
    env = {**os.environ, **(env or {}), "VERL_FILE_LOGGER_PATH": str(metrics_path)}
    command = [
        sys.executable, "-m", "verl_rema.main_ppo", f"+recipe={recipe}",
        f"trainer.total_training_steps={steps}", "trainer.val_before_train=False", "trainer.test_freq=-1",
        f"trainer.default_local_dir={work / 'ckpt'}", f"hydra.run.dir={work / 'hydra'}", *overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"run failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    print(f"(metrics of this run: {metrics_path})", flush=True)
    return summarise(read_metrics(metrics_path), wall)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--recipe", default="vrp_grpo")
    parser.add_argument("--baseline", help="overrides of a baseline run (one quoted string), measured first")
    parser.add_argument(
        "--baseline-env", nargs="*", default=[], metavar="VAR=VALUE", help="environment of the baseline run only"
    )
    args, overrides = parser.parse_known_args(argv)
    baseline = None
    if args.baseline is not None or args.baseline_env:
        env = dict(item.split("=", 1) for item in args.baseline_env)
        baseline = run_once(args.recipe, args.steps, [*overrides, *shlex.split(args.baseline or "")], env)
        label = " ".join([*args.baseline_env, args.baseline or ""]).strip()
        print(format_summary(f"baseline ({label})", baseline), flush=True)
    run = run_once(args.recipe, args.steps, overrides)
    print(format_summary(f"recipe {args.recipe} {' '.join(overrides)}".rstrip(), run, baseline), flush=True)


if __name__ == "__main__":
    main()
