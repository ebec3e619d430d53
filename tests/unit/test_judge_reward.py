"""The judge reward: verdict parsing in every form, binary and paper-style role rewards, typed kwargs."""

from __future__ import annotations

import pytest

from verl_rema.protocol import FINAL_ANSWER_FIELD, FINISH_REASON_FIELD, RA_ANSWERS_FIELD, ROLE_FIELD
from verl_rema.rewards.judge_reward import JudgeRewardKwargs, compute_score
from verl_rema.rewards.verdict import gold_letter, mta_reward, parse_verdict, plan_has_verdict, ra_reward

FORMAT = 'output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if '
FORMAT += "assistant B is better."


@pytest.mark.parametrize(
    ("text", "choice", "tags", "malformed"),
    [
        ("Both answers are fine.", None, 0, False),  # none
        ("", None, 0, False),
        ("Final verdict: [[A]]", "A", 1, False),
        ("[[B]]", "B", 1, False),
        ("At first [[A]] looked better, but on reflection [[B]]", "B", 2, False),  # both letters: the last
        (f"I will {FORMAT}\nA is accurate, B is not.\n[[A]]", "A", 1, False),  # quoted format, then the verdict
        (f"I will {FORMAT}", None, 0, False),  # the quoted format alone is no verdict
        ("Output `[[B]]` if assistant B is better. My verdict: [[A]]", "A", 1, False),
        ("My verdict is [A].", None, 0, True),  # malformed brackets
        ("Verdict: [[ B ]]", None, 0, True),
        ("Verdict: [[b]]", None, 0, True),
        ("Verdict: [[A]", None, 0, True),
        ("Verdict: [[Assistant A]]", None, 0, True),
        ("Verdict: [[C]]", None, 0, False),
        ("Verdict: **[[B]]**", "B", 1, False),
    ],
)
def test_every_verdict_form(text, choice, tags, malformed):
    verdict = parse_verdict(text)
    assert (verdict.choice, verdict.tags, verdict.malformed) == (choice, tags, malformed)


def test_pick_rule_is_a_named_option():
    text = "[[A]] first, then [[B]]"
    assert parse_verdict(text, "last").choice == "B"
    assert parse_verdict(text, "first").choice == "A"
    assert parse_verdict(text, "unique").choice is None and parse_verdict(text, "unique").conflicting
    assert parse_verdict("[[B]] and again [[B]]", "unique").choice == "B"
    with pytest.raises(ValueError, match="verdict pick"):
        parse_verdict(text, "middle")


def test_gold_letters_and_ra_rewards():
    assert [gold_letter(g) for g in ("A", " b ", "A>B", "B>A", "tie", None)] == ["A", "B", "A", "B", None, None]
    assert ra_reward(parse_verdict("[[A]]"), "A") == 1.0
    assert ra_reward(parse_verdict("[[B]]"), "A") == -0.5  # wrong but well formed
    assert ra_reward(parse_verdict("[A]"), "A") == -1.0  # no verdict
    assert ra_reward(parse_verdict("nothing"), "B") == -1.0


def test_mta_reward_is_the_mean_ra_correctness_with_a_plan_verdict_penalty():
    plan = "1. Check factual accuracy. 2. Check completeness."
    assert mta_reward([1, 0, 1, 1], plan) == 0.75
    assert mta_reward([True, False], plan) == 0.5
    leaking = plan + " Assistant A wins: [[A]]"
    assert mta_reward([1, 0, 1, 1], leaking) == -0.25  # penalty added
    assert mta_reward([1, 0, 1, 1], leaking, penalty="set") == -1.0
    quoting = plan + ' Then output "[[A]]" if assistant A is better.'
    assert not plan_has_verdict(quoting) and mta_reward([1], quoting) == 1.0
    assert plan_has_verdict("[[A]] or maybe [[B]]")  # conflicting tags are still a leak
    with pytest.raises(ValueError, match="at least one"):
        mta_reward([], plan)
    with pytest.raises(ValueError, match="0/1"):
        mta_reward([0.5], plan)


