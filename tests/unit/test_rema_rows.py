"""Training rows beyond ChatML, and complete (prompt, role) groups.

Token-exact rows must equal a whole-conversation render of each role's view (modulo what the model sampled) for
Qwen2.5's ChatML (with veRL's Qwen token builder), a ChatML model whose ``model_type`` veRL does not map to its Qwen
builder (the generic builder does not add the ``\\n`` after a sampled ``<|im_end|>``), a ChatML base model whose
eos is not its end-of-turn token, and a Llama-3.1-style template (bos, header tokens, trimmed contents,
``<|eot_id|>``). And every episode leaves one row per role, so GRPO groups always have ``rollout.n`` members.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from verl.utils.tokenizer import normalize_token_ids

from tests.unit.rollout_harness import ROW, TEMPLATES, Reply, assert_token_exact, episode, make_tokenizer
from verl_rema.advantages import compute_rema_grpo_advantage
from verl_rema.advantages.row_roles import rows_with_roles
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import FINISH_REASON_FIELD, ROLES, RowKey
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue
from verl_rema.rollout.rows import message_tail, missing_tail

MTA_1 = "Let us factor the quadratic first."
RA_1 = "The roots are 2 and 3."
MTA_2 = "Then the smaller root is 2. [FINISH]"
RA_2 = "So the answer is \\boxed{2}."

CASES = [  # (template, config.json model_type: which of veRL's token builders the loop gets)
    ("chatml", "qwen2"),
    ("chatml", "llama"),  # ChatML, but veRL's generic builder
    ("chatml_base_eos", "qwen2"),
    ("llama3", "llama"),
]


@pytest.fixture(scope="module")
def tokenizers():
    return {name: make_tokenizer(template) for name, template in TEMPLATES.items()}


def views(question: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The two roles' final views of the scripted dialogue, as the protocol renders them."""
    dialogue = Dialogue(question, ReMARolloutConfig(prompt_set="multiturn"))
    for role, text in zip(("meta", "reasoning", "meta", "reasoning"), (MTA_1, RA_1, MTA_2, RA_2), strict=True):
        dialogue.record(dialogue.next_role(), text)
        assert dialogue.messages[-1].role.value == role
    meta, reasoning = (dialogue.view(role) for role in dialogue.roles)
    return meta, reasoning


