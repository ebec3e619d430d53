"""Named prompt sets: exact strings of the paper, loading from file or config, validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from verl_rema.prompts import PromptSet, available_prompt_sets, load_prompt_set, render

MULTI_MTA = (
    "You are a meta-think agent that represents human high-level think process, when solving a question, you will "
    "have a discussion with human, each time you think about what to do next: e.g. \n"
    "- Exploring multiple angles and approaches\n"
    "- Breaking down the solution into clear steps\n"
    "- Continuously reflecting on intermediate results honestly and adapt your strategy as you progress\n"
    "- Backtracking when necessary\n"
    "- Requesting exploration of multiple solutions individually\n"
    "- Finally confirm the answer with the tag [FINISH]\n"
)
MULTI_RA = (
    "Please reason step by step follow the given instruction, when asked to finalize your answer, put your answer "
    "within \\boxed{}"
)
SINGLE_MTA = (
    "You are a math expert specialized in solving mathematical problems, you need to teach a weaker agent with "
    "minimal capability in math how to solve a problem step-by-step. \n"
    "Your task is to provide a high-level solution plan for the given problem, in order to guide a low-level math "
    "solving agent to solve the problem.\n"
    "You can not directly answer the question. You'll be punished if you include any answer in your response.\n"
    "You need to first think deeply in mind and output your final instruction."
)
SINGLE_RA = (
    "You are a math expert tasked with solving problems step by step. Follow the provided instructions precisely, "
    "showing all reasoning and intermediate steps.\nPresent the final answer within \\boxed{}."
)
COT = "You are a math expert tasked with solving problems step by step. \nPresent the final answer within \\boxed{}."
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "notes" / "rema_spec.md"


def test_shipped_sets_hold_the_papers_exact_strings():
    judge_sets = ["judge_mrp", "judge_multiturn", "judge_singleturn", "judge_vrp"]  # tests/unit/test_judge_prompts.py
    paper_sets = ["mrp_paper", "singleturn_paper", "vrp_paper"]  # Table 1's templates (App. G.1.2)
    assert available_prompt_sets() == sorted(["cot", *judge_sets, "multiturn", "singleturn", *paper_sets])

    multi = load_prompt_set("multiturn")
    assert (multi.meta.system, multi.reasoning.system, multi.finish_token) == (MULTI_MTA, MULTI_RA, "[FINISH]")
    assert multi.meta.first_user == "{question}"
    assert multi.reasoning.first_user == "Question:\n{question}\n\nInstruction:\n{instruction}"

    single = load_prompt_set("singleturn")
    assert (single.meta.system, single.reasoning.system, single.finish_token) == (SINGLE_MTA, SINGLE_RA, None)
    assert single.meta.first_user == "Here is the question: {question}"
    assert single.reasoning.first_user == (
        "Here is the question and instructions: [Question] {question} [End of Question] "
        "[Provided Instruction] {instruction} [End of Instruction]"
    )

    cot = load_prompt_set("cot")
    assert (cot.meta, cot.reasoning.system, cot.reasoning.first_user, cot.finish_token) == (
        None,
        COT,
        "{question}",
        None,
    )


def test_table1_sets_hold_the_papers_templates():
    """App. G.1.2 as Table 1 used them: the MTA's "Here is the question:" line, the RA's tagged layout (one tag a
    line, the OCR flattened it), VRP's one agent, MRP's plan-then-solve system prompt ("boxed}." restored)."""
    single = load_prompt_set("singleturn_paper")
    assert (single.meta.system, single.reasoning.system, single.finish_token) == (SINGLE_MTA, SINGLE_RA, None)
    assert single.meta.first_user == "Here is the question:\n{question}"
    assert single.reasoning.first_user == (
        "Here is the question and instructions:\n[Question]\n{question}\n[End of Question]\n"
        "[Provided Instruction]\n{instruction}\n[End of Instruction]"
    )
    vrp = load_prompt_set("vrp_paper")
    assert (vrp.meta, vrp.reasoning.system, vrp.reasoning.first_user) == (
        None,
        COT,
        "Here is the question:\n{question}",
    )
    mrp = load_prompt_set("mrp_paper")
    assert mrp.meta is None and mrp.reasoning.first_user == "Here is the question: {question}"
    assert mrp.reasoning.system == (
        "You are a math expert tasked with solving problems. When solving a problem, your first task is to provide a "
        "high-level solution plan as an instruction. Then you need to follow the provided instructions precisely, "
        "showing all reasoning and intermediate steps. Finally, you must present the final answer within \\boxed{}."
    )


@pytest.mark.skipif(not SPEC.is_file(), reason="shared/notes/rema_spec.md is not available")
def test_shipped_sets_match_the_spec_notes():
    spec = SPEC.read_text(encoding="utf-8")

    def quoted(label: str) -> str:
        return re.search(re.escape(label) + r"\n`([^`]*)`", spec).group(1).replace("\\n", "\n")

    multi, single, cot = (load_prompt_set(name) for name in ("multiturn", "singleturn", "cot"))
    assert multi.meta.system == quoted("Multi-turn MTA:")
    assert multi.reasoning.system == quoted("Multi-turn RA:")
    assert single.meta.system == quoted("Single-turn MTA:")
    assert single.reasoning.system == quoted("Single-turn RA:")
    assert cot.reasoning.system == quoted("Chain-of-thought baseline (VRP):")


def test_render_leaves_latex_braces_alone():
    template = "Question:\n{question}\n\nInstruction:\n{instruction} \\boxed{}"
    question = "Is \\frac{1}{2} < {instruction}?"
    assert render(template, question=question, instruction="go") == (
        "Question:\nIs \\frac{1}{2} < {instruction}?\n\nInstruction:\ngo \\boxed{}"
    )
    with pytest.raises(KeyError, match="instruction"):
        render(template, question="q")


def test_user_prompt_set_from_file_and_from_config(tmp_path):
    mine = {
        "finish_token": "<done>",
        "meta": {"system": "You plan.", "first_user": "Problem: {question}"},
        "reasoning": {"system": "You solve.", "first_user": "{question}\nPlan: {instruction}"},
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine), encoding="utf-8")
    from_file = load_prompt_set(str(path))
    assert from_file.meta.system == "You plan." and from_file.finish_token == "<done>"

    from_config = load_prompt_set(OmegaConf.create(mine))
    assert (from_config.meta, from_config.reasoning) == (from_file.meta, from_file.reasoning)

    overridden = load_prompt_set(OmegaConf.create({"base": "multiturn", "meta": {"system": "You plan."}}))
    assert overridden.meta.system == "You plan."
    assert overridden.meta.first_user == "{question}"  # kept from the base set
    assert overridden.reasoning == load_prompt_set("multiturn").reasoning
    assert isinstance(load_prompt_set(overridden), PromptSet)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"reasoning": {"system": "a", "first_user": "{question}"}, "extra": 1}, "unknown keys"),
        ({"meta": {"system": "a", "first_user": "{question}"}}, "'reasoning' role is required"),
        ({"reasoning": {"system": "a", "first_user": "{question}", "typo": "x"}}, "unknown keys"),
        ({"reasoning": {"system": "", "first_user": "{question}"}}, "non-empty string"),
        ({"reasoning": {"system": "a", "first_user": "no placeholder"}}, "must contain"),
        ({"reasoning": {"system": "a", "first_user": "{question} {instruction}"}}, "needs a meta role"),
        (
            {
                "meta": {"system": "same", "first_user": "{question}"},
                "reasoning": {"system": "same", "first_user": "{question} {instruction}"},
            },
            "different system prompts",
        ),
        (
            {
                "meta": {"system": "a", "first_user": "{question}"},
                "reasoning": {"system": "b", "first_user": "{question}"},
            },
            "must contain",
        ),
        (
            {"reasoning": {"system": "a", "first_user": "{question}"}, "finish_token": "[FINISH]"},
            "needs a meta role",
        ),
    ],
)
def test_invalid_prompt_sets_are_rejected(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_prompt_set(raw)


def test_unknown_prompt_set_name():
    with pytest.raises(ValueError, match="unknown prompt set 'multi_turn'"):
        load_prompt_set("multi_turn")
    with pytest.raises(TypeError):
        load_prompt_set(42)


def test_row_fields_are_extra_placeholders_filled_from_the_dataset_row():
    from verl_rema.rollout.config import ReMARolloutConfig
    from verl_rema.rollout.dialogue import Dialogue, row_fields_of

    spec = {
        "base": "singleturn",
        "row_fields": ["response_a", "response_b"],
        "reasoning": {"first_user": "[Q] {question} [A] {response_a} [B] {response_b} [Plan] {instruction} {other}"},
    }
    prompts = load_prompt_set(spec)
    assert prompts.row_fields == ("response_a", "response_b")
    row = {"question": "Which?", "response_a": "yes {instruction}", "extra_info": {"response_b": "no"}}
    fields = row_fields_of(row, prompts.row_fields)  # a column, else an extra_info entry
    assert fields == {"response_a": "yes {instruction}", "response_b": "no"}
    dialogue = Dialogue("Which?", ReMARolloutConfig(prompt_set=prompts), fields)
    dialogue.record(dialogue.next_role(), "compare them")
    ra_first = dialogue.view(dialogue.next_role())[1]["content"]
    # one pass: a value that contains a placeholder is not filled again; undeclared {other} stays literal
    assert ra_first == "[Q] Which? [A] yes {instruction} [B] no [Plan] compare them {other}"
    with pytest.raises(ValueError, match="no text field 'response_b'"):
        row_fields_of({"question": "Which?", "response_a": "x"}, prompts.row_fields)
    with pytest.raises(ValueError, match="row_fields must be identifiers"):
        load_prompt_set({**spec, "row_fields": ["question"]})
