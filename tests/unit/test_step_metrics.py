"""Per-episode training metrics and each role's share of the work (verl_rema/trainer/step_metrics.py)."""

from __future__ import annotations

import pytest
import torch

from verl_rema.trainer.step_metrics import episode_outcomes, role_shares


def test_each_episode_counts_once_by_its_scored_last_row():
    keys = ["u_0_0", "u_0_1", "u_1_0", "u_1_1", "v_0_0"]  # two 2-row episodes of u, a 1-row episode of v
    scores = [1.0, 1.0, 0.0, 0.0, 1.0]
    extra = [{"reward_extra_info": {"acc": a}} for a in (1.0, 1.0, 1.0, 1.0, 1.0)]  # u_1 correct but masked
    out = episode_outcomes(keys, scores, extra)
    assert out["training/rema/episodes"] == 3
    assert out["training/rema/episode/reward"] == pytest.approx(2 / 3)  # not 3/5, the row average
    assert out["training/rema/episode/acc"] == 1.0
    assert "training/rema/episode/acc" not in episode_outcomes(keys, scores, [{}] * 5)


def test_role_shares_of_tokens_and_turns():
    masks = [torch.tensor([0, 1, 1, 0, 1]), torch.tensor([1, 1, 1, 1, 0]), torch.tensor([0, 0, 0])]
    out = role_shares(["meta", "reasoning", "reasoning"], masks)
    assert out["training/rema/meta/action_tokens"] == 3 and out["training/rema/reasoning/action_tokens"] == 4
    assert out["training/rema/meta/action_token_share"] == pytest.approx(3 / 7)
    assert out["training/rema/meta/turn_share"] == pytest.approx(2 / 3)  # two runs of ones vs one
    assert out["training/rema/reasoning/rows"] == 2
