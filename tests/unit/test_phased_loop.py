"""Algorithm 1's episodes (the ``rema_algorithm1`` agent loop) against the scripted engine: who samples, greedily or
not, how many RA answers a plan gets, which row is scored, what the reward is told."""

from __future__ import annotations

import asyncio

import pytest

import verl_rema.rollout.phased_loop  # noqa: F401  (registers the agent loop)
from tests.unit.rollout_harness import ROW, SAMPLING, TEMPLATES, ScriptedEngine, assert_token_exact, make_tokenizer
from verl_rema.prompts import load_prompt_set
from verl_rema.rollout.standalone import make_agent_loop, trainer_config

PLAN = "Factor it, then compare the roots."
ANSWERS = ["The roots are 2 and 3. \\boxed{2}", "So \\boxed{3}", "\\boxed{2}", "I am not sure."]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(TEMPLATES["chatml"])


def play(tokenizer, script, phase, plan=None, k=4, filter_k=3):
    prompts = load_prompt_set("singleturn")
    engine = ScriptedEngine(
        tokenizer, {"meta": prompts.meta.system, "reasoning": prompts.reasoning.system}, script, "<|im_end|>"
    )
    config = trainer_config({"prompt_set": "singleturn", "max_turns": 1})
    config.rema.algorithm1 = {"ra_samples_per_plan": k, "filter_samples": filter_k}
    config.actor_rollout_ref.rollout.agent = {"default_agent_loop": "rema_algorithm1"}

    async def run():
        from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

        assert "rema_algorithm1" in _agent_loop_registry
        loop = make_agent_loop(config, engine, tokenizer, name="rema_algorithm1")
        row = {**ROW, "rema_phase": phase, "rema_plan": plan}
        return await loop.run(dict(SAMPLING), **row)

    return asyncio.run(run()), engine


def test_train_reasoning_gives_the_plan_and_scores_the_ras_row(tokenizer):
    outputs, engine = play(tokenizer, {"meta": [], "reasoning": [ANSWERS[0]]}, "train_reasoning", plan=PLAN)
    assert engine.roles() == ["reasoning"]  # the plan was given, not sampled
    assert PLAN in tokenizer.decode(engine.calls[0].prompt_ids)
    assert [o.rema_role for o in outputs] == ["meta", "reasoning"]  # the RA's row last: the reward scores it
    assert outputs[0].response_mask == [0]  # the MTA trains nothing in the RA's phase
    assert_token_exact(outputs[1], engine.calls)
    assert outputs[1].extra_fields["rema_ra_answers"] == [ANSWERS[0]]
    assert engine.calls[0].sampling_params["temperature"] == 1.0
    with pytest.raises(ValueError, match="needs its plan"):
        play(tokenizer, {"meta": [], "reasoning": []}, "train_reasoning", plan=None)


def test_train_meta_scores_a_sampled_plan_with_k_ra_answers_from_one_prompt(tokenizer):
    outputs, engine = play(tokenizer, {"meta": [PLAN], "reasoning": list(ANSWERS)}, "train_meta", k=4)
    assert engine.roles() == ["meta"] + ["reasoning"] * 4
    ra_prompts = {tuple(call.prompt_ids) for call in engine.of("reasoning")}
    assert len(ra_prompts) == 1  # the K answers share one prompt (the engine's prefix cache serves it once)
    assert [o.rema_role for o in outputs] == ["reasoning", "meta"]  # the MTA's row last: the reward scores it
    meta_row = outputs[1]
    assert_token_exact(meta_row, engine.of("meta"))
    assert meta_row.extra_fields["rema_ra_answers"] == ANSWERS and meta_row.extra_fields["rema_plan"] == PLAN
    assert_token_exact(outputs[0], engine.of("reasoning")[:1])  # the first answer is the RA's row


def test_filter_passes_sample_greedily_where_the_paper_does(tokenizer):
    outputs, engine = play(tokenizer, {"meta": [PLAN], "reasoning": ANSWERS[:3]}, "filter_reasoning", filter_k=3)
    assert engine.of("meta")[0].sampling_params["temperature"] == 0.0  # one greedy plan
    assert [c.sampling_params["temperature"] for c in engine.of("reasoning")] == [1.0] * 3  # K sampled answers
    assert outputs[-1].rema_role == "meta" and len(outputs[-1].extra_fields["rema_ra_answers"]) == 3
    outputs, engine = play(tokenizer, {"meta": [PLAN], "reasoning": ANSWERS[:1]}, "filter_meta")
    assert engine.of("meta")[0].sampling_params["temperature"] == 1.0  # a sampled plan
    assert [c.sampling_params["temperature"] for c in engine.of("reasoning")] == [0.0]  # one greedy answer
    assert outputs[-1].rema_role == "meta"


def test_rows_without_a_phase_are_plain_single_turn_episodes(tokenizer):
    outputs, engine = play(tokenizer, {"meta": [PLAN], "reasoning": [ANSWERS[0]]}, None)
    assert engine.roles() == ["meta", "reasoning"] and [o.rema_role for o in outputs] == ["meta", "reasoning"]
    assert "rema_ra_answers" not in outputs[-1].extra_fields
