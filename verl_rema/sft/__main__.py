"""``python -m verl_rema.sft +recipe=NAME [veRL SFT overrides...]``: the two-role SFT warm-up.

veRL's own SFT trainer (``verl.trainer.sft_trainer.run_sft``: ``SFTTrainer``, ``MultiTurnSFTDataset``, the FSDP
engine), with the config composed from veRL's ``sft_trainer_engine`` defaults plus ``hydra_configs/sft/``, as
``main_ppo`` composes the RL config: the same automatic CPU preset (no CUDA, or ``trainer.device=cpu``), every
veRL key overridable, ``--cfg job`` prints the composition.

veRL's trainer is an SPMD program (one process per device, started by torchrun). With one process (a CPU run, one
GPU) it runs here; on a node with ``trainer.n_gpus_per_node > 1`` this command starts torchrun itself
(``--standalone``, one process per GPU) after building the data once. Several nodes: start torchrun yourself on
each, ``torchrun --nnodes=N --nproc_per_node=G ... -m verl_rema.sft +recipe=NAME trainer.nnodes=N ...``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from verl_rema.device import select_device
from verl_rema.main_ppo import _name_plugin_explicitly


def _metrics_file(config: DictConfig) -> str:
    """A fresh JSONL metrics file per run under the checkpoint dir (veRL's file logger truncates its file)."""
    if os.environ.get("VERL_FILE_LOGGER_PATH"):
        return os.environ["VERL_FILE_LOGGER_PATH"]
    directory = Path(config.trainer.default_local_dir).resolve() / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"run{len(list(directory.glob('*.jsonl'))):03d}.jsonl"
    os.environ["VERL_FILE_LOGGER_PATH"] = str(path)
    return str(path)


@contextmanager
def _one_process_group():
    """torchrun's environment for a single process, unless torchrun set it already."""
    if "WORLD_SIZE" in os.environ:
        yield
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)


def prepare(config: DictConfig) -> str:
    """Check the config, build the data and tokenizer it names (once, cached), return the metrics file."""
    from verl.utils.device import auto_set_device

    import verl_rema.sft.resolvers  # noqa: F401  (${rema_sft:...}, ${rema_embedded:...})
    from verl_rema.sft.checks import check_sft_config, check_validation_data

    check_sft_config(config)
    OmegaConf.resolve(config)
    check_validation_data(config)
    auto_set_device(config)
    return _metrics_file(config)


def run(config: DictConfig) -> Path | None:
    """Train with veRL's ``run_sft`` in this process; return the last HF checkpoint folder (rank 0)."""
    from verl.trainer.sft_trainer import run_sft

    from verl_rema.sft.end_of_turn import register_in_checkpoints

    metrics = prepare(config)
    with _one_process_group():
        run_sft(config)
        if int(os.environ["RANK"]) != 0:
            return None
    folders = register_in_checkpoints(config.trainer.default_local_dir)
    print(loss_summary(metrics), flush=True)
    if not folders:
        print("verl-rema SFT: no checkpoint was saved", flush=True)
        return None
    print(f"verl-rema SFT: HF checkpoint {folders[-1]} (actor_rollout_ref.model.path for main_ppo/evaluate)")
    return folders[-1]


def loss_summary(metrics: str) -> str:
    """One line from veRL's JSONL log: the train loss at the first and last step, the validation losses."""
    from verl_rema.summary import read_metrics

    rows = read_metrics(metrics)
    train = [(row["step"], row["train/loss"]) for row in rows if "train/loss" in row]
    val = [(row["step"], row["val/loss"]) for row in rows if "val/loss" in row]
    if not train:
        return f"verl-rema SFT: no training step was logged (metrics: {metrics})"
    line = f"verl-rema SFT: {len(train)} steps, train/loss {train[0][1]:.4g} (step {train[0][0]}) -> {train[-1][1]:.4g}"
    line += "".join(f", val/loss {loss:.4g} (step {step})" for step, loss in val)
    return f"{line}; metrics: {metrics}"


def launch(config: DictConfig, argv: list[str]) -> int:
    """One process per device through torchrun, after building what the config names here, once."""
    from verl_rema.sft.checks import SFTConfigError, world_size

    processes = world_size(config)
    if int(config.trainer.nnodes) > 1:
        raise SFTConfigError(
            f"trainer.nnodes={config.trainer.nnodes}: start torchrun on every node yourself "
            "(torchrun --nnodes=N --nproc_per_node=G ... -m verl_rema.sft ...)"
        )
    prepare(config)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return subprocess.call([*command, "-m", "verl_rema.sft", *argv])


@hydra.main(config_path="pkg://verl_rema_configs.sft", config_name="verl_rema_sft", version_base=None)
def main(config: DictConfig) -> None:
    from verl_rema.sft.checks import SFTConfigError, world_size

    processes = world_size(config)
    started = os.environ.get("WORLD_SIZE")
    if started is None and processes > 1:
        sys.exit(launch(config, sys.argv[1:]))
    if started is not None and int(started) != processes:
        raise SFTConfigError(
            f"torchrun started {started} processes but trainer.nnodes * trainer.n_gpus_per_node = {processes}"
        )
    run(config)


def cli() -> None:
    sys.argv = [sys.argv[0], *select_device(sys.argv[1:])]
    _name_plugin_explicitly()
    main()


if __name__ == "__main__":
    cli()
