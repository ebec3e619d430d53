"""The pure parts of ``benchmarks/bench_vs_lockstep.py`` and ``benchmarks/lockstep.py`` (the authors' design): the
length plan and seeds both designs share, the lockstep turn schedule, prompts re-rendered from text, rows
re-encoded from text, and our side's per-message budget and seed. No engine: a fake ``generate``."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from verl.workers.rollout.replica import TokenOutput

from tests.unit.rollout_harness import TEMPLATES, make_tokenizer
from verl_rema.protocol import FinishReason, Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def modules():
    loaded = {name: _load(name) for name in ("rollout_records", "bench_rema_rollout", "lockstep", "bench_vs_lockstep")}
    yield SimpleNamespace(**loaded)
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(TEMPLATES["chatml"])


def test_length_plan_depends_on_the_message_only(modules):
    plan = modules.lockstep.LengthPlan(32, 0.5, seed=3)
    budgets = {(e, r, t): plan.budget(e, r, t) for e in range(20) for r in ("meta", "reasoning") for t in (1, 2, 3)}
    assert all(16 <= b <= 48 for b in budgets.values())
    assert len(set(budgets.values())) > 10, "a spread gives different lengths"
    again = {key: plan.budget(*key) for key in reversed(list(budgets))}
    assert again == budgets, "the order of requests cannot change a budget"
    flat = modules.lockstep.LengthPlan(32)
    assert {flat.budget(e, "meta", 1) for e in range(10)} == {32} and flat.longest == 32 and plan.longest == 48
    with pytest.raises(ValueError, match="spread"):
        modules.lockstep.LengthPlan(32, 1.0)


def test_lognormal_plan_is_heavy_tailed_capped_and_centred(modules):
    plan = modules.lockstep.LengthPlan(32, 1.0, seed=5, shape="lognormal")
    budgets = [plan.budget(e, "meta", 1) for e in range(4000)]
    assert plan.longest == 128 and max(budgets) == 128 and min(budgets) >= 1
    assert 25 < sum(budgets) / len(budgets) < 33, "mean near 32 (a little under: the cap)"
    assert sorted(budgets)[len(budgets) // 2] < 25, "the median sits well below the mean: a long tail"
    with pytest.raises(ValueError, match="shape"):
        modules.lockstep.LengthPlan(32, 0.5, shape="normal")


def test_request_seeds_are_distinct_per_message(modules):
    seeds = {
        modules.lockstep.request_seed(1000, e, r, t) for e in range(50) for r in ("meta", "reasoning") for t in range(9)
    }
    assert len(seeds) == 50 * 2 * 9


class FakeEngine:
    """Replies with ``budget`` copies of a word; the MTA of episode 1 writes the finish token in round 2."""

    def __init__(self, tokenizer, finish: str):
        self.tokenizer, self.finish = tokenizer, finish
        self.calls: list[tuple[list[int], dict]] = []

    async def generate(self, prompt_ids, params):
        self.calls.append((list(prompt_ids), dict(params)))
        await asyncio.sleep(0)
        text = " ".join(["roots"] * params["max_tokens"])
        prompt = self.tokenizer.decode(prompt_ids)
        meta_round_2 = "meta-think agent" in prompt and prompt.count("<|im_start|>assistant") == 2
        if meta_round_2 and "episode one" in prompt:
            text = f"done {self.finish}"
        ids = self.tokenizer.encode(text)
        return SimpleNamespace(token_ids=ids, text=text, finish_reason="length", cached=3)


def test_lockstep_turns_wait_for_the_batch_and_prompts_are_rendered_from_text(modules, tokenizer):
    lockstep = modules.lockstep
    settings = ReMARolloutConfig(prompt_set="multiturn", max_turns=3, stop_when_truncated=False)
    engine = FakeEngine(tokenizer, settings.finish)
    plan = lockstep.LengthPlan(4, 0.5, seed=1)
    questions = ["Question episode zero?", "Question episode one?", "Question episode two?"]

    async def generate(ids, params):
        reply = await engine.generate(ids, params)
        return lockstep.Reply(reply.token_ids, reply.text, reply.finish_reason, reply.cached)

    result = asyncio.run(
        lockstep.run_lockstep(
            questions, settings, tokenizer, generate, plan, {"temperature": 1.0}, context_cap=10_000, seed_base=7
        )
    )
    # Turn order: every live episode's k-th message of a role before anyone's next message.
    order = [(t.role, t.turn) for t in result.turns]
    assert order == sorted(order, key=lambda x: (x[1], x[0] != "meta"))
    assert result.batches == 6, "one generate batch per (round, role)"
    episode_one = result.dialogues[1]
    assert episode_one.finish_reason is FinishReason.NORMAL and episode_one.rounds == 2
    assert [d.finish_reason for d in (result.dialogues[0], result.dialogues[2])] == [FinishReason.MAX_TURNS] * 2
    assert sum(1 for t in result.turns if t.episode == 1) == 4, "finished after the RA's answer in round 2"
    for turn, (prompt_ids, params) in zip(result.turns, engine.calls, strict=True):
        assert turn.prompt_ids == prompt_ids
        assert params["max_tokens"] == plan.budget(turn.episode, turn.role, turn.turn)
        assert params["seed"] == lockstep.request_seed(7, turn.episode, turn.role, turn.turn)
        assert params["stop"] == [settings.finish]
    # The last RA prompt of episode 0 is the whole chat re-rendered from the decoded text.
    last = [t for t in result.turns if t.episode == 0 and t.role == "reasoning"][-1]
    dialogue = result.dialogues[0]
    view = dialogue.view(Role.REASONING)[:-1]  # the chat before its last reply
    expected = tokenizer.apply_chat_template(view, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert last.prompt_ids == list(expected["input_ids"])
    assert len(result.rows) == 6, "a row per (episode, role)"


def test_context_cap_ends_an_episode_before_its_turn(modules, tokenizer):
    lockstep = modules.lockstep
    settings = ReMARolloutConfig(prompt_set="multiturn", max_turns=3, stop_when_truncated=False)
    engine = FakeEngine(tokenizer, settings.finish)

    async def generate(ids, params):
        reply = await engine.generate(ids, params)
        return lockstep.Reply(reply.token_ids, reply.text, reply.finish_reason, reply.cached)

    # The MTA's first prompt fits, and so does the RA's (a short system prompt); the MTA's second does not.
    meta_opening = Dialogue("Short?", settings).view(Role.META)
    cap = len(lockstep.render_batch(tokenizer, [meta_opening], None)[0]) + 5
    result = asyncio.run(
        lockstep.run_lockstep(
            ["Short?"], settings, tokenizer, generate, lockstep.LengthPlan(40), {}, context_cap=cap, seed_base=0
        )
    )
    assert [t.role for t in result.turns] == ["meta", "reasoning"]
    assert result.dialogues[0].finish_reason is FinishReason.CONTEXT_OVERFLOW and result.dialogues[0].rounds == 1


def test_rows_are_re_encoded_from_text(modules, tokenizer):
    chat = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Question: roots?"},
        {"role": "assistant", "content": "The roots are 2 and 3"},
        {"role": "user", "content": "check"},
        {"role": "assistant", "content": "So the answer is 2"},
    ]
    row = modules.lockstep.encode_rows_from_text(tokenizer, chat)
    query = tokenizer.apply_chat_template(chat[:-1], add_generation_prompt=True, tokenize=False)
    assert row == tokenizer.encode(query + "So the answer is 2")


def test_retokenised_share_counts_replies_whose_text_tokenises_differently(modules, tokenizer):
    lockstep = modules.lockstep
    canonical = tokenizer.encode("The roots are 2 and 3")
    split = [tokenizer.convert_tokens_to_ids(c) for c in "The"]  # the same text in non-canonical pieces
    assert tokenizer.decode(split) == "The" and split != tokenizer.encode("The")
    turns = [
        lockstep.Turn(0, "meta", 1, [], lockstep.Reply(canonical, "The roots are 2 and 3", "length", 0), 0),
        lockstep.Turn(1, "meta", 1, [], lockstep.Reply(split, "The", "length", 0), 0),
    ]
    assert lockstep.retokenised_share(turns, tokenizer) == 0.5


def test_our_side_uses_the_plans_budget_and_seed_and_records_the_request(modules):
    bench = modules.bench_vs_lockstep
    seen = []

    class Client:
        async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
            seen.append(dict(sampling_params))
            n = sampling_params["max_tokens"]
            return TokenOutput(token_ids=list(range(n)), stop_reason="completed", extra_fields={"num_cached_tokens": 2})

    plan = modules.lockstep.LengthPlan(8, 0.5, seed=2)
    log = modules.rollout_records.EpisodeLog(5, ["meta", "reasoning"])
    client = bench.PlannedClient(Client(), log, plan, seed_base=100)
    for request_id in ("m", "r", "m"):
        asyncio.run(client.generate(request_id, prompt_ids=[1, 2, 3], sampling_params={"max_tokens": 12, "x": 1}))
    expected = [("meta", 1), ("reasoning", 1), ("meta", 2)]
    assert [(r.role, r.turn) for r in log.records] == expected
    for params, record, (role, turn) in zip(seen, log.records, expected, strict=True):
        assert params["max_tokens"] == min(12, plan.budget(5, role, turn)) == len(record.output_ids)
        assert params["seed"] == record.seed == modules.lockstep.request_seed(100, 5, role, turn)
        assert params["x"] == 1 and record.cached == 2


def test_block_fits_the_longest_planned_message(modules):
    plan = modules.lockstep.LengthPlan(32, 0.5)
    block = modules.bench_vs_lockstep.block_for(8, plan, 2048)
    settings = ReMARolloutConfig(**block)
    assert settings.max_turns == 8 and settings.message_tokens(Role.META) == 48
    assert settings.row_tokens(0) == 2048, "chat cap + one message = the engine window"
