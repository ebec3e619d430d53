"""The judge prompt sets (arXiv 2503.09501 App. G.1.3): what each role sees of a judge row."""

from __future__ import annotations

import pytest

from tests.unit.test_judge_data import RB_SAMPLE
from verl_rema.data.judge import build_rewardbench970
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue, question_from_row, row_fields_of

VERDICT_FORMAT = 'output your final verdict by strictly following this format: "[[A]]" if assistant A is better, '
VERDICT_FORMAT += '"[[B]]" if assistant B is better.'
MTA_SYSTEM = (
    "We want to evaluate the quality of the responses provided by AI assistants to the user question displayed "
    "below. \nFor that, your task is to help us build an evaluation plan that can then be executed to assess the "
    "response quality. Whenever appropriate, you can choose to also include a step-by-step reference answer as part "
    "of the evaluation plan."
)


@pytest.fixture(scope="module")
def row() -> dict:
    """A real builder row (game 2: the rejected response shown as A)."""
    rows = build_rewardbench970(RB_SAMPLE, test_size=8).rows
    return next(r for r in rows if r["extra_info"]["game"] == "2" and r["extra_info"]["pair_id"] == "rewardbench:901")


def _dialogue(prompt_set: str, row: dict, **settings) -> Dialogue:
    config = ReMARolloutConfig(prompt_set=prompt_set, **{"max_turns": 1, **settings})
    return Dialogue(question_from_row(row), config, row_fields_of(row, config.prompts.row_fields))


def test_single_turn_rema_judge_mta_sees_only_the_instruction_and_ra_sees_everything_in_order(row):
    dialogue = _dialogue("judge_singleturn", row)
    info = row["extra_info"]
    meta = dialogue.view(Role.META)
    assert meta[0]["content"] == MTA_SYSTEM
    assert meta[1]["content"] == f"[User Question]\n{row['question']}\n[End of User Question]"
    assert info["response_a"] not in str(meta) and info["response_b"] not in str(meta)  # the plan is blind
    dialogue.record(Role.META, "1. Recompute the answer. 2. Compare each response's final number with it.")
    system, user = (m["content"] for m in dialogue.view(Role.REASONING))
    assert system.endswith(f"After providing your evaluation, {VERDICT_FORMAT}")
    assert user == (
        f"[User Question]\n{row['question']}\n[End of User Question]\n"
        f"[The Start of Assistant A's Answer]\n{info['response_a']}\n[The End of Assistant A's Answer]\n"
        f"[The Start of Assistant B's Answer]\n{info['response_b']}\n[The End of Assistant B's Answer]\n"
        "[The Start of Evaluation Plan]\n1. Recompute the answer. 2. Compare each response's final number with it.\n"
        "[The End of Evaluation Plan]"
    )
    assert info["response_a"].startswith("15% of 80 is 80 / 15")  # game 2: the rejected answer is A
    dialogue.record(Role.REASONING, "B is right. [[B]]")
    assert dialogue.done and dialogue.final_answer == "B is right. [[B]]"


@pytest.mark.parametrize("name", ["judge_vrp", "judge_mrp"])
def test_single_agent_judges_see_the_instruction_and_both_responses_once(name, row):
    dialogue = _dialogue(name, row)
    assert dialogue.roles == (Role.REASONING,)
    system, user = (m["content"] for m in dialogue.view(Role.REASONING))
    info = row["extra_info"]
    assert user.index(row["question"]) < user.index(info["response_a"]) < user.index(info["response_b"])
    assert user.endswith("[The End of Assistant B's Answer]") and "Evaluation Plan" not in user
    assert system.endswith(VERDICT_FORMAT) and ".." not in system  # the OCR's doubled periods are repaired
    if name == "judge_mrp":
        assert 'between the tags "[Start of Evaluation Plan]" and "[End of Evaluation Plan]"' in system
    dialogue.record(Role.REASONING, "[[A]]")
    assert dialogue.done


def test_multiturn_judge_is_a_reconstruction_with_a_finish_token(row):
    prompts = load_prompt_set("judge_multiturn")
    assert prompts.finish_token == "[FINISH]" and prompts.row_fields == ("response_a", "response_b")
    assert prompts.meta.system.startswith(MTA_SYSTEM) and "[FINISH]" in prompts.meta.system
    assert prompts.reasoning.first_user == load_prompt_set("judge_singleturn").reasoning.first_user
    dialogue = _dialogue("judge_multiturn", row, max_turns=3)
    dialogue.record(Role.META, "Plan: recompute.")
    dialogue.record(Role.REASONING, "A computed 5.33, B computed 12.")
    assert not dialogue.done
    assert row["extra_info"]["response_a"] not in str(dialogue.view(Role.META))
    dialogue.record(Role.META, "12 is right. Give your verdict. [FINISH]")
    dialogue.record(Role.REASONING, "[[B]]")
    assert dialogue.done and dialogue.final_answer == "[[B]]"


def test_a_judge_set_refuses_rows_without_the_responses():
    config = ReMARolloutConfig(prompt_set="judge_singleturn", max_turns=1)
    with pytest.raises(ValueError, match="no text field 'response_b'"):
        row_fields_of({"question": "q", "extra_info": {"response_a": "x"}}, config.prompts.row_fields)