def test_binary_reward_scores_the_final_message_and_masks_unfinished_episodes():
    info = {FINAL_ANSWER_FIELD: "Plan followed. [[B]]", FINISH_REASON_FIELD: "normal", "pair_id": "rb:1", "game": "2"}
    result = compute_score("alpacaeval-easy", "whole response [[A]]", "B", info)
    assert result["score"] == result["acc"] == 1.0 and result["verdict"] == "B" and result["gold"] == "B"
    assert (result["pair_id"], result["game"], result["role_reward"]) == ("rb:1", "2", 1.0)
    truncated = compute_score(None, "", "B", {**info, FINISH_REASON_FIELD: "truncated"})
    assert truncated["score"] == 0.0 and truncated["acc"] == 1.0
    unmasked = compute_score(None, "", "B", {**info, FINISH_REASON_FIELD: "truncated"}, mask_unfinished_reward=False)
    assert unmasked["score"] == 1.0
    plain = compute_score(None, "no verdict here", "A", None)  # no ReMA fields: the response itself, nothing masked
    assert plain["score"] == 0.0 and plain["verdict"] == "none" and plain["role_reward"] == -1.0
    keys = set(result)
    assert set(plain) == keys == set(truncated)  # veRL stacks the first sample's keys
    assert compute_score(None, "[[A]]", "A>B", None)["acc"] == 1.0  # JudgeBench's raw label works too
    assert compute_score(None, "[[A]]", "tie", None)["acc"] == 0.0


def test_role_mode_gives_each_agent_its_paper_style_reward():
    ra = {FINAL_ANSWER_FIELD: "[[A]]", FINISH_REASON_FIELD: "normal", ROLE_FIELD: "reasoning"}
    assert compute_score(None, "", "B", ra, reward_mode="role")["score"] == -0.5
    assert compute_score(None, "", "A", ra, reward_mode="role")["score"] == 1.0
    unfinished = {**ra, FINAL_ANSWER_FIELD: "cut off", FINISH_REASON_FIELD: "truncated"}
    assert compute_score(None, "", "A", unfinished, reward_mode="role")["score"] == -1.0  # not masked to 0
    # the K RA answers to the MTA's plan (rema_algorithm1 loop): two right, one wrong, one without a verdict
    answers = ["so [[A]]", "[[A]]", "[[B]]", "no idea"]
    meta = {**ra, ROLE_FIELD: "meta", RA_ANSWERS_FIELD: answers}
    scored = compute_score(None, "a plan", "A", meta, reward_mode="role")
    assert (scored["score"], scored["acc"], scored["ra_answers"], scored["plan_leak"]) == (0.5, 0.5, 4.0, 0.0)
    leaked = compute_score(None, "plan: [[A]]", "A", meta, reward_mode="role")
    assert (leaked["score"], leaked["plan_leak"]) == (-0.5, 1.0)
    assert compute_score(None, "plan: [[A]]", "A", meta, reward_mode="role", mta_penalty="set")["score"] == -1.0
    silent = compute_score(None, "a plan", "A", {**meta, RA_ANSWERS_FIELD: []}, reward_mode="role")
    assert (silent["score"], silent["acc"], silent["ra_answers"]) == (0.0, 0.0, 0.0)  # the RA never spoke
    own = {**ra, ROLE_FIELD: "meta"}  # no RA list: this episode's one verdict
    assert compute_score(None, "a plan", "A", own, reward_mode="role")["score"] == 1.0
    with pytest.raises(ValueError, match=RA_ANSWERS_FIELD):
        compute_score(None, "a plan", "A", {**meta, RA_ANSWERS_FIELD: "[[A]]"}, reward_mode="role")


def test_kwargs_are_typed_and_strictly_checked_at_start_up():
    assert JudgeRewardKwargs.parse({"num_procs": 1, "mask_unfinished_reward": "false"}, strict=True) == (
        JudgeRewardKwargs(num_procs=1, mask_unfinished_reward=False)
    )
    for kwargs, message in (
        ({"reward_mod": "role"}, r"unknown keys \['reward_mod'\]"),
        ({"reward_mode": "shared"}, "reward_kwargs.reward_mode must be one of"),
        ({"verdict_pick": "middle"}, "reward_kwargs.verdict_pick"),
        ({"mta_penalty": "double"}, "reward_kwargs.mta_penalty"),
        ({"mask_unfinished_reward": "maybe"}, "mask_unfinished_reward"),
        ({"num_procs": 0}, "num_procs"),
    ):
        with pytest.raises(ValueError, match=message):
            JudgeRewardKwargs.parse(kwargs, strict=True)
    assert JudgeRewardKwargs.parse({"unknown": 1}, strict=False) == JudgeRewardKwargs()  # warned, not fatal
    assert JudgeRewardKwargs.parse({"reward_router_address": None}, strict=True) == JudgeRewardKwargs()
