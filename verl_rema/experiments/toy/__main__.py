"""``python -m verl_rema.experiments.toy``: the paper's comparisons in miniature, from one plateaued warm start.

Arms (each a real run of the project's entry points, as a user would start it):

- ``cot_grpo``: single-agent GRPO (the paper's VRP_RL) from the CoT warm start (``+recipe=vrp_grpo +toy=cot``);
- ``rema_turn``: ReMA multi-turn with the turn-level ratio (``+recipe=rema_multiturn +toy=rema``);
- ``rema_token``: the same with the token-level ratio (``actor_rollout_ref.actor.policy_loss.loss_mode=vanilla``);
- ``rema_separate``: two models (one per role) trained in alternation (``+recipe=rema_multiturn_separate``);
- ``sft_more``: the equal-sample control, continued SFT of the ReMA warm start (``python -m verl_rema.sft``) on as
  many rows as the RL arms sample (steps x batch x n x 2 roles), annealed (cosine from the recipe's lr to 0: at the
  constant lr the a+b-c plan probability swings 0.05-0.46 between 10-step windows), scored by the greedy HF
  evaluator.

Every RL arm reports veRL's greedy validation accuracy on the 256 toy validation prompts every ``--test-freq`` steps;
the table gives the start, the final accuracy (mean over seeds, min-max, and a Wilson 95% interval on the pooled
final validations) and the change, the PNG the curves. Seeds change the data order and the sampling seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

VAL_KEY = "val-core/verl_rema/toy_arith/acc/mean@1"
VAL_PROMPTS = 256
SFT_BATCH = 64  # rows per step of hydra_configs/sft/recipe/sft_toy.yaml
RL_ROWS_PER_STEP = 32 * 8 * 2  # hydra_configs/toy/rema.yaml: 32 prompts x n=8 episodes x 2 roles


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...]


ARMS = {
    "cot_grpo": Arm("cot_grpo", ("+recipe=vrp_grpo", "+toy=cot")),
    "rema_turn": Arm("rema_turn", ("+recipe=rema_multiturn", "+toy=rema")),
    "rema_token": Arm(
        "rema_token", ("+recipe=rema_multiturn", "+toy=rema", "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla")
    ),
    "rema_separate": Arm(
        "rema_separate", ("+recipe=rema_multiturn_separate", "+toy=rema", "rema.schedule.switch_freq=5")
    ),
}
CONTROL = "sft_more"


def rl_command(arm: Arm, seed: int, steps: int, test_freq: int, out: Path, save: bool = False) -> list[str]:
    """``save``: keep the final step's checkpoint with its HF weights (``global_step_<steps>/actor/huggingface``,
    for ``python -m verl_rema.experiments.toy.evaluate CHECKPOINT --toy rema|cot``, per form)."""
    saving = (
        [
            f"trainer.save_freq={steps}",
            "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]",
        ]
        if save
        else ["trainer.save_freq=-1"]
    )
    return [
        sys.executable, "-m", "verl_rema.main_ppo", *arm.overrides,
        f"trainer.total_training_steps={steps}", f"trainer.test_freq={test_freq}", *saving,
        f"data.seed={seed}", f"actor_rollout_ref.rollout.seed={42 + seed}", f"trainer.default_local_dir={out}",
        f"trainer.experiment_name=toy_{arm.name}_seed{seed}", "trainer.logger=[console,file]",
    ]  # fmt: skip


def run_rl(arm: Arm, seed: int, steps: int, test_freq: int, out: Path, save: bool = False) -> list[tuple[float, float]]:
    """One RL run; its greedy validation curve ``[(step, accuracy)]`` (step 0: the warm start)."""
    from verl_rema.summary import read_metrics

    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.jsonl"
    env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(metrics), "HYDRA_FULL_ERROR": "1"}
    with open(out / "log.txt", "w") as log:
        code = subprocess.call(
            rl_command(arm, seed, steps, test_freq, out, save), cwd=out, env=env, stdout=log, stderr=log
        )
    if code != 0:
        raise RuntimeError(f"toy experiment: {arm.name} seed {seed} failed (exit {code}); log: {out / 'log.txt'}")
    return [(float(row["step"]), float(row[VAL_KEY])) for row in read_metrics(metrics) if VAL_KEY in row]


def run_sft_control(seed: int, steps: int, test_freq: int, out: Path) -> list[tuple[float, float]]:
    """Continued SFT of the ReMA warm start on as many rows as ``steps`` RL steps sample; greedy accuracy every
    ``test_freq`` RL steps' worth of rows, indexed by that RL step so both curves share an axis."""
    from verl_rema.experiments.toy.evaluate import evaluate_checkpoint, load_items, rollout_config
    from verl_rema.experiments.toy.warm_start import prompt_set, warm_start_paths

    start = warm_start_paths("rema")
    per_rl_step = RL_ROWS_PER_STEP // SFT_BATCH  # SFT steps of as many rows as one RL step
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "verl_rema.sft", "+recipe=sft_toy", f"model.path={start.model}",
        f"trainer.total_training_steps={steps * per_rl_step}", f"trainer.save_freq={test_freq * per_rl_step}",
        "optim.lr_scheduler_type=cosine", "optim.lr_warmup_steps=-1",
        f"trainer.default_local_dir={out}", f"rema.sft.seed={seed}", f"trainer.seed={seed}", "trainer.logger=[console]",
        f"hydra.run.dir={out / 'hydra'}",
    ]  # fmt: skip
    with open(out / "log.txt", "w") as log:
        code = subprocess.call(command, cwd=out, stdout=log, stderr=log)
    if code != 0:
        raise RuntimeError(f"toy experiment: {CONTROL} seed {seed} failed (exit {code}); log: {out / 'log.txt'}")
    items, config = load_items(start.val, VAL_PROMPTS), rollout_config(prompt_set("rema"))
    curve = [(0.0, float(start.read_report()["accuracy"]))]
    for folder in sorted(out.glob("global_step_*/huggingface"), key=lambda p: int(p.parent.name.split("_")[-1])):
        sft_step = int(folder.parent.name.split("_")[-1])
        curve.append((sft_step / per_rl_step, evaluate_checkpoint(folder, items, config).accuracy))
    return curve


