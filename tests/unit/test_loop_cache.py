"""verl_rema/rollout/loop_cache.py: what the agent loop derives once per worker, and the two render memos, which
must return exactly what the uncached calls return (the streams stay token-exact: test_rema_rows checks the rows)."""

from __future__ import annotations

import asyncio
import random

import pytest
import torch
from verl.experimental.agent_loop.agent_loop import AgentLoopBase
from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

from tests.unit.rollout_harness import ROW, SAMPLING, TEMPLATES, ScriptedEngine, make_tokenizer
from verl_rema.losses.turns import count_turns
from verl_rema.prompts import load_prompt_set
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.fast_render import template_encoder
from verl_rema.rollout.loop_cache import (
    SCAFFOLD_MESSAGES,
    BoundedMemo,
    init_agent_loop,
    loop_setup,
    memoize_scaffold_renders,
)
from verl_rema.rollout.rema_agent_loop import ReMAAgentLoop, count_runs
from verl_rema.rollout.rows import message_tail
from verl_rema.rollout.standalone import make_agent_loop, trainer_config


@pytest.fixture(scope="module")
def tokenizers():
    return {name: make_tokenizer(template) for name, template in TEMPLATES.items()}


def test_setup_is_derived_once_per_config_and_tokenizer_and_equals_the_uncached_derivation(tokenizers):
    tokenizer = tokenizers["chatml"]
    config = trainer_config({"max_turns": 2, "max_tokens_per_message": {"meta": 64}})
    first = loop_setup(config, config.data, tokenizer, {}, ReMAAgentLoop._caps)
    assert loop_setup(config, config.data, tokenizer, {}, ReMAAgentLoop._caps) is first
    assert first.settings == ReMARolloutConfig.from_config(config.rema.rollout)
    assert first.tail == message_tail(tokenizer, {})
    assert first.context_caps == ReMAAgentLoop._caps(config, first.settings)
    assert first.stop_token_ids == sorted({tokenizer.eos_token_id, first.tail[0]})
    other = trainer_config({"max_turns": 2, "max_tokens_per_message": {"meta": 64}})  # equal, another object
    assert loop_setup(other, other.data, tokenizer, {}, ReMAAgentLoop._caps) is not first
    llama = loop_setup(config, config.data, tokenizers["llama3"], {}, ReMAAgentLoop._caps)
    assert llama is not first
    assert first.encoder is not None and first.encoder.tokenizer is tokenizer, "each tokenizer its own encoder"
    assert llama.encoder is not None and llama.encoder.tokenizer is tokenizers["llama3"]


def test_a_bad_config_fails_every_time(tokenizers):
    config = trainer_config({"max_turns": 0})
    for _ in range(2):
        with pytest.raises(ValueError, match="max_turns must be a positive integer"):
            loop_setup(config, config.data, tokenizers["chatml"], {}, ReMAAgentLoop._caps)


def test_bounded_memo_evicts_the_least_recently_used():
    memo = BoundedMemo(2)
    assert memo.get_or_make("a", lambda: 1) == 1 and memo.get_or_make("b", lambda: 2) == 2
    assert memo.get_or_make("a", lambda: 99) == 1  # a hit, now the most recent
    memo.get_or_make("c", lambda: 3)
    assert len(memo) == 2 and memo.get_or_make("b", lambda: 22) == 22  # b was evicted


@pytest.mark.parametrize("with_encoder", [False, True], ids=["memo", "memo+encoder"])
@pytest.mark.parametrize(("template", "model_type"), [("chatml", "qwen2"), ("chatml", None), ("llama3", "llama")])
def test_scaffold_memo_merges_exactly_as_veRL_does(tokenizers, template, model_type, with_encoder):
    assert len(SCAFFOLD_MESSAGES) == 2, "veRL's synthetic prefix messages were found"
    tokenizer = tokenizers[template]
    plain = create_continuous_token_builder(tokenizer, hf_model_type=model_type, chat_template_kwargs={})
    cached = create_continuous_token_builder(tokenizer, hf_model_type=model_type, chat_template_kwargs={})
    memo: dict = {}
    encoder = template_encoder(tokenizer, {}) if with_encoder else None
    memoize_scaffold_renders(cached, memo, encoder)
    wrapped = cached._render_tokens
    memoize_scaffold_renders(cached, memo, encoder)
    assert cached._render_tokens is wrapped, "a builder is wrapped once (veRL's worker shares it across episodes)"
    chat = [{"role": "system", "content": "Plan."}, {"role": "user", "content": "What is 2+3?"}]
    stream = plain.build_initial_tokens(chat)
    assert cached.build_initial_tokens(chat) == stream, "a render that is not the scaffold still renders"
    for k, text in enumerate(["Factor first.", "  The roots are 2 and 3. ", "\\boxed{2} [FINISH]", ""]):
        previous, chat = (
            chat,
            [*chat, {"role": "assistant", "content": f"reply {k}"}, {"role": "user", "content": text}],
        )
        expected = plain.merge_context_tokens(previous, chat, stream)
        got = cached.merge_context_tokens(previous, chat, stream)
        assert got == expected
        stream = expected.token_ids
    assert 1 <= len(memo) <= 2, "only the constant scaffold renders are kept"


