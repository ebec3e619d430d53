"""``python -m verl_rema.evaluate +recipe=NAME [eval.KEY=VALUE ...] [veRL overrides ...]``

Evaluation is veRL's own validation pass: the config is composed exactly as for ``python -m verl_rema.main_ppo``
(recipe selects the dialogue: ``rema_multiturn``, ``rema_singleturn`` or the CoT baseline ``vrp_grpo``; CPU preset
chosen automatically), then run with ``trainer.val_only=true`` through veRL's ``run_ppo`` — same rollout engine,
agent loop and reward as in training. veRL dumps every generation; :mod:`.report` turns the dump into per-subset
``results.{md,json,csv,png}``. Keys of the ``eval`` block (``+eval.KEY`` or ``eval.KEY``):

    files        evaluation parquet(s) (default: the bundled 8-benchmark set, cleaned by ``verl_rema.data``)
    subsets      keep only these subsets, e.g. '[MATH500,aime24]'
    per_subset   keep the first K questions of each subset (a quick, balanced sample)
    max_samples  veRL's data.val_max_samples (a sample over the whole file)
    n            samples per question (default 1: greedy pass@1; n>1: avg@n at `temperature`)
    temperature  default 0 for n=1, 1.0 for n>1;  top_p: default 1.0
    batch_size   questions per validation batch (default 256; one progress line per batch)
    checkpoint   a veRL checkpoint folder (.../global_step_N) to evaluate instead of the base model
    out_dir      output folder (default eval/<name>_<time>);  name: run label (default trainer.experiment_name)
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from verl_rema.main_ppo import prepare_process, run
from verl_rema.protocol import TrainerMode

TRAINER_MODULE = "verl_rema.evaluate.trainer"
TRAINER_MODE = TrainerMode.EVAL.value  # == verl_rema.evaluate.trainer.TRAINER_MODE (importing it pulls in veRL)
SEPARATE_TRAINER_MODE = TrainerMode.SEPARATE_EVAL.value  # the same, with a model per role (``rema.models``)
DATA_FILE = "eval_data.parquet"


@dataclass
class EvalSettings:
    """The ``eval`` block, checked: an unknown key or a wrong value stops before anything starts."""

    files: list[str] | None = None
    subsets: list[str] | None = None
    per_subset: int | None = None
    max_samples: int | None = None
    n: int = 1
    temperature: float | None = None
    top_p: float = 1.0
    batch_size: int | None = 256
    checkpoint: str | None = None
    out_dir: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.files, str):
            self.files = [self.files]
        if isinstance(self.subsets, str):
            self.subsets = [self.subsets]
        for key in ("n", "per_subset", "max_samples", "batch_size"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"eval.{key} must be a positive integer, got {value!r}")
        if self.temperature is None:
            self.temperature = 0.0 if self.n == 1 else 1.0
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise ValueError(f"eval.temperature must be a number >= 0, got {self.temperature!r}")
        if self.n > 1 and self.temperature == 0:
            raise ValueError(
                f"eval.n={self.n} with eval.temperature=0 would repeat one greedy answer; set a temperature"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"eval.top_p must be in (0, 1], got {self.top_p!r}")
        if self.checkpoint is not None and not re.search(r"global_step_\d+", self.checkpoint):
            raise ValueError(
                f"eval.checkpoint must be a veRL checkpoint folder .../global_step_N, got {self.checkpoint!r}"
            )

    @property
    def checkpoint_step(self) -> int:
        """veRL names the dump after the global step: 0, or the checkpoint's step."""
        found = re.findall(r"global_step_(\d+)", self.checkpoint or "")
        return int(found[-1]) if found else 0