@pytest.mark.parametrize(("template", "model_type"), CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_rows_equal_a_whole_render_of_the_view(tokenizers, template, model_type):
    tokenizer = tokenizers[template]
    spec = TEMPLATES[template]
    outputs, engine = episode(
        tokenizer,
        {"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]},
        hf_model_type=model_type,
        end_of_turn=spec.end_of_turn,
    )
    end_of_turn = tokenizer.convert_tokens_to_ids(spec.end_of_turn)
    for call in engine.calls:  # every message stops on the template's end of turn, whatever the eos says
        assert end_of_turn in call.sampling_params["stop_token_ids"]
        assert tokenizer.eos_token_id in call.sampling_params["stop_token_ids"]
    assert [o.extra_fields[FINISH_REASON_FIELD] for o in outputs] == ["normal", "normal"]
    tail = message_tail(tokenizer, {})
    for row, view, role in zip(outputs, views(ROW["question"]), ROLES, strict=True):
        assert_token_exact(row, engine.of(role))
        last_own = max(i for i, message in enumerate(view) if message["role"] == "assistant")
        view = view[: last_own + 1]  # the row ends with the role's last message
        render = normalize_token_ids(tokenizer.apply_chat_template(view, tokenize=True, add_generation_prompt=False))
        full = row.prompt_ids + row.response_ids
        assert full == render[: len(full)], (role, tokenizer.decode(full)[-200:], tokenizer.decode(render)[-200:])
        # the row stops right after the role's last sampled token; the render goes on with the unsampled tail
        assert render[len(full) :] == missing_tail(full, tail), role


def test_message_tail_of_each_template(tokenizers):
    def ids(tokenizer, *tokens):
        return [tid for token in tokens for tid in tokenizer.encode(token)]

    chatml = tokenizers["chatml"]
    assert message_tail(chatml, {}) == ids(chatml, "<|im_end|>", "\n")
    llama = tokenizers["llama3"]
    assert message_tail(llama, {}) == ids(llama, "<|eot_id|>")
    eot, nl = ids(chatml, "<|im_end|>", "\n")
    assert missing_tail([5, eot], [eot, nl]) == [nl]  # stopped on <|im_end|>: the separator is missing
    assert missing_tail([5, 6], [eot, nl]) == [eot, nl]  # cut by its budget or a stop string
    assert missing_tail([], [eot, nl]) == [eot, nl]  # an empty reply
    assert missing_tail([5, eot, nl], [eot, nl]) == []


def test_every_episode_leaves_one_row_per_role_so_role_groups_are_complete(tokenizers):
    """Episodes that end before the RA speaks (MTA truncated in round 1, or its chat over the cap) still leave an
    RA row: GRPO groups per (prompt, role) then always have n members and no group is a singleton."""
    tokenizer = tokenizers["chatml"]
    long = "Let us factor the quadratic first and then check the roots again and again, carefully."
    scripts = [  # four samples of one prompt: normal, MTA truncated, normal, normal
        ({"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]}, {}),
        ({"meta": [long], "reasoning": []}, {"max_tokens_per_message": {"meta": 6}}),
        ({"meta": [MTA_2], "reasoning": ["\\boxed{2}"]}, {}),
        ({"meta": [MTA_2], "reasoning": ["\\boxed{3}"]}, {}),
    ]
    question_2 = {**ROW, "uid": "uid-8", "question": "What is 1+1?"}
    rows, keys = [], []
    for uid, row, overflow in (("uid-7", ROW, False), ("uid-8", question_2, True)):
        for session, (script, settings) in enumerate(scripts):
            if overflow and session == 1:
                script, settings = {"meta": [], "reasoning": []}, {"max_context_tokens": 10}  # over the cap at once
            outputs, _ = episode(tokenizer, script, row=row, **settings)
            assert len(outputs) == 2
            rows += outputs
            keys += [f"{uid}_{session}_{i}" for i in range(len(outputs))]
    groups = Counter((RowKey.parse(k).uid, o.rema_role) for k, o in zip(keys, rows, strict=True))
    assert set(groups.values()) == {len(scripts)}  # n members per (prompt, role)

    # Advantages as the rema_sync trainer computes them: the idle rows' advantage touches no token.
    length = max(len(o.response_ids) for o in rows)
    mask = torch.zeros(len(rows), length)
    rewards = torch.zeros(len(rows), length)
    for i, o in enumerate(rows):
        mask[i, : len(o.response_mask)] = torch.tensor(o.response_mask, dtype=torch.float32)
        score = float(o.extra_fields["rema_final_answer"].endswith("\\boxed{2}."))
        rewards[i, len(o.response_mask) - 1] = score
    roles = np.array([o.rema_role for o in rows], dtype=object)
    with rows_with_roles(roles):
        adv, _ = compute_rema_grpo_advantage(rewards, mask, index=[RowKey.parse(k).uid for k in keys])
    idle = [i for i, o in enumerate(rows) if sum(o.response_mask) == 0]
    assert [(keys[i], rows[i].rema_role) for i in idle] == [
        ("uid-7_1_1", "reasoning"),  # the MTA was truncated in round 1
        ("uid-8_1_0", "meta"),  # over the cap before the first turn
        ("uid-8_1_1", "reasoning"),
    ]
    assert adv[idle].abs().sum() == 0


def test_prompt_sets_without_meta_leave_one_row(tokenizers):
    outputs, engine = episode(tokenizers["chatml"], {"reasoning": [RA_2]}, prompt_set="cot")
    assert [o.rema_role for o in outputs] == ["reasoning"] and len(engine.calls) == 1
    assert load_prompt_set("cot").meta is None


def test_truncated_reply_is_not_mistaken_for_a_stop(tokenizers):
    """A reply that used its whole budget and ends on a non-stop token is truncated; one whose budget ran out on
    the end-of-turn token stopped on its own."""
    tokenizer = tokenizers["chatml"]
    exact = len(tokenizer.encode(MTA_1)) + 1  # the message plus <|im_end|> fills the budget exactly
    outputs, _ = episode(
        tokenizer,
        {"meta": [MTA_1, Reply("[FINISH]")], "reasoning": [RA_1, RA_2]},
        max_tokens_per_message={"meta": exact, "reasoning": 64},
    )
    assert outputs[-1].extra_fields[FINISH_REASON_FIELD] == "normal"
