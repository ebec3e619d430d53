"""The `rema` agent loop against a scripted engine (tests/unit/rollout_harness.py): turn order, views, finish
reasons, token-exact rows, bad input, and veRL's v1 post-processing of the rows."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from hydra.errors import InstantiationException

from tests.unit.rollout_harness import (
    QUESTION,
    ROW,
    SAMPLING,
    TEMPLATES,
    Reply,
    ScriptedEngine,
    assert_token_exact,
    decoded,
    episode,
    make_loop,
    make_tokenizer,
    user_turn,
)
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import FinishReason, Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue
from verl_rema.rollout.standalone import make_agent_loop, trainer_config


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(TEMPLATES["chatml"])


# ---------------------------------------------------------------------------------------------------------------
# Multi-turn protocol
# ---------------------------------------------------------------------------------------------------------------

MTA_1 = "Let us factor the quadratic first."
RA_1 = "The roots are 2 and 3."
MTA_2 = "Then the smaller root is 2. [FINISH] and some words after the tag"
MTA_2_SEEN = "Then the smaller root is 2. [FINISH]"
RA_2 = "So the answer is \\boxed{2}."


@pytest.mark.parametrize("hf_model_type", [None, "qwen2"], ids=["default-builder", "qwen-builder"])
def test_multiturn_episode_turns_views_and_rows(tokenizer, hf_model_type):
    outputs, engine = episode(
        tokenizer, {"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]}, hf_model_type=hf_model_type
    )
    prompts = load_prompt_set("multiturn")

    # Turn order and the stops: MTA first, alternating; [FINISH] is a stop string and the template's end-of-turn
    # token a stop token id, for every message of both roles.
    assert engine.roles() == ["meta", "reasoning", "meta", "reasoning"]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert all(call.sampling_params["stop"] == ["[FINISH]"] for call in engine.calls)
    assert all(call.sampling_params["stop_token_ids"] == [im_end] for call in engine.calls)
    assert all(call.sampling_params["max_tokens"] == 512 for call in engine.calls)

    # One request id per role for the whole episode (veRL's client routes it to one server: the role's prefix
    # cache), the roles' ids distinct, and a new episode's ids new.
    ids = [call.request_id for call in engine.calls]
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1] and all(ids)
    _, again = episode(tokenizer, {"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]}, hf_model_type=hf_model_type)
    assert not {call.request_id for call in again.calls} & set(ids)

    # One row per role, RA last (the reward loop scores the last output).
    meta_row, ra_row = outputs
    assert [o.rema_role for o in outputs] == ["meta", "reasoning"]
    assert [o.extra_fields["rema_role"] for o in outputs] == ["meta", "reasoning"]
    for row in outputs:
        assert row.extra_fields["rema_finish_reason"] == "normal"
        assert row.extra_fields["rema_final_answer"] == RA_2
        assert row.extra_fields["rema_num_rounds"] == 2
        assert row.extra_fields["rema_metrics"]["rema/finish/normal"] == 1.0
        assert row.extra_fields["min_global_steps"] == row.extra_fields["max_global_steps"] == 5
    assert meta_row.num_turns == ra_row.num_turns == 4  # user/assistant messages in each view

    # Views: the RA's first user message; each role reads the other's text as `user`, cut after [FINISH].
    ra_first = prompts.reasoning.first_user.replace("{question}", QUESTION).replace("{instruction}", MTA_1)
    assert ra_first == f"Question:\n{QUESTION}\n\nInstruction:\n{MTA_1}"
    first_ra_prompt = tokenizer.decode(engine.of("reasoning")[0].prompt_ids)
    assert first_ra_prompt.startswith(f"<|im_start|>system\n{prompts.reasoning.system}<|im_end|>\n")
    assert first_ra_prompt.endswith(user_turn(ra_first) + "\n<|im_start|>assistant\n")
    assert user_turn(RA_1) in tokenizer.decode(engine.of("meta")[1].prompt_ids)
    assert tokenizer.decode(engine.of("reasoning")[1].prompt_ids).endswith(
        user_turn(MTA_2_SEEN) + "\n<|im_start|>assistant\n"
    )

    # Token-exact rows: mask 1 on that role's sampled tokens only, log-probs aligned.
    assert_token_exact(meta_row, engine.of("meta"))
    assert_token_exact(ra_row, engine.of("reasoning"))

    # The rows are the roles' chat views rendered whole by the chat template, with either token builder (the
    # generic one does not know ChatML's "\n" after a sampled <|im_end|>; the loop closes every message itself).
    meta_view = [
        {"role": "system", "content": prompts.meta.system},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": MTA_1},
        {"role": "user", "content": RA_1},
        {"role": "assistant", "content": MTA_2_SEEN},
    ]
    ra_view = [
        {"role": "system", "content": prompts.reasoning.system},
        {"role": "user", "content": ra_first},
        {"role": "assistant", "content": RA_1},
        {"role": "user", "content": MTA_2_SEEN},
        {"role": "assistant", "content": RA_2},
    ]
    render = tokenizer.apply_chat_template
    expected_meta = render(meta_view, tokenize=False).removesuffix("<|im_end|>\n")  # stopped on [FINISH]: no eos
    expected_ra = render(ra_view, tokenize=False).removesuffix("\n")
    assert decoded(tokenizer, meta_row) == expected_meta
    assert decoded(tokenizer, ra_row) == expected_ra


def test_finish_token_stops_the_reasoning_agent_and_is_stripped_from_its_text(tokenizer):
    """As in the reference (the SFT dialogues end the RA's last answer with [FINISH]); only the MTA's ends the
    dialogue."""
    outputs, engine = episode(
        tokenizer,
        {"meta": [MTA_1, "Now finish. [FINISH]"], "reasoning": ["I am done [FINISH] really.", RA_2]},
    )
    assert engine.roles() == ["meta", "reasoning", "meta", "reasoning"]  # the RA's [FINISH] ended nothing
    ra_first_reply = engine.of("reasoning")[0].token_ids
    assert tokenizer.decode(ra_first_reply) == "I am done [FINISH]"  # generation stopped on it
    assert user_turn("I am done") in tokenizer.decode(engine.of("meta")[1].prompt_ids)  # stripped from the text
    assert outputs[-1].extra_fields["rema_finish_reason"] == "normal"
    assert outputs[-1].extra_fields["rema_final_answer"] == RA_2
    assert outputs[-1].extra_fields["rema_metrics"]["rema/reasoning/truncated_turn_rate"] == 0.0
    assert_token_exact(outputs[-1], engine.of("reasoning"))


def test_max_turns(tokenizer):
    outputs, engine = episode(
        tokenizer, {"meta": ["Plan A.", "Plan B."], "reasoning": ["Step A.", "Step B."]}, max_turns=2
    )
    assert engine.roles() == ["meta", "reasoning", "meta", "reasoning"]
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["max_turns", "max_turns"]
    assert outputs[-1].extra_fields["rema_final_answer"] == "Step B."
    assert_token_exact(outputs[0], engine.of("meta"))
    assert_token_exact(outputs[1], engine.of("reasoning"))


def test_single_turn_mode_is_one_round_without_finish(tokenizer):
    plan = "Factor it, then compare the roots. [FINISH] more"
    outputs, engine = episode(tokenizer, {"meta": [plan], "reasoning": [RA_2]}, prompt_set="singleturn", max_turns=1)
    assert engine.roles() == ["meta", "reasoning"]
    assert all("stop" not in call.sampling_params for call in engine.calls)  # no finish protocol at all
    assert not outputs[0].extra_fields["rema_metrics"]["rema/meta/answer_leak_rate"]
    expected_first = (
        f"Here is the question and instructions: [Question] {QUESTION} [End of Question] "
        f"[Provided Instruction] {plan} [End of Instruction]"
    )
    assert tokenizer.decode(engine.of("reasoning")[0].prompt_ids).endswith(
        user_turn(expected_first) + "\n<|im_start|>assistant\n"
    )
    assert user_turn(f"Here is the question: {QUESTION}") in tokenizer.decode(engine.of("meta")[0].prompt_ids)
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["normal", "normal"]
    assert_token_exact(outputs[0], engine.of("meta"))
    assert_token_exact(outputs[1], engine.of("reasoning"))


def test_cot_prompt_set_is_a_single_reasoning_turn(tokenizer):
    outputs, engine = episode(tokenizer, {"reasoning": [RA_2]}, prompt_set="cot")
    assert engine.roles() == ["reasoning"]
    assert [o.rema_role for o in outputs] == ["reasoning"]
    assert outputs[0].extra_fields["rema_finish_reason"] == "normal"
    assert outputs[0].extra_fields["rema_final_answer"] == RA_2
    assert_token_exact(outputs[0], engine.calls)


# ---------------------------------------------------------------------------------------------------------------
# Truncation and context overflow
# ---------------------------------------------------------------------------------------------------------------

LONG = "Let us factor the quadratic first and then check the roots again and again, carefully."


def test_truncated_message_ends_the_episode(tokenizer):
    outputs, engine = episode(tokenizer, {"meta": [LONG], "reasoning": []}, max_tokens_per_message=6)
    assert engine.roles() == ["meta"]
    assert len(engine.calls[0].token_ids) == 6 and tokenizer.eos_token_id not in engine.calls[0].token_ids
    # Every role gets a row: the RA never sampled a token, so its row is its opening prompt with nothing trained.
    meta_row, ra_row = outputs
    assert [o.rema_role for o in outputs] == ["meta", "reasoning"]
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["truncated"] * 2
    assert outputs[-1].extra_fields["rema_final_answer"] == ""
    assert_token_exact(meta_row, engine.calls)
    assert ra_row.response_mask == [0] and ra_row.response_logprobs == [0.0] and ra_row.num_turns == 0
    truncated = tokenizer.decode(engine.calls[0].token_ids)
    assert decoded(tokenizer, ra_row).endswith(
        user_turn(f"Question:\n{QUESTION}\n\nInstruction:\n{truncated}") + "\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("hf_model_type", [None, "qwen2"], ids=["default-builder", "qwen-builder"])
def test_truncated_message_is_closed_when_the_dialogue_goes_on(tokenizer, hf_model_type):
    outputs, engine = episode(
        tokenizer,
        {"meta": [LONG, "[FINISH]"], "reasoning": [RA_1, RA_2]},
        max_tokens_per_message={"meta": 6, "reasoning": 64},
        stop_when_truncated=False,
        hf_model_type=hf_model_type,
    )
    assert engine.roles() == ["meta", "reasoning", "meta", "reasoning"]
    meta_row = outputs[0]
    assert meta_row.extra_fields["rema_finish_reason"] == "normal"
    assert_token_exact(meta_row, engine.of("meta"))
    # After the 6 truncated tokens the template's message tail follows, as context (mask 0), as in a render of the
    # view: <|im_end|> and "\n", with either token builder.
    first = engine.of("meta")[0]
    after = len(first.prompt_ids) + len(first.token_ids) - len(meta_row.prompt_ids)
    closing = ["<|im_end|>", "\n"]
    closing_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), *tokenizer.encode("\n")]
    assert meta_row.response_ids[after : after + len(closing)] == closing_ids
    assert meta_row.response_mask[after : after + len(closing)] == [0] * len(closing)
    assert tokenizer.decode(meta_row.response_ids[after + len(closing) :]).startswith("<|im_start|>user\n" + RA_1)
    assert decoded(tokenizer, meta_row).count("<|im_start|>assistant\n") == 2
    metrics = meta_row.extra_fields["rema_metrics"]
    assert metrics["rema/meta/truncated_turn_rate"] == 0.5 and metrics["rema/reasoning/truncated_turn_rate"] == 0.0


def _prompt_len(tokenizer, messages: list[dict[str, str]]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)["input_ids"])


def test_context_overflow_before_a_later_turn(tokenizer):
    prompts = load_prompt_set("multiturn")
    ra_first = f"Question:\n{QUESTION}\n\nInstruction:\n{MTA_1}"
    ra_prompt = _prompt_len(
        tokenizer, [{"role": "system", "content": prompts.reasoning.system}, {"role": "user", "content": ra_first}]
    )
    ra_reply = len(tokenizer.encode(RA_1)) + 1
    cap = ra_prompt + ra_reply + 4  # room for the first RA reply, not for the MTA's long second message
    outputs, engine = episode(
        tokenizer,
        {"meta": [MTA_1, LONG], "reasoning": [RA_1]},
        max_context_tokens={"reasoning": cap},
    )
    assert engine.roles() == ["meta", "reasoning", "meta"]
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["context_overflow"] * 2
    assert outputs[-1].extra_fields["rema_final_answer"] == RA_1
    assert_token_exact(outputs[0], engine.of("meta"))
    assert_token_exact(outputs[1], engine.of("reasoning"))  # the RA row stops at its last message, under the cap
    assert len(outputs[1].prompt_ids) + len(outputs[1].response_ids) <= cap


def _meta_prompt_len(tokenizer) -> int:
    prompts = load_prompt_set("multiturn")
    return _prompt_len(
        tokenizer, [{"role": "system", "content": prompts.meta.system}, {"role": "user", "content": QUESTION}]
    )


def test_a_turn_that_starts_within_the_cap_gets_its_full_budget(tokenizer):
    """The reference's semantics: the cap is checked before a turn, not against the reply."""
    cap = _meta_prompt_len(tokenizer) + 5
    outputs, engine = episode(
        tokenizer, {"meta": [LONG, "[FINISH]"], "reasoning": [RA_1]}, max_context_tokens={"meta": cap},
        max_tokens_per_message=16, stop_when_truncated=False,
    )  # fmt: skip
    assert engine.calls[0].sampling_params["max_tokens"] == 16  # not the 5 left under the cap
    assert len(outputs[0].prompt_ids) + len(outputs[0].response_ids) > cap  # the row may go past the cap
    # ...but the MTA's chat now exceeds its cap: it may not start another turn
    assert engine.roles() == ["meta", "reasoning"]
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["context_overflow"] * 2


def test_strict_context_cap_cuts_the_reply_and_overflows(tokenizer):
    outputs, engine = episode(
        tokenizer,
        {"meta": [LONG], "reasoning": []},
        max_context_tokens={"meta": _meta_prompt_len(tokenizer) + 5},
        stop_when_truncated=False,
        strict_context_cap=True,
    )
    assert engine.calls[0].sampling_params["max_tokens"] == 5  # the budget is the room left under the cap
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["context_overflow"] * 2
    assert_token_exact(outputs[0], engine.calls)


def test_context_overflow_before_the_first_turn(tokenizer):
    outputs, engine = episode(tokenizer, {"meta": [], "reasoning": []}, max_context_tokens=10)
    assert engine.calls == []
    assert [o.rema_role for o in outputs] == ["meta", "reasoning"]  # complete groups: a row per role
    for row in outputs:
        assert row.extra_fields["rema_finish_reason"] == "context_overflow"
        assert row.extra_fields["rema_final_answer"] == ""
        assert row.response_mask == [0] and row.response_logprobs == [0.0]  # nothing is trained
        assert row.extra_fields["min_global_steps"] == row.extra_fields["max_global_steps"] == 3  # from the row
        assert row.as_dict()["responses"].numel() == 1  # veRL's as_dict needs a non-empty response
    assert len(outputs[0].prompt_ids) + 1 == _meta_prompt_len(tokenizer)  # the MTA's whole opening prompt
    assert decoded(tokenizer, outputs[1]).endswith(
        user_turn(f"Question:\n{QUESTION}\n\nInstruction:\n") + "\n<|im_start|>assistant\n"
    )


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


def test_empty_replies_continue_the_dialogue(tokenizer):
    outputs, engine = episode(
        tokenizer,
        {"meta": ["", "[FINISH]"], "reasoning": [Reply(tokens=[]), ""]},
    )
    assert engine.roles() == ["meta", "reasoning", "meta", "reasoning"]
    assert tokenizer.decode(engine.of("reasoning")[0].prompt_ids).endswith(
        user_turn(f"Question:\n{QUESTION}\n\nInstruction:\n") + "\n<|im_start|>assistant\n"
    )
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["normal", "normal"]
    assert outputs[-1].extra_fields["rema_final_answer"] == ""
    assert_token_exact(outputs[0], engine.of("meta"))
    assert_token_exact(outputs[1], engine.of("reasoning"))
    # The RA's zero-token turn was closed with a mask-0 end-of-turn token before the MTA's next message.
    second = engine.of("reasoning")[1]
    assert user_turn("[FINISH]") in tokenizer.decode(second.prompt_ids)
    metrics = outputs[0].extra_fields["rema_metrics"]
    assert metrics["rema/meta/empty_turn_rate"] == 1.0  # "" and a reply that is only [FINISH]
    assert metrics["rema/reasoning/empty_turn_rate"] == 1.0


def test_reply_that_is_only_finish(tokenizer):
    outputs, engine = episode(tokenizer, {"meta": ["[FINISH]"], "reasoning": [RA_2]})
    assert engine.roles() == ["meta", "reasoning"]
    assert tokenizer.decode(engine.calls[1].prompt_ids).endswith(
        user_turn(f"Question:\n{QUESTION}\n\nInstruction:\n[FINISH]") + "\n<|im_start|>assistant\n"
    )
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["normal", "normal"]
    assert outputs[-1].extra_fields["rema_final_answer"] == RA_2


def test_question_falls_back_to_the_prompt_and_missing_question_names_the_row(tokenizer):
    row = {**ROW, "question": float("nan")}
    outputs, engine = episode(tokenizer, {"meta": ["[FINISH]"], "reasoning": [RA_2]}, row=row)
    assert user_turn(ROW["raw_prompt"][0]["content"]) in tokenizer.decode(engine.calls[0].prompt_ids)

    bad = {**ROW, "question": "   ", "raw_prompt": [{"role": "system", "content": "x"}], "prompt": None}
    with pytest.raises(ValueError, match=r"row\(index=7, uid=uid-7, data_source=unit\) has no usable question"):
        episode(tokenizer, {"meta": [], "reasoning": []}, row=bad)


def test_engine_abort_is_an_error_naming_the_row(tokenizer):
    with pytest.raises(RuntimeError, match=r"index=7.*aborted the meta turn"):
        episode(tokenizer, {"meta": [Reply(tokens=[], stop_reason="aborted")], "reasoning": []})


def test_without_log_probs(tokenizer):
    outputs, engine = episode(
        tokenizer, {"meta": [MTA_1, "[FINISH]"], "reasoning": [RA_1, RA_2]}, sampling={**SAMPLING, "logprobs": False}
    )
    assert_token_exact(outputs[0], engine.of("meta"), logprobs=False)
    assert_token_exact(outputs[1], engine.of("reasoning"), logprobs=False)


def test_configuration_errors(tokenizer):
    engine = ScriptedEngine(tokenizer, {}, {}, "<|im_end|>")

    async def build(**kwargs):
        return make_loop(tokenizer, engine, **kwargs)

    errors = (ValueError, InstantiationException)  # hydra wraps the loop's ValueError, message included
    with pytest.raises(errors, match="rema.rollout.max_turn"):
        asyncio.run(build(max_turn=3))
    with pytest.raises(errors, match="use_v1"):
        asyncio.run(build(use_v1=False))
    with pytest.raises(errors, match="needs a prompt set with a meta role"):
        asyncio.run(build(prompt_set="cot", finish_token="[DONE]"))
    with pytest.raises(errors, match="positive integer"):
        asyncio.run(build(max_tokens_per_message={"meta": 0}))
    loop = asyncio.run(build(prompt_set="singleturn", max_context_tokens={"meta": 100}))
    assert loop.settings.finish is None  # "auto": the singleturn set has no finish token
    assert loop._context_caps == {Role.META: 100, Role.REASONING: 4096}  # a role left out keeps the default
    uncapped = asyncio.run(build(prompt_set="singleturn", max_context_tokens=None))
    assert uncapped._context_caps == {Role.META: 1024, Role.REASONING: 1024}  # prompt + response - message
    with pytest.raises(errors, match="max_model_len=4000: the engine would cut replies"):
        make_agent_loop(trainer_config({}, max_model_len=4000), engine, tokenizer)  # 4096 + 512 do not fit


# ---------------------------------------------------------------------------------------------------------------
# The protocol state alone
# ---------------------------------------------------------------------------------------------------------------


def test_dialogue_state_machine():
    config = ReMARolloutConfig(prompt_set="multiturn", max_turns=2)
    dialogue = Dialogue("Q?", config)
    assert dialogue.next_role() is Role.META
    with pytest.raises(RuntimeError, match="protocol violation"):
        dialogue.record(Role.REASONING, "too early")
    with pytest.raises(RuntimeError, match="does not exist yet"):
        dialogue.view(Role.REASONING)
    dialogue.record(Role.META, "plan")
    assert [m["role"] for m in dialogue.view(Role.REASONING)] == ["system", "user"]
    dialogue.record(Role.REASONING, "work")
    assert [m["role"] for m in dialogue.view(Role.META)] == ["system", "user", "assistant", "user"]
    dialogue.record(Role.META, "ok [FINISH] tail")
    assert dialogue.messages[-1].text == "ok [FINISH]" and dialogue.messages[-1].finished
    assert not dialogue.done
    dialogue.record(Role.REASONING, "\\boxed{1}")
    assert dialogue.finish_reason is FinishReason.NORMAL and dialogue.final_answer == "\\boxed{1}"
    with pytest.raises(RuntimeError, match="has ended"):
        dialogue.next_role()

    no_finish = Dialogue("Q?", ReMARolloutConfig(prompt_set="singleturn", max_turns=1))
    no_finish.record(Role.META, "plan [FINISH]")
    assert not no_finish.messages[0].finished  # no finish protocol: the tag is plain text
    no_finish.record(Role.REASONING, "answer")
    assert no_finish.finish_reason is FinishReason.NORMAL

    overflow = Dialogue("Q?", config)
    overflow.overflow()
    assert overflow.finish_reason is FinishReason.CONTEXT_OVERFLOW and overflow.final_answer == ""
    with pytest.raises(ValueError, match="non-empty question"):
        Dialogue(" ", config)


def test_cached_openings_equal_fresh_renders():
    """Dialogue renders each role's opening once (the RA's once more after the MTA's first message): the cached
    texts must be the prompt set's templates filled as a fresh dialogue fills them, in new dicts every call."""
    config = ReMARolloutConfig(prompt_set="multiturn", max_turns=3)
    prompts = config.prompts
    dialogue = Dialogue("Q?", config)
    ra_before = dialogue.opening(Role.REASONING)  # a role that never got a turn: empty instruction
    dialogue.record(Role.META, "plan")
    ra_after = dialogue.opening(Role.REASONING)
    assert ra_before[1]["content"] != ra_after[1]["content"] and "plan" in ra_after[1]["content"]
    dialogue.record(Role.REASONING, "work")
    dialogue.record(Role.META, "more")
    fresh = Dialogue("Q?", config)
    fresh.record(Role.META, "plan")
    for role in (Role.META, Role.REASONING):
        assert dialogue.opening(role) == fresh.opening(role)
        assert dialogue.opening(role) is not dialogue.opening(role)
        assert dialogue.opening(role)[0] is not dialogue.opening(role)[0], "callers may keep or extend them"
    assert dialogue.opening(Role.META)[0]["content"] == prompts.meta.system
    assert dialogue.view(Role.REASONING)[2:] == [
        {"role": "assistant", "content": "work"},
        {"role": "user", "content": "more"},
    ]


# ---------------------------------------------------------------------------------------------------------------
# veRL's v1 post-processing: reward extra_info, reward copy, TransferQueue columns
# ---------------------------------------------------------------------------------------------------------------


def test_v1_postprocess_scores_the_final_answer_and_stores_the_role(tokenizer, monkeypatch):
    agent_loop_tq = pytest.importorskip("verl.trainer.ppo.v1.agent_loop_tq")
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    outputs, engine = episode(tokenizer, {"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]})

    seen: dict[str, Any] = {}

    def compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs):
        seen.update(solution_str=solution_str, extra_info=dict(extra_info), ground_truth=ground_truth)
        return {"score": 1.0 if extra_info["rema_final_answer"].endswith("\\boxed{2}.") else 0.0, "custom": 0.5}

    class _ComputeScore:  # stands in for RewardLoopWorker.compute_score.remote (naive reward manager)
        async def remote(self, data):
            manager = NaiveRewardManager(config=None, tokenizer=tokenizer, compute_score=compute_score)
            return await manager.run_single(data)

    class RewardHandle:
        compute_score = _ComputeScore()

    put: dict[str, Any] = {}

    async def kv_batch_put(keys, fields, tags, partition_id):
        put.update(keys=keys, fields=fields, tags=tags, partition_id=partition_id)

    monkeypatch.setattr(agent_loop_tq.tq, "async_kv_batch_put", kv_batch_put)
    worker_cls = agent_loop_tq.AgentLoopWorkerTQ.__ray_metadata__.modified_class
    worker = object.__new__(worker_cls)  # no __init__: it would connect to TransferQueue
    worker.reward_loop_worker_handles = [RewardHandle()]
    worker.processor = None
    worker.tokenizer = tokenizer
    worker.mm_processor_kwargs = {}
    worker.distillation_enabled = False
    kwargs = {
        **ROW,
        "reward_model": {"ground_truth": "2", "style": "rule"},
        "extra_info": {"index": 7, "split": "train"},
        "session_id": 0,
    }
    asyncio.run(worker._agent_loop_postprocess(outputs, False, **kwargs))

    # The reward function saw the RA's row and the episode's facts in extra_info.
    info = seen["extra_info"]
    assert info["rema_final_answer"] == RA_2 and info["rema_finish_reason"] == "normal"
    assert info["rema_role"] == "reasoning" and info["split"] == "train"
    # solution_str is not the final answer: at best the RA's whole view after its first prompt, and in veRL 0.9.1
    # AgentLoopWorker._compute_score lays the attention mask out as right-padded [prompt + response] while the naive
    # manager reads its last `response_length` entries as the response, so for a list of outputs it can come out
    # truncated or empty. The reward must score extra_info["rema_final_answer"].
    assert seen["solution_str"] != RA_2

    # Both rows got the reward at their last token; the role is a column of its own.
    assert put["keys"] == ["uid-7_0_0", "uid-7_0_1"]
    fields = put["fields"]
    assert list(fields["rema_role"]) == ["meta", "reasoning"]
    for i, row in enumerate(outputs):
        rm_scores = fields["rm_scores"][i]
        assert rm_scores[-1].item() == 1.0 and rm_scores[:-1].abs().sum().item() == 0.0
        assert fields["response_mask"][i].tolist() == row.response_mask
        np.testing.assert_allclose(fields["rollout_log_probs"][i].tolist(), row.response_logprobs, rtol=1e-6)
        extra = fields["extra_fields"][i]
        assert extra["reward_extra_info"]["custom"] == 0.5 and extra["rema_role"] == ["meta", "reasoning"][i]
    assert all(tag["min_global_steps"] == 5 for tag in put["tags"])
    assert not any(math.isnan(v) for v in outputs[0].extra_fields["rema_metrics"].values() if v is not None)
