"""The toy warm start: the embedded model SFT'd, through the project's SFT entry, until SFT has plateaued.

Why: RL from a checkpoint that sits on the steep part of its SFT curve shows nothing (more SFT would do as well).
Here the teacher itself is imperfect (``rema.sft.wrong_plan_share``: on one question form it usually plans the
wrong second operation, and the RA follows it), so SFT converges to the teacher's accuracy, below what the
final-answer reward can reach by moving the MTA to the plan it already samples some of the time. The recipe
(``hydra_configs/sft/recipe/sft_toy.yaml``, or ``sft_toy_cot`` for the single-agent baseline with the same teacher)
is run by ``python -m verl_rema.sft`` (veRL's SFT trainer), checkpoints are scored by :mod:`.evaluate` at 1/3, 2/3
and all of the steps, and the last one is kept with that curve in ``report.json``.

Built once per (seed, embedded model, recipe text, overrides) and cached like the embedded default
(``$VERL_REMA_CACHE/toy_warm_start/<kind>-seed<seed>-<key>``); concurrent first uses wait on a file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_rema.build_cache import build_once, cache_root
from verl_rema.embedded.cache import DEFAULT_SEED, EmbeddedPaths, embedded_paths

BUILD_VERSION = 1
RECIPES = {"rema": "sft_toy", "cot": "sft_toy_cot"}
TASK = "toy"  # the single-digit task (verl_rema/embedded/task.py TASKS): its facts are learned in ~700 SFT steps


def prompt_set(kind: str) -> str:
    """The prompt set the warm start is taught (and must be run) with: the short toy set, or the CoT baseline's."""
    from verl_rema.embedded.resolvers import TOY_PROMPTS

    return str(TOY_PROMPTS) if kind == "rema" else "cot"


CHECKPOINTS = 6  # evaluated every 1/6 of the steps: the plateau shows as a flat last third
EVAL_PROMPTS = 256  # the whole embedded validation set
SHIPPED = Path(__file__).resolve().parent / "assets"  # built warm starts shipped with the package (2.4 MB each)


@dataclass(frozen=True)
class WarmStartPaths:
    """A built warm start: the HF model to start RL from, its SFT curve, and the RL data it was made for."""

    root: Path
    embedded: EmbeddedPaths

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def train(self) -> Path:
        return self.embedded.train

    @property
    def val(self) -> Path:
        return self.embedded.val

    def read_report(self) -> dict[str, Any]:
        return json.loads(self.report.read_text())


def recipe_file(kind: str) -> Path:
    if kind not in RECIPES:
        raise ValueError(f"unknown warm-start kind {kind!r}; choose one of {sorted(RECIPES)}")
    import verl_rema_configs.sft as configs  # hydra_configs/sft/, installed under this name

    return Path(configs.__file__).resolve().parent / "recipe" / f"{RECIPES[kind]}.yaml"


