"""SFT rows are the rollout's rows: same tokens, and the loss mask is 1 exactly on what the rollout samples.

For the same dialogue, the SFT row of each role (veRL's MultiTurnSFTDataset, as narrowed by ReMASFTDataset) is
compared token by token with the row the real `rema` agent loop builds (veRL's continuous-token builder), driven by
a scripted engine that replies with the dialogue's messages the way vLLM would: the message's tokens, then the eos
token, or cut after the token that completes a stop string (the MTA's [FINISH]).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from omegaconf import OmegaConf
from transformers import AutoTokenizer
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.workers.rollout.replica import TokenOutput

import verl_rema.rollout  # noqa: F401  (registers the agent loop)
from verl_rema.data.schema import BadRowPolicy
from verl_rema.embedded.dialogues import make_dialogues
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import Role
from verl_rema.rollout.standalone import make_agent_loop, trainer_config
from verl_rema.sft.data import MAMRP_ASSET, ROW_SCHEMA
from verl_rema.sft.dataset import ReMASFTDataset
from verl_rema.sft.dialogues import TwoRoleDialogue, read_plain
from verl_rema.sft.views import ViewStats, clean_turns, sft_rows

PROMPTS = load_prompt_set("multiturn")
SYSTEMS = {Role.META: PROMPTS.meta.system, Role.REASONING: PROMPTS.reasoning.system}


class DialogueEngine:
    """Replies with the dialogue's next message of the role it recognises from the system prompt, as vLLM samples:
    the text's tokens, then eos, unless a stop string ends it first (cut after the token completing it)."""

    def __init__(self, tokenizer: Any, messages: dict[Role, list[str]]):
        self.tokenizer, self.messages = tokenizer, {role: list(texts) for role, texts in messages.items()}

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **_: Any):
        text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        (role,) = [r for r, s in SYSTEMS.items() if text.startswith(f"<|im_start|>system\n{s}<|im_end|>")]
        ids = self.tokenizer.encode(self.messages[role].pop(0), add_special_tokens=False)
        for stop in sampling_params.get("stop") or []:
            hit = next((k for k in range(1, len(ids) + 1) if stop in self.tokenizer.decode(ids[:k])), None)
            if hit is not None:
                return TokenOutput(token_ids=ids[:hit], stop_reason="completed", num_preempted=0)
        return TokenOutput(token_ids=[*ids, self.tokenizer.eos_token_id], stop_reason="completed", num_preempted=0)


def rollout_rows(tokenizer, dialogue: TwoRoleDialogue, turns) -> dict[Role, tuple[list[int], list[int]]]:
    """(token ids, per-token action mask) of each role's rollout row for the dialogue's messages."""
    engine = DialogueEngine(tokenizer, {role: [t.text for t in turns if t.role is role] for role in Role})
    settings = {
        "prompt_set": "multiturn",
        "max_turns": dialogue.rounds,
        "max_tokens_per_message": 100_000,
        "max_context_tokens": 1_000_000,
    }
    config = trainer_config(settings, prompt_length=1_000_000, response_length=1_000_000)
    row = {"question": dialogue.question, "index": 0, "uid": "u", "data_source": "sft-test", "global_steps": 0}

    async def play():  # built inside the event loop, as veRL's worker builds it
        loop = make_agent_loop(config, engine, tokenizer, hf_model_type="qwen2")
        return await loop.run({"temperature": 1.0, "logprobs": False}, **row)

    outputs = asyncio.run(play())
    rows = {}
    for output in outputs:
        assert output.extra_fields["rema_finish_reason"] == "normal"
        ids = list(output.prompt_ids) + list(output.response_ids)
        rows[Role(output.rema_role)] = (ids, [0] * len(output.prompt_ids) + list(output.response_mask))
    return rows


