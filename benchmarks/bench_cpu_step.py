"""CPU step-time breakdown of a real run (veRL's ``timing_s/*`` metrics) and start-up time.

    python benchmarks/bench_cpu_step.py [--steps 6] [--recipe vrp_grpo] [extra overrides...]

Runs ``python -m verl_rema.main_ppo`` on the embedded default with the cpu preset, then prints,
for the steps after the first (warm-up), each phase's mean seconds and its share of the step
(the step itself is the baseline, measured in the same run), plus start-up time = wall time
minus time spent in steps and validation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verl_rema.summary import read_metrics

PHASES = ("gen", "old_log_prob", "ref", "adv", "update_actor", "update_weights", "save_checkpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--recipe", default="vrp_grpo")
    args, overrides = parser.parse_known_args()
    work = Path(tempfile.mkdtemp(prefix="bench_cpu_step_"))
    metrics_path = work / "metrics.jsonl"
    env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(metrics_path)}
    command = [
        sys.executable, "-m", "verl_rema.main_ppo", f"+recipe={args.recipe}",
        f"trainer.total_training_steps={args.steps}", "trainer.val_before_train=False", "trainer.test_freq=-1",
        f"trainer.default_local_dir={work / 'ckpt'}", f"hydra.run.dir={work / 'hydra'}", *overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"run failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    rows = [r for r in read_metrics(metrics_path) if "timing_s/step" in r]
    warm = rows[1:] or rows
    step = statistics.mean(r["timing_s/step"] for r in warm)
    in_steps = sum(r["timing_s/step"] + r.get("timing_s/testing", 0.0) for r in rows)
    print(f"recipe {args.recipe}: {len(rows)} steps, wall {wall:.1f} s, start-up {wall - in_steps:.1f} s")
    print(f"first step {rows[0]['timing_s/step']:.2f} s; steady step {step:.2f} s (mean of steps 2..{len(rows)})")
    print(f"{'phase':<16}{'mean s':>10}{'share of step':>16}")
    for phase in PHASES:
        values = [r[f"timing_s/{phase}"] for r in warm if f"timing_s/{phase}" in r]
        if values:
            print(f"{phase:<16}{statistics.mean(values):>10.3f}{statistics.mean(values) / step:>16.1%}")
    print(f"{'step':<16}{step:>10.3f}{1:>16.1%}")


if __name__ == "__main__":
    main()