def recipe_digest(kind: str) -> str:
    """A hash of the recipe's settings (its YAML as data: a comment edit keeps the key, and the shipped build)."""
    import yaml

    settings = yaml.safe_load(recipe_file(kind).read_text())
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def cache_key(kind: str, embedded: EmbeddedPaths, overrides: tuple[str, ...]) -> str:
    """A hash of what the warm start depends on: the embedded build, the recipe's settings, the overrides."""
    payload = json.dumps(
        {
            "v": BUILD_VERSION,
            "kind": kind,
            "embedded": embedded.root.name,
            "recipe": recipe_digest(kind),
            "overrides": list(overrides),
            "checkpoints": CHECKPOINTS,
            "eval_prompts": EVAL_PROMPTS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def sft_command(kind: str, model: Path, out: Path, steps: int, overrides: tuple[str, ...]) -> list[str]:
    """The SFT entry's command line: the recipe, the step count, a save at each evaluated checkpoint."""
    every = max(steps // CHECKPOINTS, 1)
    return [
        sys.executable, "-m", "verl_rema.sft", f"+recipe={RECIPES[kind]}", f"model.path={model}",
        f"trainer.default_local_dir={out}", f"trainer.total_training_steps={steps}", f"trainer.save_freq={every}",
        "trainer.logger=[console,file]", *overrides,
    ]  # fmt: skip


def recipe_steps(kind: str, overrides: tuple[str, ...]) -> int:
    """``trainer.total_training_steps`` of the recipe (an override wins)."""
    import yaml

    for item in reversed(overrides):
        if item.startswith("trainer.total_training_steps="):
            return int(item.split("=", 1)[1])
    return int(yaml.safe_load(recipe_file(kind).read_text())["trainer"]["total_training_steps"])


def evaluate_curve(sft_dir: Path, kind: str, val: Path) -> list[dict[str, Any]]:
    """Greedy accuracy of every saved ``global_step_N/huggingface`` on the validation prompts, by step."""
    from verl_rema.experiments.toy.evaluate import evaluate_checkpoint, load_items, rollout_config

    items = load_items(val, EVAL_PROMPTS)
    config = rollout_config(prompt_set(kind))
    curve = []
    for folder in sorted(sft_dir.glob("global_step_*/huggingface"), key=lambda p: int(p.parent.name.split("_")[-1])):
        result = evaluate_checkpoint(folder, items, config)
        curve.append({"step": int(folder.parent.name.split("_")[-1]), **result.as_dict()})
    return curve


def build(out: Path, kind: str, embedded: EmbeddedPaths, overrides: tuple[str, ...], log: Path) -> dict[str, Any]:
    """Run the SFT entry into ``out/sft``, score its checkpoints, keep the last model as ``out/model``."""
    steps = recipe_steps(kind, overrides)
    sft_dir = out / "sft"
    metrics = out / "sft_metrics.jsonl"
    env = {
        **os.environ,
        "VERL_REMA_CACHE": str(embedded.root.parent.parent),  # the SFT data are cached beside the embedded build
        "VERL_FILE_LOGGER_PATH": str(metrics),
        "HYDRA_FULL_ERROR": "1",
    }
    started = time.monotonic()
    with open(log, "w") as handle:
        command = [*sft_command(kind, embedded.model, sft_dir, steps, overrides), f"hydra.run.dir={out / 'hydra'}"]
        code = subprocess.call(command, cwd=out, env=env, stdout=handle, stderr=subprocess.STDOUT)
    sft_s = time.monotonic() - started
    if code != 0:
        raise RuntimeError(f"toy warm start: the SFT run failed (exit {code}); its log: {log}")
    curve = evaluate_curve(sft_dir, kind, embedded.val)
    last = sft_dir / f"global_step_{steps}" / "huggingface"
    if not curve or curve[-1]["step"] != steps or not last.exists():
        raise RuntimeError(f"toy warm start: no checkpoint at step {steps} in {sft_dir}; log: {log}")
    shutil.copytree(last, out / "model")
    plans = final_plan_probabilities(out / "model", embedded.val, prompt_set(kind)) if kind == "rema" else None
    losses = _train_losses(metrics)
    for point in curve:
        point["train_loss"] = losses.get(point["step"])
    report = {
        "kind": kind,
        "recipe": RECIPES[kind],
        "overrides": list(overrides),
        "steps": steps,
        "sft_seconds": round(sft_s, 1),
        "eval_seconds": round(time.monotonic() - started - sft_s, 1),
        "curve": curve,
        "accuracy": curve[-1]["accuracy"],
        "plan_probabilities": plans,
    }
    shutil.rmtree(sft_dir)  # optimizer states and intermediate models: megabytes nobody reads again
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def val_problems(val: Path, n: int | None = None) -> list[Any]:
    """The embedded validation prompts as :class:`~verl_rema.embedded.task.Problem` (no worked solution)."""
    import pandas as pd

    from verl_rema.embedded.task import Problem

    frame = pd.read_parquet(val).iloc[:n]
    return [
        Problem(str(extra["expression"]), int(reward["ground_truth"]), int(extra["form"]), "")
        for extra, reward in zip(frame["extra_info"], frame["reward_model"], strict=True)
    ]


def final_plan_probabilities(model_dir: Path, val: Path, prompts: str, n: int = 96) -> dict[str, dict[str, float]]:
    """How likely the warm start's MTA writes the right and the teacher's wrong plan, per form (the RL headroom)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from verl_rema.experiments.toy.evaluate import plan_probabilities, rollout_config

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    return plan_probabilities(model, tokenizer, val_problems(val, n), rollout_config(prompts))


def _train_losses(metrics: Path) -> dict[int, float]:
    """veRL's ``train/loss`` by step, averaged over the 10 steps up to each (one step's loss is noisy)."""
    from verl_rema.summary import read_metrics

    rows = [(row["step"], row["train/loss"]) for row in read_metrics(str(metrics)) if "train/loss" in row]
    return {step: sum(v for s, v in rows if step - 10 < s <= step) / min(10, step) for step, _ in rows}


def warm_start_paths(
    kind: str = "rema",
    seed: int = DEFAULT_SEED,
    root: Path | None = None,
    overrides: tuple[str, ...] = (),
    rebuild: bool = False,
) -> WarmStartPaths:
    """The toy warm start of ``kind`` (``rema``: two-role dialogues; ``cot``: single-message CoT, same teacher),
    building it on first use (10-22 min on 2 CPU cores) unless the package ships this very build (same key: same
    embedded model, recipe text and overrides; ``SHIPPED``), which is then copied. ``rebuild``: run the SFT even so
    (what reproduces a shipped build). ``overrides``: extra SFT config overrides, part of the key."""
    embedded = embedded_paths(seed=seed, root=root, task=TASK)
    name = f"{kind}-seed{seed}-{cache_key(kind, embedded, tuple(overrides))}"
    target = (root or cache_root()) / "toy_warm_start" / (f"{name}-rebuilt" if rebuild else name)

    def _build(staging: Path) -> None:
        if (SHIPPED / name).is_dir() and not rebuild:
            shutil.copytree(SHIPPED / name, staging, dirs_exist_ok=True)
            return
        log = target.parent / f"{target.name}.log"
        report = build(staging, kind, embedded, (*overrides, f"rema.sft.seed={seed}", f"trainer.seed={seed}"), log)
        print(f"verl-rema toy warm start: {target} accuracy {report['accuracy']:.3f}", flush=True)

    build_once(target, _build, {"kind": kind, "seed": seed})
    return WarmStartPaths(target, embedded)


__all__ = ["RECIPES", "WarmStartPaths", "cache_key", "sft_command", "warm_start_paths"]


def main(argv: list[str] | None = None) -> None:
    """``python -m verl_rema.experiments.toy.warm_start [--kind cot] [--seed N] [--root DIR] [SFT overrides...]``:
    build (or find) the warm start and print its path and report."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=sorted(RECIPES), default="rema")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--root", type=Path, default=None, help="cache root (default: $VERL_REMA_CACHE)")
    parser.add_argument("--rebuild", action="store_true", help="run the SFT even where the package ships the build")
    parser.add_argument("overrides", nargs="*", help="extra SFT overrides (part of the cache key)")
    args = parser.parse_args(argv)
    paths = warm_start_paths(args.kind, args.seed, args.root, tuple(args.overrides), rebuild=args.rebuild)
    print(paths.model)
    print(json.dumps(paths.read_report(), indent=1))


if __name__ == "__main__":
    main()
