"""The checkpoint a run will resume from, checked before Ray starts: complete, intact, of this model and recipe.

veRL resumes from ``<trainer.default_local_dir>/global_step_N`` where N is read from
``latest_checkpointed_iteration.txt``, which it writes only after the step's checkpoint is complete, so a checkpoint
cut short by a kill is never picked. What veRL does not check, and what this module refuses with the file named,
before any training step:

* a tracker that is not a step number, or that names a missing folder (veRL would then train from scratch);
* a missing or truncated shard of a model (``model/optim/extra_state_world_size_W_rank_R.pt`` for each rank of the
  current world size), a missing ``fsdp_config.json``, a world size that differs from this run's;
* a missing or unreadable ``data.pt`` (veRL would restart the data order from the beginning, with a warning);
* a different model: the checkpoint's ``huggingface/config.json`` against ``actor_rollout_ref.model.path``'s
  (architecture and sizes), per role with a model per role (``actor_reasoning/``, ``rema_schedule.json``);
* a different recipe: ``rema_run.json`` (written into each checkpoint by ReMA's trainers, before veRL's files and
  its tracker) against this run's prompt set, agent loop, estimator, policy loss, model-per-role setting and data
  order (batch size, rollout.n, shuffle, seed); an evaluation (``trainer.val_only``) checks the models only.

Shards are checked as intact archives (``torch.save``'s zip central directory, read from the end of the file: a file
cut short fails), not loaded. Megatron checkpoints are left to veRL (a different layout).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

TRACKER = "latest_checkpointed_iteration.txt"
FINGERPRINT = "rema_run.json"
SCHEDULE_FILE = "rema_schedule.json"
PARTNER_DIR = "actor_reasoning"
MODEL_KEYS: tuple[str, ...] = ("model_type", "architectures", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size")  # fmt: skip
SHARDS = {"model": "model", "optimizer": "optim", "extra": "extra_state"}  # checkpoint.load_contents -> file prefix


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from, named by file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"verl-rema resume: {path}: {reason}")


def resume_folder(config: DictConfig) -> Path | None:
    """The ``global_step_N`` folder veRL will resume from (its own rule), or None for a fresh start."""
    trainer = config.trainer
    if trainer.resume_mode == "disable":
        return None
    if trainer.resume_mode == "resume_path":
        folder = Path(os.path.abspath(str(trainer.resume_from_path)))
        if not folder.is_dir():
            raise CheckpointError(folder, "trainer.resume_from_path does not exist")
        return folder
    root = Path(os.path.abspath(str(trainer.default_local_dir)))
    tracker = root / TRACKER
    if not tracker.exists():
        return None
    text = tracker.read_text(errors="replace").strip()
    if not text.isdigit():
        raise CheckpointError(tracker, f"not a step number ({text[:40]!r}); fix it or remove it to start afresh")
    folder = root / f"global_step_{int(text)}"
    if not folder.is_dir():
        raise CheckpointError(tracker, f"names step {text} but {folder} does not exist (veRL would train from scratch)")
    return folder


def run_fingerprint(config: DictConfig) -> dict[str, Any]:
    """What makes a checkpoint this recipe's: prompts, loop, estimator, loss, models per role, data order."""
    select = lambda key: OmegaConf.select(config, key, default=None)  # noqa: E731
    prompt_set = select("rema.rollout.prompt_set")
    return {
        "prompt_set": OmegaConf.to_container(prompt_set, resolve=True)
        if OmegaConf.is_config(prompt_set)
        else prompt_set,  # fmt: skip
        "agent_loop": select("actor_rollout_ref.rollout.agent.default_agent_loop"),
        "adv_estimator": select("algorithm.adv_estimator"),
        "loss_mode": select("actor_rollout_ref.actor.policy_loss.loss_mode"),
        "model_per_role": select("rema.models") is not None,
        "data_order": {
            "train_batch_size": select("data.train_batch_size"),
            "rollout_n": select("actor_rollout_ref.rollout.n"),
            "shuffle": select("data.shuffle"),
            "seed": select("data.seed"),
        },
    }


def write_fingerprint(folder: str | Path, config: DictConfig) -> Path:
    """Write ``rema_run.json`` into a checkpoint folder (atomically: a kill leaves the old file or none)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, tmp = folder / FINGERPRINT, folder / f".{FINGERPRINT}.tmp"
    tmp.write_text(json.dumps(run_fingerprint(config), indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def read_tracker(root: str | Path) -> str | None:
    """The latest-step marker's text, or None when there is none."""
    path = Path(root) / TRACKER
    return path.read_text() if path.exists() else None