def summarise(curves: dict[str, dict[int, list[tuple[float, float]]]]) -> list[dict[str, Any]]:
    """One row per arm: start, final (mean, min, max over seeds), the pooled Wilson interval, the change."""
    from verl_rema.evaluate.report import wilson

    table = []
    for arm, by_seed in curves.items():
        finals = [curve[-1][1] for curve in by_seed.values() if curve]
        starts = [curve[0][1] for curve in by_seed.values() if curve]
        if not finals:
            continue
        low, high = wilson(mean(finals), VAL_PROMPTS * len(finals))
        table.append(
            {
                "arm": arm, "seeds": len(finals), "start": mean(starts), "final": mean(finals),
                "final_min": min(finals), "final_max": max(finals), "ci_low": low, "ci_high": high,
                "change": mean(finals) - mean(starts),
            }
        )  # fmt: skip
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| arm | seeds | start | final (mean) | final min-max | 95% CI (pooled) | change |", "|---" * 7 + "|"]
    for r in table:
        lines.append(
            f"| {r['arm']} | {r['seeds']} | {r['start']:.3f} | {r['final']:.3f} | {r['final_min']:.3f}-"
            f"{r['final_max']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['change']:+.3f} |"
        )
    return "\n".join(lines)


def plot(curves: dict[str, dict[int, list[tuple[float, float]]]], out: Path) -> Path:
    from verl_rema.summary import line_chart

    lines = [
        ([x for x, _ in curve], [a for _, a in curve], "o-", arm if seed == min(by_seed) else None, f"C{index}")
        for index, (arm, by_seed) in enumerate(curves.items())
        for seed, curve in by_seed.items()
    ]
    xlabel = "RL step (the SFT control: the step of as many samples)"
    return line_chart(lines, xlabel, "greedy validation accuracy (256 prompts)", out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, CONTROL], choices=[*ARMS, CONTROL])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--test-freq", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("toy_experiment"))
    parser.add_argument(
        "--save", action="store_true", help="keep each RL run's final HF checkpoint (OUT/ARM/seedN/global_step_S/actor)"
    )
    args = parser.parse_args(argv)
    results = args.out / "curves.json"
    curves: dict[str, dict[int, list[tuple[float, float]]]] = {}
    if results.exists():  # a rerun skips the (arm, seed) pairs already measured
        curves = {
            a: {int(s): [tuple(p) for p in c] for s, c in by.items()}
            for a, by in json.loads(results.read_text()).items()
        }
    for arm in args.arms:
        for seed in args.seeds:
            if curves.get(arm, {}).get(seed):
                continue
            out = args.out / arm / f"seed{seed}"
            if arm == CONTROL:
                curve = run_sft_control(seed, args.steps, args.test_freq, out)
            else:
                curve = run_rl(ARMS[arm], seed, args.steps, args.test_freq, out, args.save)
            curves.setdefault(arm, {})[seed] = curve
            args.out.mkdir(parents=True, exist_ok=True)
            results.write_text(json.dumps(curves, indent=1))
            print(f"toy experiment: {arm} seed {seed}: {curve}", flush=True)
    table = summarise(curves)
    (args.out / "results.md").write_text(markdown(table) + "\n")
    print(markdown(table))
    print(f"curves: {plot(curves, args.out / 'curves.png')}")


if __name__ == "__main__":
    main()
