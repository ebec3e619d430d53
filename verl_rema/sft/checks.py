"""What an SFT config must satisfy before anything is built or started, checked without touching the model.

veRL's ``SFTTrainer`` turns the ``engine``, ``optim``, ``checkpoint`` and ``profiler`` blocks into its dataclasses
(whose ``__post_init__`` validate them) and checks the profiler interval; it only reads the model block by loading
the model. :func:`check_sft_config` runs those same conversions and veRL's own interval check, then what veRL leaves
to fail later (or silently): batch sizes against the number of processes, validation without validation data, the
HF checkpoint this entry point promises, the ``rema.sft`` block. So a GPU recipe can be validated on a laptop.
"""

from __future__ import annotations

import types

from omegaconf import DictConfig, OmegaConf

from verl_rema.sft.config import CONFIG_PATH, ReMASFTDataConfig


class SFTConfigError(ValueError):
    """A config key with a value the SFT run cannot use; the message names the key."""


def world_size(config: DictConfig) -> int:
    """Processes the run needs: ``trainer.nnodes * trainer.n_gpus_per_node`` (one per device)."""
    return int(config.trainer.nnodes) * int(config.trainer.n_gpus_per_node)


def check_sft_config(config: DictConfig) -> None:
    """Raise :class:`SFTConfigError` (or veRL's own error) naming the first unusable key."""
    from verl.trainer.sft_trainer import SFTTrainer
    from verl.utils.config import omega_conf_to_dataclass

    for block in ("engine", "optim", "checkpoint", "profiler"):
        try:
            omega_conf_to_dataclass(config[block])  # what SFTTrainer._build_config does
        except Exception as error:  # veRL's dataclasses raise bare asserts, wrapped by Hydra: name the block
            cause = error.__cause__ or error
            raise SFTConfigError(f"{block}: veRL's {block} config rejects these values: {cause!r}\n{error}") from error
    SFTTrainer._validate_profiler_interval(types.SimpleNamespace(profiler_interval=config.trainer.profile_interval))
    ReMASFTDataConfig.from_config(OmegaConf.select(config, CONFIG_PATH))

    world = world_size(config)
    if world < 1:
        raise SFTConfigError(f"trainer.nnodes * trainer.n_gpus_per_node must be >= 1, got {world}")
    data = config.data
    batch = int(data.train_batch_size)
    if batch < world or batch % world:
        raise SFTConfigError(
            f"data.train_batch_size={batch} must be a multiple of the {world} processes (trainer.nnodes * "
            "trainer.n_gpus_per_node): veRL gives each data-parallel rank train_batch_size // processes"
        )
    if not data.use_dynamic_bsz and (batch // world) % int(data.micro_batch_size_per_gpu):
        raise SFTConfigError(
            f"data.micro_batch_size_per_gpu={data.micro_batch_size_per_gpu} must divide the per-process batch "
            f"{batch // world} (or set data.use_dynamic_bsz=true)"
        )
    if "hf_model" not in list(config.checkpoint.save_contents):
        raise SFTConfigError(
            "checkpoint.save_contents must include hf_model: the SFT result is the HF checkpoint "
            "global_step_N/huggingface that main_ppo and evaluate load as actor_rollout_ref.model.path"
        )
    for key in ("save_freq", "test_freq"):
        value = config.trainer[key]
        if value != "after_each_epoch" and not isinstance(value, int):
            raise SFTConfigError(f"trainer.{key} must be an integer or after_each_epoch, got {value!r}")


def check_validation_data(config: DictConfig) -> None:
    """After the data are resolved: veRL validates every ``test_freq`` steps and needs data for it."""
    test_freq = config.trainer.test_freq
    if (test_freq == "after_each_epoch" or int(test_freq) > 0) and not config.data.val_files:
        raise SFTConfigError(
            f"trainer.test_freq={test_freq} needs validation data: set {CONFIG_PATH}.val_dialogues > 0 or "
            "data.val_files, or trainer.test_freq=-1"
        )


__all__ = ["SFTConfigError", "check_sft_config", "check_validation_data", "world_size"]
