"""Checkpoint integrity (issue 16, item 2): a checkpoint cut short by a kill is never picked as the latest; a
corrupted or mismatched one (a missing or truncated shard, a different world size, no data state, a different
model, a different recipe) stops the run before Ray starts, naming the file and what is wrong.

The checkpoints here have veRL 0.9.1's FSDP layout (``global_step_N/actor/{model,optim,extra_state}_world_size_W_
rank_R.pt``, ``fsdp_config.json``, ``huggingface/config.json``, ``data.pt``, the tracker), written with ``torch.save``
as veRL writes them; ``tests/e2e/test_kill_resume_cpu.py`` checks the same rules on the checkpoints of real runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.reliability.test_config_table import Composer
from verl_rema.resume_check import FINGERPRINT, CheckpointError, check_resume, write_fingerprint


def save_step(root: Path, step: int, config, model_config: Path, *, roles=("actor",), tracker: bool = True) -> Path:
    """One complete checkpoint as veRL + ReMA's trainer write it: fingerprint, model dirs, data state, tracker."""
    folder = root / f"global_step_{step}"
    write_fingerprint(folder, config)
    for sub in roles:
        actor = folder / sub
        (actor / "huggingface").mkdir(parents=True)
        for prefix in ("model", "optim", "extra_state"):
            torch.save({"w": torch.full((64,), float(step))}, actor / f"{prefix}_world_size_1_rank_0.pt")
        (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
        shutil.copy(model_config, actor / "huggingface" / "config.json")
    if "actor_reasoning" in roles:
        (folder / "rema_schedule.json").write_text(json.dumps({"global_step": step, "schedule": {}}))
    torch.save({"sampler": {"epoch": 0, "step": step}}, folder / "data.pt")
    if tracker:
        (root / "latest_checkpointed_iteration.txt").write_text(str(step))
    return folder


@pytest.fixture(scope="module")
def composer(embedded) -> Composer:
    return Composer(embedded)


@pytest.fixture
def run(composer, embedded, tmp_path):
    """A CPU rema_multiturn config checkpointing into tmp_path/ck, and a writer of its checkpoints."""
    root = tmp_path / "ck"

    def make(*overrides: str, recipe: str = "rema_multiturn"):
        cpu = ["+preset=cpu", "trainer.device=cpu", "trainer.n_gpus_per_node=1"]  # one rank: one shard per file
        config = composer.fast(recipe, [*cpu, f"trainer.default_local_dir={root}", *overrides])
        return config

    model_config = Path(str(embedded.model)) / "config.json"
    return root, make, lambda step, config, **kw: save_step(root, step, config, model_config, **kw)


def test_no_checkpoint_is_a_fresh_start_and_a_complete_one_is_picked(run):
    root, make, save = run
    config = make()
    assert check_resume(config) is None
    save(1, config)
    assert check_resume(config) == root / "global_step_1"


def test_a_checkpoint_cut_short_is_never_the_latest(run):
    """Killed while writing step 3: its folder holds part of the files, the tracker still names step 2."""
    root, make, save = run
    config = make()
    save(2, config)
    cut = save(3, config, tracker=False)
    (cut / "data.pt").unlink()
    shard = cut / "actor" / "optim_world_size_1_rank_0.pt"
    shard.write_bytes(shard.read_bytes()[:100])
    assert check_resume(config) == root / "global_step_2"


@pytest.mark.parametrize(
    ("damage", "file", "reason"),
    [
        ("tracker_garbage", "latest_checkpointed_iteration.txt", "not a step number"),
        ("tracker_ahead", "latest_checkpointed_iteration.txt", "names step 7 but .*global_step_7 does not exist"),
        ("missing_shard", "global_step_2/actor/optim_world_size_1_rank_0.pt", "missing"),
        ("truncated_shard", "global_step_2/actor/model_world_size_1_rank_0.pt", "not an intact torch.save archive"),
        ("empty_shard", "global_step_2/actor/extra_state_world_size_1_rank_0.pt", "empty file"),
        ("world_size", "global_step_2/actor/fsdp_config.json", "world_size=2, this run has 1 ranks"),
        ("no_fsdp_config", "global_step_2/actor/fsdp_config.json", "missing"),
        ("no_data_state", "global_step_2/data.pt", "data order cannot be resumed"),
        ("bad_data_state", "global_step_2/data.pt", "unreadable"),
        ("other_model", "global_step_2/actor/huggingface/config.json", "a different model: hidden_size=4096"),
        (
            "other_recipe",
            f"global_step_2/{FINGERPRINT}",
            "a different recipe: prompt_set='cot' there, 'multiturn' now",
        ),  # fmt: skip
        ("other_batch", f"global_step_2/{FINGERPRINT}", "a different recipe: data_order="),
    ],
)
def test_a_damaged_or_mismatched_checkpoint_is_refused_naming_the_file(run, damage, file, reason):
    root, make, save = run
    config = make()
    folder = save(2, config)
    path = root / file
    if damage == "tracker_garbage":
        path.write_text("2\x00\x00")
    elif damage == "tracker_ahead":
        path.write_text("7")
    elif damage in ("missing_shard", "no_fsdp_config", "no_data_state"):
        path.unlink()
    elif damage == "truncated_shard":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty_shard":
        path.write_bytes(b"")
    elif damage == "world_size":
        path.write_text(json.dumps({"FSDP_version": 2, "world_size": 2}))
    elif damage == "bad_data_state":
        path.write_bytes(b"not a pickle")
    elif damage == "other_model":
        path.write_text(json.dumps({**json.loads(path.read_text()), "hidden_size": 4096}))
    elif damage == "other_recipe":
        path.write_text(json.dumps({**json.loads(path.read_text()), "prompt_set": "cot"}))
    elif damage == "other_batch":
        saved = json.loads(path.read_text())
        path.write_text(json.dumps({**saved, "data_order": {**saved["data_order"], "train_batch_size": 64}}))
    with pytest.raises(CheckpointError, match=reason) as error:
        check_resume(config)
    assert str(error.value).startswith(f"verl-rema resume: {path}: ")
    assert folder.is_dir()


def test_evaluation_of_a_checkpoint_checks_the_models_but_not_the_recipe(run):
    root, make, save = run
    folder = save(2, make())
    fingerprint = folder / FINGERPRINT
    saved = json.loads(fingerprint.read_text())
    fingerprint.write_text(json.dumps({**saved, "prompt_set": "cot", "data_order": {**saved["data_order"], "rollout_n": 99}}))  # fmt: skip
    (folder / "data.pt").unlink()  # evaluation does not read the data state
    config = make("trainer.val_only=true", "trainer.resume_mode=resume_path", f"trainer.resume_from_path={folder}")
    assert check_resume(config) == folder
    (folder / "actor" / "model_world_size_1_rank_0.pt").unlink()  # but the model it evaluates must be there
    with pytest.raises(CheckpointError, match="model_world_size_1_rank_0.pt: missing"):
        check_resume(config)
    config = make("trainer.val_only=true", "trainer.resume_mode=resume_path", f"trainer.resume_from_path={root / 'x'}")
    with pytest.raises(CheckpointError, match="resume_from_path does not exist"):
        check_resume(config)


def test_a_model_per_role_checkpoint_needs_both_models_and_the_schedule(run):
    root, make, save = run
    config = make(recipe="rema_multiturn_separate")
    folder = save(2, config, roles=("actor", "actor_reasoning"))
    assert check_resume(config) == folder
    (folder / "rema_schedule.json").unlink()
    with pytest.raises(CheckpointError, match=r"rema_schedule.json: missing"):
        check_resume(config)
    shutil.rmtree(folder / "actor_reasoning")
    with pytest.raises(CheckpointError, match=r"actor_reasoning: missing"):
        check_resume(config)


def test_the_entry_point_refuses_before_veRL_runs(run, monkeypatch):
    """``main_ppo.run``: the check sits before ``run_ppo`` (Ray, workers, the first step)."""
    import verl.trainer.main_ppo as verl_main

    from verl_rema import main_ppo

    root, make, save = run
    config = make("trainer.device=cpu")
    save(1, config)
    (root / "global_step_1" / "actor" / "model_world_size_1_rank_0.pt").unlink()
    monkeypatch.setattr(verl_main, "run_ppo", lambda *a, **k: pytest.fail("veRL started on a broken checkpoint"))
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(root / "metrics.jsonl"))
    with pytest.raises(CheckpointError, match=r"global_step_1/actor/model_world_size_1_rank_0.pt: missing"):
        main_ppo.run(config)


