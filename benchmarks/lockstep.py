"""The authors' rollout design for ReMA, rebuilt on our engine client: lockstep turns over the batch, every prompt
re-rendered and re-tokenised from the decoded text of the whole chat.

What follows the reference (the authors' fork of veRL 0.2, ``vllm_rollout_spmd.multi_turn_generate_sequences``):

* lockstep: for each round, for each role, every live episode's prompt is built, the whole batch is generated in
  one call and the next role starts only when the last reply of the batch has finished;
* each prompt is the role's whole chat (system prompt, question, both roles' messages as decoded text) rendered
  with the chat template and tokenised, as a padded batch, twice per turn (once untruncated to check the length
  cap, once truncated to the prompt length), then stripped of its padding;
* the reply is the engine's detokenised text (``detokenize=True``; special tokens skipped); the finish token stops
  generation; the RA's finish token is stripped from its text; an episode whose chat is over the cap ends;
* after the last turn, the training rows are re-encoded from text (``encode_conversation``): for each assistant
  message, the chat before it is rendered and tokenised, and so is that chat plus the reply.

What is approximated: the engine. The reference calls vLLM's offline ``LLM.generate`` on the batch; here the batch
is submitted to the same in-process ``AsyncLLM`` as the agent loop and awaited as a whole (``asyncio.gather``),
which schedules the same set of requests at once and returns when the last is done. The dialogue protocol (who
speaks, what each role sees, finish rules) is :class:`verl_rema.rollout.dialogue.Dialogue`, the one our loop uses,
so both designs play the same dialogue and differ only in how turns are scheduled and tokenised.

Pure of vLLM: the engine is a ``generate(prompt_ids, params) -> (token_ids, text, finish_reason, cached)`` coroutine,
so the unit tests drive it with a fake.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from verl_rema.protocol import Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue


@dataclass(frozen=True)
class LengthPlan:
    """The token budget of each message, the same in both designs, drawn from (seed, episode, role, turn) alone, so
    the order of requests cannot change it. The random-weight model almost never stops on its own: the budget is
    the message's length.

    ``uniform``: ``mean`` tokens, uniform within ``mean * (1 +- spread)``. ``lognormal``: ``mean * exp(spread * Z -
    spread^2 / 2)`` (mean ``mean``, ``spread`` the log-scale deviation; heavy-tailed like a model's reply lengths),
    capped at ``cap_factor * mean`` tokens (a message budget)."""

    mean: int
    spread: float = 0.0
    seed: int = 0
    shape: str = "uniform"
    cap_factor: float = 4.0

    def __post_init__(self) -> None:
        if self.shape not in ("uniform", "lognormal"):
            raise ValueError(f"shape must be uniform or lognormal, got {self.shape!r}")
        if self.mean < 1 or self.spread < 0 or (self.shape == "uniform" and self.spread >= 1):
            raise ValueError(f"need mean >= 1 and a spread in [0, 1) (uniform) or >= 0, got {self}")

    def budget(self, episode: int, role: str, turn: int) -> int:
        if self.spread == 0:
            return self.mean
        rng = random.Random(f"{self.seed}/{episode}/{role}/{turn}")
        if self.shape == "uniform":
            draw = rng.uniform(self.mean * (1 - self.spread), self.mean * (1 + self.spread))
        else:
            draw = self.mean * math.exp(self.spread * rng.gauss(0.0, 1.0) - self.spread**2 / 2)
        return min(max(1, round(draw)), self.longest)

    @property
    def longest(self) -> int:
        if self.shape == "lognormal" and self.spread > 0:
            return max(1, round(self.mean * self.cap_factor))
        return max(1, round(self.mean * (1 + self.spread)))


def request_seed(base: int, episode: int, role: str, turn: int) -> int:
    """The sampling seed of one message, the same in both designs."""
    return base + 1000 * episode + 10 * turn + (0 if role == Role.META.value else 1)


@dataclass
class Reply:
    """What the engine returned for one request."""

    token_ids: list[int]
    text: str
    finish_reason: str
    cached: int


@dataclass
class Turn:
    """One request of the lockstep rollout."""

    episode: int
    role: str
    turn: int
    prompt_ids: list[int]
    reply: Reply | None  # None until the batch returns
    seed: int


@dataclass
class LockstepResult:
    dialogues: list[Dialogue]
    turns: list[Turn] = field(default_factory=list)
    batches: int = 0  # generate calls (each a barrier)
    rows: list[list[int]] = field(default_factory=list)  # training rows re-encoded from text


Generate = Callable[[list[int], dict[str, Any]], Awaitable[Reply]]


def render_batch(tokenizer: Any, chats: Sequence[list[dict[str, str]]], max_length: int | None) -> list[list[int]]:
    """The reference's ``apply_chat_template`` on a padded batch (left padding), with its padding stripped."""
    tokenizer.padding_side = "left"
    encoded = tokenizer.apply_chat_template(
        list(chats),
        add_generation_prompt=True,
        padding=True,
        truncation=max_length is not None,
        max_length=max_length,
        tokenize=True,
        return_tensors="pt",
        return_dict=True,
    )
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    return [row[keep == 1].tolist() for row, keep in zip(ids, mask, strict=True)]


def encode_rows_from_text(tokenizer: Any, chat: list[dict[str, str]]) -> list[int]:
    """The reference's ``encode_conversation``: per assistant message, tokenise the rendered chat before it and that
    chat plus the reply; the row is the last of those (the reference also builds labels and turn ids from them)."""
    row: list[int] = []
    history: list[dict[str, str]] = []
    for message in chat:
        if message["role"] == "assistant":
            query = tokenizer.apply_chat_template(history, add_generation_prompt=True, tokenize=False)
            tokenizer.encode(query, add_special_tokens=True)
            row = tokenizer.encode(query + message["content"], add_special_tokens=True)
        history.append(message)
    return row


async def run_lockstep(
    questions: Sequence[str],
    settings: ReMARolloutConfig,
    tokenizer: Any,
    generate: Generate,
    plan: LengthPlan,
    sampling: dict[str, Any],
    *,
    context_cap: int,
    seed_base: int,
) -> LockstepResult:
    """Play every question's episode, all in lockstep; ``context_cap`` is the prompt length a chat may reach."""
    result = LockstepResult([Dialogue(question, settings) for question in questions])
    stops = [settings.finish] if settings.finish else []
    for _ in range(settings.max_turns):
        for role in settings.roles:
            live = [i for i, dialogue in enumerate(result.dialogues) if not dialogue.done]
            if not live:
                return _finish(result, tokenizer, settings)
            chats = [result.dialogues[i].view(role) for i in live]
            lengths = [len(ids) for ids in render_batch(tokenizer, chats, None)]  # the untruncated length check
            prompts = render_batch(tokenizer, chats, context_cap)
            for i, length in zip(live, lengths, strict=True):
                if length > context_cap:
                    result.dialogues[i].overflow()
            batch = [(i, ids) for i, ids in zip(live, prompts, strict=True) if not result.dialogues[i].done]
            if not batch:
                continue
            requests = []
            for i, ids in batch:
                turn = result.dialogues[i].rounds + (1 if role is settings.roles[0] else 0)  # the role's k-th message
                seed = request_seed(seed_base, i, role.value, turn)
                params = {**sampling, "seed": seed, "max_tokens": plan.budget(i, role.value, turn), "stop": stops}
                requests.append((Turn(i, role.value, turn, ids, None, seed), generate(ids, params)))
            replies = await asyncio.gather(*(request for _, request in requests))  # the batch barrier
            result.batches += 1
            for (turn, _), reply in zip(requests, replies, strict=True):
                turn.reply = reply
                result.turns.append(turn)
                i = turn.episode
                result.dialogues[i].record(role, reply.text, reply.token_ids, hit_limit=reply.finish_reason == "length")
    return _finish(result, tokenizer, settings)


def _finish(result: LockstepResult, tokenizer: Any, settings: ReMARolloutConfig) -> LockstepResult:
    """The training rows, as the reference builds them: each role's chat up to its last reply, from text."""
    for dialogue in result.dialogues:
        for role in settings.roles:
            chat = dialogue.view(role) if any(m.role is role for m in dialogue.messages) else []
            last = max((k for k, message in enumerate(chat) if message["role"] == "assistant"), default=-1)
            if last >= 0:
                result.rows.append(encode_rows_from_text(tokenizer, chat[: last + 1]))
    return result


def retokenised_share(turns: Sequence[Turn], tokenizer: Any) -> float:
    """Share of replies whose text, tokenised again, is not the sampled ids: the next turn's prompt then differs from
    what the engine cached, and the row trains on tokens the model did not sample."""
    changed = [tokenizer.encode(t.reply.text, add_special_tokens=False) != _content_ids(t, tokenizer) for t in turns]
    return sum(changed) / max(len(changed), 1)


def _content_ids(turn: Turn, tokenizer: Any) -> list[int]:
    special = set(tokenizer.all_special_ids)
    return [token for token in turn.reply.token_ids if token not in special]


__all__ = [
    "LengthPlan",
    "LockstepResult",
    "Reply",
    "Turn",
    "encode_rows_from_text",
    "render_batch",
    "request_seed",
    "retokenised_share",
    "run_lockstep",
]