def write_tracker(root: str | Path, text: str | None) -> None:
    """Set (atomically: a kill leaves the old or the new marker, never a cut one) or remove the marker."""
    path = Path(root) / TRACKER
    if text is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{TRACKER}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _intact(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(path, "missing (a shard of this run's world size)")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file (the checkpoint was cut short)")
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(path, f"not an intact torch.save archive ({error}); the write was cut short") from None


def _model_config(path: str) -> dict[str, Any] | None:
    local = Path(path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    try:  # a hub id: whatever transformers has cached (nothing is downloaded here)
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(path, local_files_only=True).to_dict()
    except Exception:  # noqa: BLE001  (not available offline: veRL loads it later and reports its own error)
        return None


def _check_model_dir(model_dir: Path, model_path: str, world_size: int, contents: list[str]) -> None:
    if not model_dir.is_dir():
        raise CheckpointError(model_dir, "missing (no model checkpoint for this role)")
    fsdp = model_dir / "fsdp_config.json"
    if not fsdp.is_file():
        raise CheckpointError(fsdp, "missing (not a complete FSDP checkpoint)")
    saved = json.loads(fsdp.read_text()).get("world_size")
    if saved != world_size:
        raise CheckpointError(fsdp, f"saved with world_size={saved}, this run has {world_size} ranks")
    for content in contents:
        prefix = SHARDS.get(content)
        for rank in range(world_size) if prefix else ():
            _intact(model_dir / f"{prefix}_world_size_{world_size}_rank_{rank}.pt")
    saved_config, config_path = None, model_dir / "huggingface" / "config.json"
    if config_path.is_file():
        saved_config = json.loads(config_path.read_text())
    wanted = _model_config(model_path)
    if saved_config is None or wanted is None:
        return
    for key in MODEL_KEYS:
        if saved_config.get(key) != wanted.get(key):
            raise CheckpointError(
                config_path,
                f"a different model: {key}={saved_config.get(key)!r}, but actor_rollout_ref.model.path={model_path} "
                f"has {wanted.get(key)!r}",
            )


def _model_dirs(config: DictConfig) -> dict[str, str]:
    """Checkpoint sub-folder -> the model path it must match."""
    dirs = {"actor": str(config.actor_rollout_ref.model.path)}
    if OmegaConf.select(config, "rema.models", default=None) is not None:
        from verl_rema.protocol import Role
        from verl_rema.separate.roles import role_configs

        roles = role_configs(config)
        dirs = {"actor": str(roles[Role.META].actor_rollout_ref.model.path)}
        dirs[PARTNER_DIR] = str(roles[Role.REASONING].actor_rollout_ref.model.path)
    return dirs


def verify_checkpoint(folder: Path, config: DictConfig) -> None:
    """Raise CheckpointError naming the first file that makes ``folder`` unfit to resume this run."""
    import torch

    training = not bool(OmegaConf.select(config, "trainer.val_only", default=False))
    if training:
        data = folder / "data.pt"
        if not data.is_file():
            raise CheckpointError(data, "missing: the data order cannot be resumed (veRL would start it over)")
        try:
            torch.load(data, weights_only=False)
        except Exception as error:  # noqa: BLE001
            raise CheckpointError(data, f"unreadable ({type(error).__name__}: {error})") from None
    strategy = OmegaConf.select(config, "actor_rollout_ref.actor.strategy")
    contents = list(OmegaConf.select(config, "actor_rollout_ref.actor.checkpoint.load_contents", default=None) or SHARDS)  # fmt: skip
    if strategy in ("fsdp", "fsdp2"):
        world_size = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)  # FSDP shards: one per GPU
        for sub, model_path in _model_dirs(config).items():
            _check_model_dir(folder / sub, model_path, world_size, contents if training else ["model"])
    if OmegaConf.select(config, "rema.models", default=None) is not None and training:
        schedule = folder / SCHEDULE_FILE
        if not schedule.is_file():
            raise CheckpointError(schedule, "missing: not a model-per-role checkpoint")
    fingerprint = folder / FINGERPRINT
    if fingerprint.is_file():
        saved, now = json.loads(fingerprint.read_text()), run_fingerprint(config)
        keys = list(now) if training else ["model_per_role"]  # evaluating with other prompts is an experiment
        for key in keys:
            if saved.get(key) != now[key]:
                raise CheckpointError(fingerprint, f"a different recipe: {key}={saved.get(key)!r} there, {now[key]!r} now")  # fmt: skip


def check_resume(config: DictConfig) -> Path | None:
    """The checkpoint this run will resume from, verified (None: a fresh start). Called before Ray starts."""
    folder = resume_folder(config)
    if folder is not None:
        verify_checkpoint(folder, config)
        print(f"verl-rema resume: {folder} verified", flush=True)
    return folder


__all__ = ["CheckpointError", "check_resume", "read_tracker", "resume_folder", "run_fingerprint", "verify_checkpoint", "write_fingerprint", "write_tracker"]  # fmt: skip