def test_episodes_of_one_prompt_render_the_mta_opening_once(tokenizers, monkeypatch):
    tokenizer = tokenizers["chatml"]
    prompts = load_prompt_set("multiturn")
    systems = {"meta": prompts.meta.system, "reasoning": prompts.reasoning.system}
    calls = []
    original = AgentLoopBase.__init__

    def spy_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        build = self.continuous_token_builder.build_initial_tokens
        self.continuous_token_builder.build_initial_tokens = lambda view, **kw: calls.append(view) or build(view)

    monkeypatch.setattr(AgentLoopBase, "__init__", spy_init)
    config = {"max_turns": 1, "stop_when_truncated": False}
    engine = ScriptedEngine(tokenizer, systems, {"meta": ["Plan A.", "Plan B."], "reasoning": ["2", "3"]}, "<|im_end|>")

    async def play():
        shared = trainer_config(config)  # one worker: one config object, two episodes of one prompt
        loops = [make_agent_loop(shared, engine, tokenizer) for _ in range(2)]
        return [await loop.run(dict(SAMPLING), **ROW) for loop in loops]

    first, second = asyncio.run(play())
    assert first[0].prompt_ids == second[0].prompt_ids, "both MTA rows open with the same prompt"
    meta_opening_renders = [view for view in calls if view[0]["content"] == prompts.meta.system]
    assert len(meta_opening_renders) == 1
    assert len(calls) == 3, "the RA's openings differ (they hold the MTA's message) and are rendered each time"


def test_later_episodes_of_a_worker_copy_the_base_state(tokenizers):
    """veRL's AgentLoopBase.__init__ runs once per (config, tokenizer, ...): a later loop has the attributes a fresh
    init gives, its own server client, and shares the (stateless) token builder."""
    tokenizer = tokenizers["chatml"]
    config = trainer_config({"max_turns": 1})
    servers = [object(), object()]

    async def build():
        return [make_agent_loop(config, server, tokenizer, "qwen2") for server in servers]

    first, second = asyncio.run(build())
    assert second.server_manager is servers[1] and first.server_manager is servers[0]
    assert second.continuous_token_builder is first.continuous_token_builder
    reference = object.__new__(ReMAAgentLoop)  # what veRL's own init sets for the second episode
    AgentLoopBase.__init__(reference, **_base_kwargs(config, servers[1], tokenizer, "qwen2"))
    assert set(vars(reference)) <= set(vars(second))
    for name, value in vars(reference).items():
        if name not in ("continuous_token_builder", "loop"):
            assert getattr(second, name) == value, name
    assert type(second.continuous_token_builder) is type(reference.continuous_token_builder)

    async def other_tokenizer():
        return make_agent_loop(config, servers[0], tokenizers["llama3"], "llama")

    third = asyncio.run(other_tokenizer())
    assert third.continuous_token_builder is not first.continuous_token_builder
    assert third.tokenizer is tokenizers["llama3"]


def test_positional_or_unknown_arguments_run_the_base_init():
    calls = []
    loop = type("Loop", (), {})()
    init_agent_loop(loop, lambda *a, **k: calls.append((a, k)), (1,), {"server_manager": 2})
    init_agent_loop(loop, lambda *a, **k: calls.append((a, k)), (), {"server_manager": 2, "surprise": 3})
    assert len(calls) == 2


def test_count_runs_is_count_turns_of_one_row():
    rng = random.Random(0)
    for _ in range(500):
        mask = [rng.choice([0, 1, 1]) for _ in range(rng.randint(0, 20))]
        assert count_runs(mask) == (int(count_turns(torch.tensor([mask]))[0]) if mask else 0), mask


def _base_kwargs(config, server, tokenizer, model_type):
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    return {
        "trainer_config": DictConfigWrap(config=config),
        "server_manager": server,
        "tokenizer": tokenizer,
        "processor": None,
        "hf_model_type": model_type,
        "dataset_cls": RLHFDataset,
        "data_config": DictConfigWrap(config.data),
        "tools": ToolListWrap([]),
    }
