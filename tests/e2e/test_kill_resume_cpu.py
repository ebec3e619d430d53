"""Kill and resume drill (issue 16, items 1-2) on CPU: ``rema_multiturn`` on the embedded model, a checkpoint every
step, SIGKILLed (the whole process group: driver, Ray, workers, vLLM) three times at observable moments, resumed each
time from what it left:

1. during the rollout of step 2 (the latest-step marker has just moved to step 1: ReMA sets it at a step's start);
2. during the actor update of step 3 (the trainer's ``step 3: updating the actor`` line, before its checkpoint);
3. during the checkpoint write of step 3 (``global_step_3/`` appears: ReMA's fingerprint is its first file).

Checked: each resume starts at the step after the last complete checkpoint (the one cut short is never picked); the
prompts of every step are those of an uninterrupted run (veRL's sampler from its start); the model, optimiser and
scheduler state a resumed run holds equals its checkpoint's, tensor for tensor (``VERL_REMA_RESUME_PROBE``); every
step's metrics are in exactly one run's metrics file; the optimiser's own step count ends at 2 x 4. Then a checkpoint
with a missing shard and a run with another model are refused before Ray starts, naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch

from tests.e2e.runner import RUN_TIMEOUT_S
from verl_rema.summary import read_metrics

pytestmark = pytest.mark.slow

STEPS, BATCH, N = 4, 4, 2
COMMON = [
    "+recipe=rema_multiturn",
    "rema.rollout.max_turns=2",
    "rema.rollout.stop_when_truncated=false",
    "rema.rollout.max_tokens_per_message=16",
    f"data.train_batch_size={BATCH}",
    f"actor_rollout_ref.rollout.n={N}",
    f"trainer.total_training_steps={STEPS}",
    "trainer.save_freq=1",
    "trainer.val_before_train=False",
    "trainer.test_freq=-1",
    "data.val_max_samples=4",
    "actor_rollout_ref.actor.ppo_epochs=2",  # a longer update: its start is seen (through Ray's log) before it ends
]
EPOCHS = 2


class Launch:
    """One ``python -m verl_rema.main_ppo`` in its own session, watched while it runs."""

    def __init__(self, work: Path, name: str, overrides: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path, self.metrics_path = work / f"{name}.log", work / f"{name}.jsonl"
        full_env = {**os.environ, "VERL_REMA_CACHE": str(work / "cache"), "VERL_FILE_LOGGER_PATH": str(self.metrics_path), "HYDRA_FULL_ERROR": "1", "RAY_DEDUP_LOGS": "0", **(env or {})}  # fmt: skip
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in finish)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "verl_rema.main_ppo", *overrides, f"hydra.run.dir={work / 'hydra' / name}"],
            cwd=work,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.start = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = RUN_TIMEOUT_S) -> float:
        """Poll ``condition`` every 20 ms; fail (with the log's tail) if the run ends or the time runs out first."""
        while time.monotonic() - self.start < timeout:
            if condition():
                return time.monotonic() - self.start
            if self.proc.poll() is not None:
                pytest.fail(f"run ended (rc={self.proc.returncode}) before {what}:\n{self.log()[-6000:]}")
            time.sleep(0.02)
        self.kill()
        pytest.fail(f"no {what} within {timeout}s:\n{self.log()[-6000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group, then make sure no process of the run is left (Ray's services included)."""
        family = [self.proc.pid]
        try:
            family += [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.finish()
        deadline = time.monotonic() + 60
        while (alive := [pid for pid in family if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in alive:  # outside the group (Ray may start its services in sessions of their own): ours to end
            os.kill(pid, signal.SIGKILL)
        assert not alive, f"processes of the killed run outlived it: {alive}"

    def finish(self, timeout: float = RUN_TIMEOUT_S) -> int:
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def trained_steps(self) -> list[int]:
        return [row["step"] for row in read_metrics(self.metrics_path) if "timing_s/step" in row]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _newer(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since
    except FileNotFoundError:
        return False


def _tracker(ck: Path) -> str | None:
    path = ck / "latest_checkpointed_iteration.txt"
    return path.read_text().strip() if path.exists() else None


def _shards(folder: Path) -> dict[str, object]:
    return {p.name: torch.load(p, weights_only=False) for p in sorted(folder.glob("*_world_size_1_rank_0.pt"))}


def _equal(a, b, where: str = "") -> None:
    """Nested state dicts equal, tensor for tensor (DTensors by their local shard)."""
    if hasattr(a, "to_local"):
        a, b = a.to_local(), b.to_local()
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _optimizer_steps(folder: Path) -> int:
    state = torch.load(folder / "optim_world_size_1_rank_0.pt", weights_only=False)
    steps = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                steps.append(int(value.item() if hasattr(value, "item") else value)) if key == "step" else walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(state)
    return max(steps)


def _uninterrupted_questions(train_file: Path, run_config: Path) -> list[set[str]]:
    """The prompts of steps 1..STEPS of an uninterrupted run: veRL's own sampler factory with the run's data
    settings (shuffle, seed), from its start, over the run's training file."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import create_rl_sampler

    questions = pd.read_parquet(train_file)["question"].tolist()
    data = OmegaConf.load(run_config).data
    sampler = create_rl_sampler(OmegaConf.create({"shuffle": data.shuffle, "seed": data.get("seed")}), questions)
    order = list(iter(sampler))
    return [set(questions[i] for i in order[s * BATCH : (s + 1) * BATCH]) for s in range(STEPS)]


def _dumped_questions(dump: Path, step: int, candidates: set[str]) -> set[str]:
    inputs = [json.loads(line)["input"] for line in (dump / f"{step}.jsonl").read_text().splitlines()]
    found = {q for q in candidates if any(q in text for text in inputs)}
    assert all(any(q in text for q in found) for text in inputs), f"step {step}: a row of an unexpected prompt"
    return found


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    work = tmp_path_factory.mktemp("kill_resume")
    ck, dump, probe = work / "ck", work / "dump", work / "probe"
    overrides = [*COMMON, f"trainer.default_local_dir={ck}", f"trainer.rollout_data_dir={dump}"]
    env = {"VERL_REMA_RESUME_PROBE": str(probe)}
    runs, kills = [], {}
    # 1. fresh start; killed in the rollout of step 2 (the marker names step 1 from step 2's start on)
    run = Launch(work, "run0", overrides)
    runs.append(run)
    run.wait_for("the step-1 checkpoint", lambda: _tracker(ck) == "1")
    time.sleep(0.3)
    kills["rollout"] = {"update_started": "step 2: updating" in run.log(), "tracker": _tracker(ck)}
    run.kill()
    # 2. resumed from 1; killed in the actor update of step 3
    run = Launch(work, "run1", overrides, env)
    runs.append(run)
    run.wait_for("step 3's update", lambda: "verl-rema: step 3: updating the actor" in run.log())
    kills["update"] = {"save_started": (ck / "global_step_3").exists(), "tracker": _tracker(ck)}
    run.kill()
    # 3. resumed from 2; killed while step 3's checkpoint is being written (its folder appears, fingerprint first)
    run = Launch(work, "run2", overrides, {**env, "VERL_REMA_DRILL_SAVE_PAUSE_S": "60"})  # held half-written
    runs.append(run)
    launched = time.time()
    run.wait_for("step 3's checkpoint", lambda: _newer(ck / "global_step_3", launched))
    run.kill()
    kills["checkpoint"] = {"tracker": _tracker(ck), "files": sorted(str(p.relative_to(ck)) for p in (ck / "global_step_3").rglob("*"))}  # fmt: skip
    # 4. resumed from 2 again; runs to the end
    run = Launch(work, "run3", overrides, env)
    runs.append(run)
    assert run.finish() == 0, run.log()[-6000:]
    return {"work": work, "ck": ck, "dump": dump, "probe": probe, "runs": runs, "kills": kills}


def test_each_kill_landed_where_intended(drill):
    kills = drill["kills"]
    print(f"\nkills: {json.dumps(kills, indent=1)}")
    assert kills["rollout"] == {"update_started": False, "tracker": "1"}
    assert kills["update"] == {"save_started": False, "tracker": "2"}
    assert kills["checkpoint"]["tracker"] == "2"
    assert "data.pt" not in kills["checkpoint"]["files"]  # cut short: veRL writes the data state near the end


def test_each_resume_continues_after_the_last_complete_checkpoint(drill):
    runs = drill["runs"]
    assert [run.trained_steps() for run in runs] == [[1], [2], [], [3, 4]]
    for run, step in zip(runs[1:], (1, 2, 2), strict=True):
        assert f"global_step_{step}" in run.log().split("Resuming from", 1)[1].splitlines()[0], run.log()[-3000:]
    assert _tracker(drill["ck"]) == str(STEPS)


def test_metrics_are_neither_duplicated_nor_lost(drill):
    logged = [step for run in drill["runs"] for step in run.trained_steps()]
    assert logged == list(range(1, STEPS + 1))


def test_every_step_trained_the_prompts_of_an_uninterrupted_run(drill, embedded_train):
    expected = _uninterrupted_questions(embedded_train, drill["work"] / "hydra" / "run0" / ".hydra" / "config.yaml")
    candidates = set().union(*expected) | set(pd.read_parquet(embedded_train)["question"].head(64))
    for step in range(1, STEPS + 1):
        assert _dumped_questions(drill["dump"], step, candidates) == expected[step - 1], step
    assert expected[1] != expected[0]  # the check would see a data order that restarted


def test_a_resumed_run_holds_exactly_its_checkpoints_state(drill):
    """Model, optimiser (AdamW moments and step) and scheduler/RNG state, as loaded, against the files."""
    for step in (1, 2):
        loaded, saved = _shards(drill["probe"] / f"global_step_{step}" / "actor"), _shards(drill["ck"] / f"global_step_{step}" / "actor")  # fmt: skip
        assert set(loaded) == {"model_world_size_1_rank_0.pt", "optim_world_size_1_rank_0.pt", "extra_state_world_size_1_rank_0.pt"}  # fmt: skip
        _equal(loaded, saved, f"global_step_{step}")
    assert _optimizer_steps(drill["ck"] / f"global_step_{STEPS}" / "actor") == EPOCHS * STEPS  # none lost or redone


def test_a_checkpoint_with_a_missing_shard_or_another_model_is_refused_before_ray(drill):
    work, ck = drill["work"], drill["ck"]
    broken = work / "broken"
    shutil.copytree(ck, broken)
    (broken / f"global_step_{STEPS}" / "actor" / "optim_world_size_1_rank_0.pt").unlink()
    run = Launch(work, "broken", [*COMMON, f"trainer.default_local_dir={broken}", f"trainer.total_training_steps={STEPS + 1}"])  # fmt: skip
    assert run.finish(timeout=300) != 0
    assert f"verl-rema resume: {broken}/global_step_{STEPS}/actor/optim_world_size_1_rank_0.pt: missing" in run.log()
    from tests.e2e.tiny_llama import build_tiny_llama

    other = build_tiny_llama(work / "tiny_llama")
    run = Launch(work, "other_model", [*COMMON, f"trainer.default_local_dir={ck}", f"trainer.total_training_steps={STEPS + 1}", f"actor_rollout_ref.model.path={other}"])  # fmt: skip
    assert run.finish(timeout=300) != 0
    assert f"{ck}/global_step_{STEPS}/actor/huggingface/config.json: a different model" in run.log()
    assert "Started a local Ray instance" in drill["runs"][0].log()  # what a run that gets as far as Ray prints
    for name in ("broken", "other_model"):
        assert "Started a local Ray instance" not in (work / f"{name}.log").read_text()


@pytest.fixture(scope="module")
def embedded_train(drill) -> Path:
    from verl_rema.embedded import embedded_paths

    return Path(embedded_paths(root=drill["work"] / "cache").train)
