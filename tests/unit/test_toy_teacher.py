"""The imperfect teacher of the toy warm start: its wrong plans are fixed per problem, at the configured share of
the configured forms, and consistent between the two-role and the CoT format; drill rows hold correct equations;
the SFT data builder turns the ``rema.sft`` keys into those rows."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from verl_rema.embedded.dialogues import (
    OPERATION_WORDS,
    WRONG_OPERATION,
    cot_solution,
    decomposition,
    drill_texts,
    has_wrong_plan,
    make_dialogues,
)
from verl_rema.embedded.task import make_split
from verl_rema.protocol import Role
from verl_rema.sft.config import ReMASFTDataConfig
from verl_rema.sft.data import DRILL_PROMPT, sft_data
from verl_rema.sft.views import ROLE

PROBLEMS = make_split(3000, seed=11)


def _share(problems, share, forms):
    return sum(has_wrong_plan(p, share, forms) for p in problems) / len(problems)


def test_wrong_plans_are_deterministic_and_at_the_configured_share_of_the_configured_form():
    form0 = [p for p in PROBLEMS if p.form == 0]
    assert len(form0) > 900
    assert abs(_share(form0, 0.75, [0]) - 0.75) < 0.04  # binomial SE ~0.014 at n~1000
    assert abs(_share(form0, 0.3, [0]) - 0.3) < 0.04
    assert _share([p for p in PROBLEMS if p.form != 0], 0.75, [0]) == 0
    assert [has_wrong_plan(p, 0.75, [0]) for p in PROBLEMS] == [has_wrong_plan(p, 0.75, [0]) for p in PROBLEMS]
    assert _share(PROBLEMS, 0.0, [0, 1, 2]) == 0
    # A larger share only adds problems: the draw is fixed per problem
    assert all(has_wrong_plan(p, 0.8, [0]) for p in form0 if has_wrong_plan(p, 0.5, [0]))


def test_a_wrong_plan_names_the_wrong_operation_and_the_reasoning_agent_follows_it():
    problem = next(p for p in PROBLEMS if p.form == 0 and has_wrong_plan(p, 0.75, [0]))
    a, b, c = (int(n) for n in re.findall(r"\d+", problem.expression))
    m1, y1, m2, y2 = (turn.text for turn in decomposition(problem, wrong_plan=True))
    assert [t.role for t in decomposition(problem, wrong_plan=True)] == [Role.META, Role.REASONING] * 2
    assert m1 == f"First compute {a}+{b}." and y1 == f"{a}+{b}={a + b}."
    assert m2 == f"Then {OPERATION_WORDS[WRONG_OPERATION['-']]} {c}. [FINISH]"
    assert y2 == f"{a + b}+{c}={a + b + c}. \\boxed{{{a + b + c}}}" and a + b + c != problem.answer
    assert cot_solution(problem, wrong_plan=True) == f"{y1} {y2}"
    assert cot_solution(problem) == problem.solution  # the perfect teacher's CoT is the task's own


def test_wrong_plans_never_leave_the_non_negative_integers():
    for problem in PROBLEMS:
        if has_wrong_plan(problem, 1.0, [0, 1, 2]):
            result = int(cot_solution(problem, wrong_plan=True).rsplit("{", 1)[1].rstrip("}"))
            assert result >= 0 and result != problem.answer


def test_make_dialogues_with_a_perfect_teacher_is_unchanged_and_the_flawed_share_is_reproducible():
    assert [d.to_json() for d in make_dialogues(50, seed=2)] == [
        d.to_json() for d in make_dialogues(50, seed=2, wrong_plan_share=0.0)
    ]
    flawed = make_dialogues(600, seed=2, wrong_plan_share=0.75, wrong_plan_forms=[0])
    assert [d.to_json() for d in flawed] == [
        d.to_json() for d in make_dialogues(600, seed=2, wrong_plan_share=0.75, wrong_plan_forms=[0])
    ]
    form0 = [d for d in flawed if re.fullmatch(r"\d+\+\d+-\d+\.", d.question.split()[1])]
    wrong = [d for d in form0 if "Then add" in d.turns[2].text]
    assert 0.65 < len(wrong) / len(form0) < 0.85


def test_drill_texts_hold_correct_equations_and_skip_excluded_problems():
    texts = drill_texts(20, seed=5, equations=12)
    assert texts == drill_texts(20, seed=5, equations=12)
    for text in texts:
        equations = text.split(" ")
        assert len(equations) == 12
        for equation in equations:
            lhs, rhs = equation.rstrip(".").split("=")
            assert eval(lhs) == int(rhs)  # noqa: S307 (digits and + - * only)


def test_the_sft_data_builder_adds_drill_rows_and_builds_cot_rows_with_the_same_teacher(tmp_path):
    common = {"source": "embedded", "embedded_dialogues": 60, "wrong_plan_share": 1.0, "wrong_plan_forms": [0]}
    two_role = pd.read_parquet(sft_data(ReMASFTDataConfig(**common, drill_rows=7), root=tmp_path).train)
    assert len(two_role) == 60 * 2 + 7
    drills = two_role[two_role["question"] == DRILL_PROMPT]
    assert len(drills) == 7 and all(len(m) == 2 and m[0]["content"] == DRILL_PROMPT for m in drills["messages"])
    cot = pd.read_parquet(sft_data(ReMASFTDataConfig(**common, prompt_set="cot", roles=["reasoning"]), tmp_path).train)
    assert len(cot) == 60 and all([m["role"] for m in chat] == ["system", "user", "assistant"] for chat in cot.messages)
    # The same problems, the same wrong plans: each CoT answer is the two-role dialogue's RA answer
    ra_rows = two_role[two_role[ROLE] == Role.REASONING.value]
    ra_rows = ra_rows[ra_rows["question"] != DRILL_PROMPT]
    ra_answers = {q: chat[-1]["content"] for q, chat in zip(ra_rows.question, ra_rows.messages, strict=True)}
    for question, chat in zip(cot.question, cot.messages, strict=True):
        assert chat[-1]["content"].endswith(ra_answers[question].split(" ")[-1])
        assert chat[-1]["content"].split(" ")[1] == ra_answers[question].split(" ")[0]


@pytest.mark.parametrize(
    "values",
    [{"wrong_plan_share": 1.5}, {"wrong_plan_share": -0.1}, {"wrong_plan_forms": [3]}, {"drill_rows": -1}],
)
def test_bad_teacher_settings_are_rejected_naming_the_key(values):
    with pytest.raises(ValueError, match=f"rema.sft.{next(iter(values))}"):
        ReMASFTDataConfig(**values)


def test_single_agent_rows_need_the_embedded_source(tmp_path):
    with pytest.raises(ValueError, match="no meta role"):
        sft_data(ReMASFTDataConfig(source="mamrp", prompt_set="cot", roles=["reasoning"]), root=tmp_path)