def sft_items(tokenizer, dialogue: TwoRoleDialogue, tmp_path, dataset_cls=ReMASFTDataset):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sft_rows(dialogue, PROMPTS, (Role.META, Role.REASONING), "append", ViewStats())
    path = tmp_path / f"{dataset_cls.__name__}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), path)
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 100_000, "truncation": "error"})
    dataset = dataset_cls(parquet_files=str(path), tokenizer=tokenizer, config=config)
    return {Role(rows[i]["rema_role"]): dataset[i] for i in range(len(rows))}


@pytest.fixture(scope="module")
def tokenizer(embedded):
    return AutoTokenizer.from_pretrained(str(embedded.model))


def _dialogues() -> list[TwoRoleDialogue]:
    mamrp = read_plain(MAMRP_ASSET, BadRowPolicy("error"))
    # the arithmetic dialogue; a LIMO one; one whose MTA ends without [FINISH]; one with text after [FINISH]
    return [make_dialogues(1, seed=5)[0], mamrp[0], mamrp[2], mamrp[551]]


@pytest.mark.parametrize("index", range(4), ids=["embedded", "limo", "limo-no-finish", "limo-text-after-finish"])
def test_sft_row_equals_the_rollout_row_token_by_token(tokenizer, tmp_path, index):
    dialogue = _dialogues()[index]
    turns = clean_turns(dialogue, PROMPTS.finish_token, "append", ViewStats())
    rollout = rollout_rows(tokenizer, dialogue, turns)
    sft = sft_items(tokenizer, dialogue, tmp_path)
    for role in Role:
        ids, mask = rollout[role]
        sft_ids, sft_mask = sft[role]["input_ids"].tolist(), sft[role]["loss_mask"].tolist()
        assert sft_ids[: len(ids)] == ids, role  # the same tokens ...
        assert sft_mask[: len(ids)] == mask, role  # ... trained on exactly the tokens the rollout samples
        assert sum(mask) > 0
        # The SFT row only adds the template's close of the role's last message, untrained.
        rest = tokenizer.convert_ids_to_tokens(sft_ids[len(ids) :])
        assert rest == (["<|im_end|>", "Ċ"] if role is Role.META else ["Ċ"]), (role, rest)
        assert not any(sft_mask[len(ids) :])


def test_the_loss_ends_each_message_with_its_end_of_turn_token_except_after_finish(tokenizer, tmp_path):
    dialogue = _dialogues()[0]
    sft = sft_items(tokenizer, dialogue, tmp_path)
    for role in Role:
        ids, mask = sft[role]["input_ids"].tolist(), sft[role]["loss_mask"].tolist()
        trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
        texts = [t.text for t in dialogue.turns if t.role is role]
        if role is Role.META:  # "First compute a+b.<|im_end|>Then subtract c. [FINISH]": no eos after [FINISH]
            assert trained == f"{texts[0]}<|im_end|>{texts[1]}"
        else:
            assert trained == "".join(f"{text}<|im_end|>" for text in texts)


def test_veRLs_own_mask_also_trains_the_template_separator(tokenizer, tmp_path):
    # Why ReMASFTDataset exists: veRL's dataset puts the loss on ChatML's "\n" after <|im_end|> (never sampled)
    # and on <|im_end|> after [FINISH] (the rollout stops at the stop string). Everything else agrees.
    dialogue = _dialogues()[0]
    ours = sft_items(tokenizer, dialogue, tmp_path)
    upstream = sft_items(tokenizer, dialogue, tmp_path, dataset_cls=MultiTurnSFTDataset)
    for role in Role:
        assert ours[role]["input_ids"].tolist() == upstream[role]["input_ids"].tolist()
        ids = ours[role]["input_ids"].tolist()
        extra = [
            tokenizer.convert_ids_to_tokens(ids[i])
            for i, (a, b) in enumerate(zip(ours[role]["loss_mask"].tolist(), upstream[role]["loss_mask"].tolist(), strict=True))
            if a != b
        ]  # fmt: skip
        assert extra == (["Ċ", "<|im_end|>", "Ċ"] if role is Role.META else ["Ċ", "Ċ"]), (role, extra)
