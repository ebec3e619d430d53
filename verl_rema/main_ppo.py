"""``python -m verl_rema.main_ppo +recipe=NAME [veRL overrides...]``

veRL's own PPO entry point (same Ray TaskRunner, same trainer) with the config composed
from veRL's ``ppo_trainer`` defaults plus ``hydra_configs/`` (recipes, presets and the
embedded default). Every veRL key stays overridable; ``--cfg job`` prints the composition.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from verl_rema.device import select_device

REGISTER_MODULE = "verl_rema.register"


def _name_plugin_explicitly() -> None:
    """Also load the plug-in through ``VERL_USE_EXTERNAL_MODULES``: veRL swallows entry-point
    import errors, but not these, so a broken registration stops every process loudly."""
    modules = [m for m in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m]
    if REGISTER_MODULE not in modules:
        os.environ["VERL_USE_EXTERNAL_MODULES"] = ",".join([*modules, REGISTER_MODULE])


def _metrics_file(config: DictConfig) -> str:
    """A fresh JSONL metrics file per run under the checkpoint dir, so a resumed run never
    overwrites the metrics of the run it resumes (veRL's file logger truncates)."""
    if os.environ.get("VERL_FILE_LOGGER_PATH"):
        return os.environ["VERL_FILE_LOGGER_PATH"]
    directory = os.path.join(os.path.abspath(config.trainer.default_local_dir), "metrics")
    os.makedirs(directory, exist_ok=True)
    run_index = len([f for f in os.listdir(directory) if f.endswith(".jsonl")])
    path = os.path.join(directory, f"run{run_index:03d}.jsonl")
    os.environ["VERL_FILE_LOGGER_PATH"] = path
    return path


def run(config: DictConfig) -> str:
    """Resolve, validate and run a composed config through veRL's ``run_ppo``; return the metrics
    file. Shared by this entry point and ``python -m verl_rema.evaluate`` (a validation-only run)."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    import verl_rema.register  # noqa: F401  (resolvers, agent loops, losses for the driver)
    from verl_rema.checks import check_config, rollout_settings
    from verl_rema.data.startup import check_data
    from verl_rema.resume_check import check_resume

    check_config(config)  # verl-rema's own settings, before anything is built
    # Build the embedded model/data (if used) once, here, before any worker reads the paths.
    OmegaConf.resolve(config)
    check_data(config, rollout_settings(config))  # malformed data rows, named, before Ray (rema.on_bad_row)
    check_resume(config)  # the checkpoint to resume from: complete, intact, this model's and recipe's
    metrics_path = _metrics_file(config)
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=TaskRunnerV1)
    return metrics_path


@hydra.main(config_path="pkg://verl_rema_configs", config_name="verl_rema", version_base=None)
def main(config: DictConfig) -> None:
    from verl_rema.summary import print_summary

    print_summary(run(config))


def prepare_process(argv: list[str]) -> list[str]:
    """Device choice and plug-in loading for this process and its Ray workers; the overrides to compose."""
    overrides = select_device(argv)
    _name_plugin_explicitly()
    from verl_rema.knob_checks import check_override_keys  # after the device choice: it imports veRL

    try:
        check_override_keys(overrides)  # a typo'd rema.* key, named with the block's fields, before Hydra composes
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return overrides


def cli() -> None:
    sys.argv = [sys.argv[0], *prepare_process(sys.argv[1:])]
    main()


if __name__ == "__main__":
    cli()