def settings_from(config: DictConfig) -> EvalSettings:
    block = config.get("eval")
    values: dict[str, Any] = {} if block is None else OmegaConf.to_container(block, resolve=True)  # type: ignore[assignment]
    if not isinstance(values, dict):
        raise ValueError(f"eval must be a mapping of settings, got {values!r}")
    known = {f.name for f in dataclasses.fields(EvalSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown eval key(s) {unknown}; known: {sorted(known)}")
    return EvalSettings(**values)


def explicit_eval_overrides(argv: list[str]) -> list[str]:
    """``eval.n=4`` -> ``+eval.n=4``: the entry config has no ``eval`` block, and Hydra wants ``+`` for new keys."""
    return [f"+{arg}" if arg.startswith("eval.") else arg for arg in argv]


def _name_trainer_for_workers() -> None:
    """The TaskRunner (a Ray actor) must import the ``rema_eval`` trainer mode: ask veRL to load it there."""
    modules = [m for m in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m]
    if TRAINER_MODULE not in modules:
        os.environ["VERL_USE_EXTERNAL_MODULES"] = ",".join([*modules, TRAINER_MODULE])


def _user_set_val_files() -> bool:
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:  # not under Hydra (tests)
        return False
    return any(o.lstrip("+~").startswith("data.val_files=") for o in overrides)


def apply(config: DictConfig, settings: EvalSettings, data_file: str | None, out_dir: Path) -> None:
    """Turn the composed training config into a validation-only run of the same rollout and reward."""
    with open_dict(config):
        if data_file is not None:
            config.data.val_files = data_file
        if settings.max_samples is not None:
            config.data.val_max_samples = settings.max_samples
        if settings.batch_size is not None:
            config.data.val_batch_size = settings.batch_size
        trainer = config.trainer
        trainer.val_only = True
        trainer.val_before_train = True
        trainer.validation_data_dir = str(out_dir / "generations")
        separate = OmegaConf.select(config, "rema.models", default=None) is not None
        trainer.v1.trainer_mode = SEPARATE_TRAINER_MODE if separate else TRAINER_MODE
        if settings.checkpoint is not None:
            trainer.resume_mode = "resume_path"
            trainer.resume_from_path = os.path.abspath(settings.checkpoint)
        else:  # never pick up a training run's latest checkpoint silently
            trainer.resume_mode = "disable"
        val_kwargs = config.actor_rollout_ref.rollout.val_kwargs
        val_kwargs.n = settings.n
        val_kwargs.temperature = float(settings.temperature)
        val_kwargs.do_sample = settings.temperature > 0
        val_kwargs.top_p = settings.top_p


def run_description(config: DictConfig, settings: EvalSettings, data_file: str) -> dict[str, Any]:
    """What the report prints and the comparison labels runs with."""
    rollout = config.get("rema", {}).get("rollout", {})
    return {
        "name": settings.name,
        "recipe": OmegaConf.select(config, "trainer.experiment_name"),
        "prompt_set": rollout.get("prompt_set"),
        "max_turns": rollout.get("max_turns"),
        "model": OmegaConf.select(config, "actor_rollout_ref.model.path"),
        "checkpoint": settings.checkpoint,
        "n": settings.n,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "data": data_file,
    }


@hydra.main(config_path="pkg://verl_rema_configs", config_name="verl_rema", version_base=None)
def main(config: DictConfig) -> None:
    from verl_rema.evaluate.data import prepare_eval_data
    from verl_rema.evaluate.report import markdown, report_dump

    settings = settings_from(config)
    settings.name = settings.name or str(OmegaConf.select(config, "trainer.experiment_name") or "evaluation")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(hydra.utils.to_absolute_path(settings.out_dir or f"eval/{settings.name}_{stamp}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.files is None and _user_set_val_files():
        val_files = config.data.val_files
        settings.files = list(val_files) if isinstance(val_files, ListConfig | list) else [str(val_files)]
    settings.files = [hydra.utils.to_absolute_path(f) for f in settings.files] if settings.files else None
    data_file, counts = prepare_eval_data(settings.files, out_dir / DATA_FILE, settings.subsets, settings.per_subset)
    apply(config, settings, str(data_file), out_dir)
    os.environ.setdefault("VERL_FILE_LOGGER_PATH", str(out_dir / "metrics.jsonl"))
    import verl_rema.evaluate.trainer  # noqa: F401  (registers rema_eval in the driver too)

    metrics_path = run(config)
    results, paths = report_dump(
        out_dir / "generations" / f"{settings.checkpoint_step}.jsonl",
        out_dir,
        run_description(config, settings, str(data_file)),
        samples_per_question=settings.n,
        dataset_questions=counts if settings.max_samples is None else None,
        verl_metrics_file=metrics_path,
    )
    print(markdown(results), flush=True)
    from verl_rema.evaluate.judge import write_judge_report  # judge.{md,json,png}: only for judge-reward runs

    judge_paths = write_judge_report(
        out_dir / "generations" / f"{settings.checkpoint_step}.jsonl", out_dir, {"name": settings.name}
    )
    if judge_paths:
        print(judge_paths["judge.md"].read_text(), flush=True)
    paths = {**paths, **judge_paths}
    print("\n".join(f"verl-rema evaluate: wrote {path}" for path in paths.values()), flush=True)


def cli() -> None:
    sys.argv = [sys.argv[0], *prepare_process(explicit_eval_overrides(sys.argv[1:]))]
    _name_trainer_for_workers()
    main()


if __name__ == "__main__":
    cli()
