"""Algorithm 1's pure parts: its settings, the band filter, the phase walk and its resume state, the role rewards."""

from __future__ import annotations

import pytest

from verl_rema.protocol import Role
from verl_rema.rewards.role_rewards import consistency_reward, mta_reward, normalise_answer, ra_reward
from verl_rema.separate.algorithm1 import Algorithm1Config, Algorithm1State, keep_in_band


def test_role_rewards_every_branch():
    assert ra_reward(correct=True, has_boxed_answer=True) == 1.0
    assert ra_reward(correct=False, has_boxed_answer=True) == -0.5
    assert ra_reward(correct=False, has_boxed_answer=False) == -1.0
    assert mta_reward([True, False, True, True], plan_leaks=False) == 0.75
    assert mta_reward([True, False, True, True], plan_leaks=True, penalty="add") == -0.25  # the leakage guard
    assert mta_reward([True, True], plan_leaks=True, penalty="set") == -1.0
    with pytest.raises(ValueError, match="at least one RA answer"):
        mta_reward([], plan_leaks=False)
    with pytest.raises(ValueError, match="penalty"):
        mta_reward([True], plan_leaks=True, penalty="double")  # type: ignore[arg-type]


def test_consistency_reward_eq_14():
    assert consistency_reward(["4", " 4", "5", "4"], plan_leaks=False) == 0.75  # the most frequent answer's share
    assert consistency_reward(["4", None, None, "4"], plan_leaks=False) == 0.5  # half have an answer: counted
    assert consistency_reward(["4", None, None, None], plan_leaks=False) == 0.0  # most have none
    assert consistency_reward(["4", "4"], plan_leaks=True) == 0.0  # 1 - 1
    assert normalise_answer("$\\frac{1}{2}$ ") == "\\frac{1}{2}" and normalise_answer("  ") is None


def test_band_keeps_questions_whose_success_rate_is_inside_inclusive():
    config = Algorithm1Config(band=[0.2, 0.8])
    rates = {0: 0.0, 1: 0.1, 2: 0.2, 3: 0.5, 4: 0.8, 5: 0.9, 6: 1.0}
    kept, counts = keep_in_band(rates, config)
    assert kept == [2, 3, 4]
    assert counts == {"tried": 7, "kept": 3, "too_hard": 2, "too_easy": 2}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"band": [0.9, 0.2]}, r"rema.algorithm1.band must be \[lo, hi\]"),
        ({"band": [0.2]}, r"rema.algorithm1.band"),
        ({"iterations": 0}, r"rema.algorithm1.iterations must be a positive integer"),
        ({"filter_questions": -1}, r"rema.algorithm1.filter_questions must be an integer >= 0"),
        ({"iteration": 3}, r"unknown keys \['rema.algorithm1.iteration'\]"),
    ],
)
def test_bad_settings_are_refused_with_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        Algorithm1Config.from_config(values)


def test_phases_alternate_ra_then_mta_per_iteration_and_end():
    config = Algorithm1Config(iterations=2)
    state = Algorithm1State()
    seen = []
    while not state.done(config):
        seen.append((state.iteration, state.phase_role))
        state.next_phase()
    assert seen == [(0, Role.REASONING), (0, Role.META), (1, Role.REASONING), (1, Role.META)]


def test_a_phase_walks_its_data_epoch_by_epoch_and_resumes_exactly():
    config = Algorithm1Config(epochs=3, seed=5)
    state = Algorithm1State(items=[[i, f"plan {i}"] for i in range(5)])
    assert state.phase_steps(config, batch_size=4) == 4  # ceil(3 epochs x 5 / 4)
    first = state.take(4, config.seed) + state.take(4, config.seed)
    # each epoch is a permutation of the data; a batch wraps into the next epoch instead of being short
    epoch_1 = [item[0] for item in first[:5]]
    assert sorted(epoch_1) == list(range(5)) and len(first) == 8
    saved = state.to_dict()
    rest = state.take(4, config.seed)
    resumed = Algorithm1State.from_dict(saved)  # what a checkpoint holds
    assert resumed.take(4, config.seed) == rest
    assert Algorithm1State(items=[]).phase_steps(config, 4) == 0