class _FakeActorGroup:
    """The actor worker group's checkpoint API, writing what veRL's FSDP workers write (one rank)."""

    def __init__(self, model_config: Path) -> None:
        self.model_config, self.saved = model_config, []

    def save_checkpoint(self, local_path, hdfs_path, global_step, max_ckpt_to_keep=None):
        actor = Path(local_path)
        (actor / "huggingface").mkdir(parents=True, exist_ok=True)
        for prefix in ("model", "optim", "extra_state"):
            torch.save({"w": torch.full((8,), float(global_step))}, actor / f"{prefix}_world_size_1_rank_0.pt")
        (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
        shutil.copy(self.model_config, actor / "huggingface" / "config.json")
        self.saved.append(str(actor))


def test_the_latest_step_marker_waits_for_the_steps_metrics(run, embedded, monkeypatch):
    """veRL's own ``_save_checkpoint`` (v1 trainer) under ReMA's trainer: the fingerprint is written first, and the
    marker names a step only from the next step's start (or after the last step), i.e. after veRL has logged that
    step's metrics; a kill in between resumes from the step before and re-runs this one (no metrics lost)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from verl_rema.trainer.rema_trainer import ReMATrainer

    root, make, _ = run
    trainer = ReMATrainer.__new__(ReMATrainer)  # the checkpoint path only: no workers, no Ray
    trainer.config, trainer.use_critic, trainer.trainer_mode = make(), False, "sync"
    trainer.actor_rollout_wg = _FakeActorGroup(Path(str(embedded.model)) / "config.json")
    trainer.train_dataloader = type("Loader", (), {"state_dict": lambda self: {"step": trainer.global_steps}})()
    trainer.checkpoint_callback = type("Callback", (), {"on_save": lambda self, **kw: None})()
    monkeypatch.setattr(PPOTrainer, "on_step_begin", lambda self: None)
    monkeypatch.setattr(PPOTrainer, "_shutdown_dump_executor", lambda self: None)
    marker = root / "latest_checkpointed_iteration.txt"
    for step in (1, 2):
        trainer.global_steps = step
        trainer.on_step_begin()
        trainer._save_checkpoint()  # veRL wrote the marker; ReMA held it back
        assert (root / f"global_step_{step}" / FINGERPRINT).is_file() and (root / f"global_step_{step}" / "data.pt").is_file()  # fmt: skip
        assert (marker.read_text() if marker.exists() else None) == (None if step == 1 else str(step - 1))
        assert check_resume(trainer.config) == (None if step == 1 else root / f"global_step_{step - 1}")
    trainer._shutdown_dump_executor()  # after the last step's metrics
    assert marker.read_text() == "2" and check_resume(trainer.config) == root / "global_step_2"
