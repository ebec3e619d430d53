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


def test_summary_pools_seeds_and_reports_the_change(tmp_path):
    curves = {"a": {0: [(0.0, 0.6), (15.0, 0.8)], 1: [(0.0, 0.6), (15.0, 0.7)]}, "b": {0: [(0.0, 0.6), (15.0, 0.6)]}}
    table = {row["arm"]: row for row in summarise(curves)}
    assert table["a"]["final"] == pytest.approx(0.75) and table["a"]["change"] == pytest.approx(0.15)
    assert (table["a"]["final_min"], table["a"]["final_max"], table["a"]["seeds"]) == (0.7, 0.8, 2)
    assert table["a"]["ci_low"] < 0.75 < table["a"]["ci_high"]
    assert table["a"]["ci_high"] - table["a"]["ci_low"] < table["b"]["ci_high"] - table["b"]["ci_low"]  # 512 vs 256
    assert "| a | 2 | 0.600 | 0.750 | 0.700-0.800 |" in markdown(list(table.values()))
    assert plot(curves, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
