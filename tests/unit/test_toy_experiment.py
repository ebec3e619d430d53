"""The toy experiment's driver: commands as a user would type them, the summary table and its plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from verl_rema.experiments.toy.__main__ import ARMS, markdown, plot, rl_command, summarise


def test_each_arm_is_a_recipe_with_the_toy_start_and_the_seed():
    command = rl_command(ARMS["rema_token"], seed=1, steps=15, test_freq=5, out=Path("/tmp/x"))
    assert command[1:3] == ["-m", "verl_rema.main_ppo"]
    assert {"+recipe=rema_multiturn", "+toy=rema", "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"} <= set(
        command
    )
    assert {"data.seed=1", "actor_rollout_ref.rollout.seed=43", "trainer.total_training_steps=15"} <= set(command)
    assert "+toy=cot" in ARMS["cot_grpo"].overrides and "+recipe=vrp_grpo" in ARMS["cot_grpo"].overrides
    assert "trainer.save_freq=-1" in command and not any("save_contents" in c for c in command)


def test_save_keeps_the_final_step_with_hf_weights():
    """What `--save` asks of veRL: a checkpoint at the last step only, with the HF weights the evaluator loads; the
    keys must exist in veRL's composed config (a typo would be refused at start-up, after minutes)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    command = rl_command(ARMS["rema_turn"], seed=0, steps=10, test_freq=2, out=Path("/tmp/x"), save=True)
    overrides = command[3:]
    assert "trainer.save_freq=10" in overrides and "trainer.save_freq=-1" not in overrides
    with initialize_config_module(config_module="verl_rema_configs", version_base=None):
        config = OmegaConf.to_container(compose(config_name="verl_rema", overrides=overrides), resolve=False)
    assert config["trainer"]["save_freq"] == 10
    assert "hf_model" in config["actor_rollout_ref"]["actor"]["checkpoint"]["save_contents"]


def test_summary_pools_seeds_and_reports_the_change(tmp_path):
    curves = {"a": {0: [(0.0, 0.6), (15.0, 0.8)], 1: [(0.0, 0.6), (15.0, 0.7)]}, "b": {0: [(0.0, 0.6), (15.0, 0.6)]}}
    table = {row["arm"]: row for row in summarise(curves)}
    assert table["a"]["final"] == pytest.approx(0.75) and table["a"]["change"] == pytest.approx(0.15)
    assert (table["a"]["final_min"], table["a"]["final_max"], table["a"]["seeds"]) == (0.7, 0.8, 2)
    assert table["a"]["ci_low"] < 0.75 < table["a"]["ci_high"]
    assert table["a"]["ci_high"] - table["a"]["ci_low"] < table["b"]["ci_high"] - table["b"]["ci_low"]  # 512 vs 256
    assert "| a | 2 | 0.600 | 0.750 | 0.700-0.800 |" in markdown(list(table.values()))
    assert plot(curves, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
