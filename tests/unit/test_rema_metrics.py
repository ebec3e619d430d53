"""Collapse detectors and per-episode ReMA metrics (pure Python, no model)."""

from __future__ import annotations

import pytest

from verl_rema.protocol import FINISH_REASONS, Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue, Message
from verl_rema.rollout.metrics import (
    aggregate_episode_metrics,
    aggregate_row_metrics,
    contains_boxed,
    episode_metrics,
    ngram_overlap,
    repeated_ngram_share,
)


def test_repeated_ngram_share():
    assert repeated_ngram_share([1, 2, 3, 4, 5, 6, 7, 8]) == 0.0
    assert repeated_ngram_share([1, 2, 3]) == 0.0  # shorter than one 4-gram
    assert repeated_ngram_share([]) == 0.0
    loop = [1, 2, 3, 4] * 25  # a message stuck in a loop: 97 4-grams, 4 distinct
    assert repeated_ngram_share(loop) == pytest.approx(1 - 4 / 97)
    assert repeated_ngram_share(list("abcabc"), n=3) == pytest.approx(1 - 3 / 4)


def test_ngram_overlap_measures_echo():
    assert ngram_overlap([1, 2, 3, 4, 5], [9, 1, 2, 3, 4, 5, 9]) == 1.0
    assert ngram_overlap([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == 0.0
    assert ngram_overlap([1, 2, 3], [1, 2, 3]) is None  # no 4-gram to compare
    assert ngram_overlap([1, 2, 3, 4, 7, 8, 9, 10], [1, 2, 3, 4]) == pytest.approx(1 / 5)


def test_contains_boxed():
    assert contains_boxed("so \\boxed{2}")
    assert contains_boxed("\\boxed {x}")
    assert not contains_boxed("put your answer in a box")
    assert not contains_boxed("boxed{2}")


def _dialogue() -> Dialogue:
    config = ReMARolloutConfig(prompt_set="multiturn", max_turns=5)
    dialogue = Dialogue("Q", config)
    dialogue.record(Role.META, "The answer is \\boxed{3}, verify it.", [1, 2, 3, 4, 5, 6])
    dialogue.record(Role.REASONING, "", [0])
    dialogue.record(Role.META, "[FINISH]", [7, 8])
    dialogue.record(Role.REASONING, "so \\boxed{3}", [1, 2, 3, 4, 1, 2, 3, 4])
    return dialogue


def test_episode_metrics_of_a_dialogue():
    dialogue = _dialogue()
    metrics = episode_metrics(dialogue.messages, dialogue.finish_reason.value)
    assert metrics["rema/rounds"] == 2.0 and metrics["rema/messages"] == 4.0
    assert {reason: metrics[f"rema/finish/{reason}"] for reason in FINISH_REASONS} == {
        "normal": 1.0,
        "max_turns": 0.0,
        "context_overflow": 0.0,
        "truncated": 0.0,
    }
    assert metrics["rema/meta/turns"] == 2.0
    assert metrics["rema/meta/tokens_per_turn"] == 4.0  # (6 + 2) / 2
    assert metrics["rema/reasoning/tokens_per_turn"] == 4.5  # (1 + 8) / 2
    assert metrics["rema/meta/empty_turn_rate"] == 0.5  # the message that is only [FINISH]
    assert metrics["rema/reasoning/empty_turn_rate"] == 0.5
    assert metrics["rema/meta/answer_leak_rate"] == 0.5  # the MTA stated a boxed answer once
    assert metrics["rema/final_answer_boxed"] == 1.0
    assert metrics["rema/reasoning/repetition_rate"] == pytest.approx((0.0 + (1 - 4 / 5)) / 2)
    # Echo is measured against the message being answered: the RA's [0] has no 4-gram (undefined), its last reply
    # shares no 4-gram with [7, 8] (0.0); the MTA's [7, 8] has no 4-gram and its first message answers nobody.
    assert metrics["rema/reasoning/echo_overlap"] == 0.0
    assert metrics["rema/meta/echo_overlap"] is None
    assert metrics["rema/meta/truncated_turn_rate"] == 0.0
    assert all(not isinstance(value, str) for value in metrics.values())


def test_metrics_of_a_role_that_never_spoke_are_undefined():
    messages = [Message(role=Role.META, text="plan", token_ids=(1, 2, 3, 4, 5), truncated=True)]
    metrics = episode_metrics(messages, "truncated")
    assert metrics["rema/finish/truncated"] == 1.0
    assert metrics["rema/meta/truncated_turn_rate"] == 1.0
    assert metrics["rema/reasoning/turns"] == 0.0
    assert metrics["rema/reasoning/tokens_per_turn"] is None
    assert metrics["rema/final_answer_boxed"] is None
    assert episode_metrics([], "context_overflow")["rema/rounds"] == 0.0
    with pytest.raises(ValueError, match="unknown finish reason"):
        episode_metrics(messages, "done")


def test_aggregate_episode_metrics():
    episodes = [
        {"rema/finish/normal": 1.0, "rema/finish/truncated": 0.0, "rema/reasoning/tokens_per_turn": 10.0},
        {"rema/finish/normal": 0.0, "rema/finish/truncated": 1.0, "rema/reasoning/tokens_per_turn": None},
        {"rema/finish/normal": 1.0, "rema/finish/truncated": 0.0, "rema/reasoning/tokens_per_turn": 20.0},
        None,
    ]
    assert aggregate_episode_metrics(episodes, prefix="val-aux/") == {
        "val-aux/rema/finish/normal": pytest.approx(2 / 3),
        "val-aux/rema/finish/truncated": pytest.approx(1 / 3),
        "val-aux/rema/reasoning/tokens_per_turn": 15.0,  # None (the RA never spoke) is skipped
    }
    assert aggregate_episode_metrics([]) == {}


def test_aggregate_row_metrics_counts_each_episode_once():
    normal = {"rema/finish/normal": 1.0}
    truncated = {"rema/finish/normal": 0.0}
    keys = ["u1_0_0", "u1_0_1", "u1_1_0", "u2_0_0", "u2_0_1", "other_0_0"]
    rows = [
        {"rema_metrics": normal},  # episode u1/0: two rows with the same dict
        {"rema_metrics": normal},
        {"rema_metrics": truncated},  # episode u1/1: only the MTA spoke
        {"rema_metrics": normal},
        {"rema_metrics": normal},
        {"turn_scores": []},  # another agent loop's row
    ]
    assert aggregate_row_metrics(keys, rows, prefix="training/") == {"training/rema/finish/normal": 2 / 3}
