"""Run ``python -m verl_rema.main_ppo`` as a user would, one run at a time, and read what it logged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from verl_rema.summary import read_metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 1200


@dataclass
class Run:
    returncode: int
    log: str
    metrics: list[dict]
    peak_memory_gb: float = 0.0  # the machine's used memory at its highest during the run (all processes)

    def steps(self) -> list[int]:
        return [row["step"] for row in self.metrics if "timing_s/step" in row]

    def at(self, step: int) -> dict:
        merged: dict = {}
        for row in self.metrics:
            if row["step"] == step:
                merged.update(row)
        return merged


def run_main(
    overrides: list[str], workdir: Path, cache: Path, log_name: str, module: str = "verl_rema.main_ppo"
) -> Run:
    """One CPU run of the real entry point; Ray is started and torn down by the run itself."""
    metrics_path = workdir / f"{log_name}.jsonl"
    env = {
        **os.environ,
        "VERL_REMA_CACHE": str(cache),
        "VERL_FILE_LOGGER_PATH": str(metrics_path),
        "HYDRA_FULL_ERROR": "1",
        "RAY_DEDUP_LOGS": "0",
    }
    log_path = workdir / f"{log_name}.log"
    peak = _PeakMemory()
    with open(log_path, "w") as log, peak:
        # Its own session: the driver's local Ray cluster ends with it, and a timeout kills the whole group
        # (never `ray stop`, which would also kill any other Ray cluster on the machine).
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *overrides, f"hydra.run.dir={workdir / 'hydra'}"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
    return Run(returncode, log_path.read_text(errors="replace"), read_metrics(metrics_path), peak.gb)


class _PeakMemory:
    """Samples the machine's used memory (total - available) twice a second while a run lasts."""

    def __enter__(self) -> _PeakMemory:
        import threading

        import psutil

        self.gb, self._stop = 0.0, threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.5):
                memory = psutil.virtual_memory()
                self.gb = max(self.gb, (memory.total - memory.available) / 2**30)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
