"""verl_rema/rewards/episode.py: what both rewards (math, judge) read of the episode behind a scored row."""

from __future__ import annotations

import numpy as np
import pytest

from verl_rema.protocol import FINISH_REASON_FIELD, RA_ANSWERS_FIELD, ROLE_FIELD, FinishReason, Role
from verl_rema.rewards import judge_reward, math_reward
from verl_rema.rewards.episode import finish_reason_of, is_masked, ra_answers_of, scored_role


@pytest.mark.parametrize(
    ("info", "role"),
    [
        (None, Role.REASONING),
        ({}, Role.REASONING),
        ({ROLE_FIELD: "meta"}, Role.META),
        ({ROLE_FIELD: Role.META}, Role.META),
        ({ROLE_FIELD: np.str_("reasoning")}, Role.REASONING),
    ],
)
def test_scored_role(info, role):
    assert scored_role(info) is role


def test_an_unknown_role_is_an_error_not_a_reasoning_row():
    with pytest.raises(ValueError, match="judge"):
        scored_role({ROLE_FIELD: "judge"})


@pytest.mark.parametrize(
    ("reason", "mask", "masked"),
    [
        (FinishReason.NORMAL.value, True, False),
        ("n/a", True, False),  # a sample without a ReMA episode
        (FinishReason.MAX_TURNS.value, True, True),
        (FinishReason.MAX_TURNS.value, False, False),
    ],
)
def test_is_masked(reason, mask, masked):
    assert is_masked(reason, mask) is masked
    assert finish_reason_of({FINISH_REASON_FIELD: FinishReason(reason)} if reason != "n/a" else None) == reason


def test_ra_answers_of():
    assert ra_answers_of({}) is None
    assert ra_answers_of({RA_ANSWERS_FIELD: ["1", 2]}) == ["1", "2"]
    assert ra_answers_of({RA_ANSWERS_FIELD: np.array(["a", "b"], dtype=object)}) == ["a", "b"]
    assert ra_answers_of({RA_ANSWERS_FIELD: []}) == []
    with pytest.raises(ValueError, match=RA_ANSWERS_FIELD):
        ra_answers_of({RA_ANSWERS_FIELD: "42"})


@pytest.mark.parametrize("module", [math_reward, judge_reward], ids=["math", "judge"])
def test_both_rewards_refuse_a_malformed_ra_answers_field(module):
    """An MTA row's RA answers that are not a list is a rollout bug: both rewards say so, neither scores a guess."""
    info = {ROLE_FIELD: "meta", RA_ANSWERS_FIELD: "\\boxed{2}", FINISH_REASON_FIELD: "normal"}
    truth = "2" if module is math_reward else "A"
    with pytest.raises(ValueError, match=RA_ANSWERS_FIELD):
        module.compute_score("src", "plan", truth, info, reward_mode="role")
