"""Token-exact training rows of a ReMA episode: one role's chat view as the engine saw it, and how a sampled message
is closed so that the stream equals a whole-conversation render of the view.

A row is one role's runtime token stream cut right after the role's last sampled token: ``response_mask`` is 1
exactly on the tokens the engine sampled for that role (their log-probs alongside), 0 on the system prompt, the
question, the other role's messages and the chat template's tokens. Every role of the prompt set gets a row, in
speaking order, also a role that never sampled a token (all mask 0): GRPO groups per (prompt, role) then always
have ``rollout.n`` members, and every episode leaves the same number of rows.

Closing a message. A chat template puts a fixed *tail* after each message's content: ``<|im_end|>`` + ``\\n`` for
ChatML, ``<|eot_id|>`` for Llama 3. The model samples up to the end-of-turn token (or is cut by its budget or a stop
string); :func:`missing_tail` is what must follow as context (mask 0) before the next message, whatever veRL's
model-family token builder knows about the template (its generic builder does not add ChatML's ``\\n`` for a model
whose ``model_type`` is not Qwen's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
from verl.utils.tokenizer import normalize_token_ids
from verl.utils.tokenizer.chat_template import apply_chat_template

from verl_rema.protocol import METRICS_FIELD, ROLE_FIELD, Role


class ReMAAgentLoopOutput(AgentLoopOutput):
    """An AgentLoopOutput that also carries the speaking role as a top-level field (``protocol.ROLE_FIELD``).

    veRL's v1 worker stores ``output.as_dict()`` (the pydantic fields) as TransferQueue columns, whereas
    ``extra_fields`` stays one nested column. A top-level role can be fetched by name like ``uid``.
    """

    rema_role: str


assert ROLE_FIELD in ReMAAgentLoopOutput.model_fields  # the column name is the contract's


@dataclass
class RoleTrack:
    """One role's runtime token stream: the tokens of its chat view as the engine saw them.

    ``mask``/``logprobs`` align with ``token_ids[prompt_len:]``. ``action_end`` is the stream length right after
    the role's last sampled token: its row ends there.
    """

    request_id: str
    messages: list[dict[str, str]]
    token_ids: list[int]
    prompt_len: int
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    action_end: int = 0

    def __post_init__(self) -> None:
        self.action_end = self.action_end or self.prompt_len

    @property
    def num_sampled(self) -> int:
        return sum(self.mask[: self.action_end - self.prompt_len])


def message_tail(
    tokenizer: Any,
    chat_template_kwargs: dict[str, Any],
    role: str = "user",
    before: Sequence[dict[str, str]] = (),
) -> list[int]:
    """The tokens the chat template puts after a message's content (``[<|im_end|>, \\n]`` for ChatML).

    Found as veRL's ``initialize_turn_separator`` does: the common tail of one ``role`` message (after the
    messages ``before`` it) rendered with two contents. Empty when the template puts nothing after a message.
    The SFT side (:mod:`verl_rema.sft.end_of_turn`) probes an assistant message the same way.
    """
    first, second = (
        normalize_token_ids(
            apply_chat_template(
                tokenizer,
                [*before, {"role": role, "content": content}],
                tokenize=True,
                add_generation_prompt=False,
                **chat_template_kwargs,
            )
        )
        for content in ("x", "y z")
    )
    n = 0
    while n < min(len(first), len(second)) and first[-1 - n] == second[-1 - n]:
        n += 1
    return first[len(first) - n :]


def missing_tail(reply: list[int], tail: list[int]) -> list[int]:
    """What must follow ``reply`` for it to end like a rendered message: the part of ``tail`` it did not sample
    (all of it after a reply cut by its budget or a stop string, ``\\n`` after a ChatML ``<|im_end|>``)."""
    for k in range(min(len(tail), len(reply)), 0, -1):
        if reply[-k:] == tail[:k]:
            return tail[k:]
    return list(tail)


def role_output(
    role: Role,
    *,
    prompt_ids: list[int],
    response_ids: list[int],
    mask: list[int],
    logprobs: list[float] | None,
    num_turns: int,
    metrics: AgentLoopMetrics,
    shared: dict[str, Any],
) -> ReMAAgentLoopOutput:
    """One training row; ``shared`` are the episode's protocol fields (the same for every row of the episode)."""
    if not response_ids or len(mask) != len(response_ids) or (logprobs is not None and len(logprobs) != len(mask)):
        raise AssertionError(
            f"misaligned {role.value} row: {len(response_ids)} response tokens, {len(mask)} mask values, "
            f"{None if logprobs is None else len(logprobs)} log-probs"
        )
    return ReMAAgentLoopOutput(
        prompt_ids=prompt_ids,
        response_ids=response_ids,
        response_mask=mask,
        response_logprobs=logprobs,
        num_turns=num_turns,
        metrics=metrics.model_copy(),
        extra_fields={**shared, METRICS_FIELD: dict(shared[METRICS_FIELD]), ROLE_FIELD: role.value},
        **{ROLE_FIELD: role.value},
    )


def idle_output(
    role: Role, prompt_ids: list[int], want_logprobs: bool, metrics: AgentLoopMetrics, shared: dict[str, Any]
) -> ReMAAgentLoopOutput:
    """The row of a role that sampled nothing (the episode ended before its turn, or its replies were empty):
    its opening prompt, whose last token becomes a one-token response with mask 0 (veRL needs a non-empty
    response). It trains no token; it keeps the role's GRPO group complete and the rows per episode fixed."""
    return role_output(
        role,
        prompt_ids=prompt_ids[:-1],
        response_ids=prompt_ids[-1:],
        mask=[0],
        logprobs=[0.0] if want_logprobs else None,
        num_turns=0,
        metrics=metrics,
        shared=shared,
    )


__all__ = ["ReMAAgentLoopOutput", "RoleTrack", "idle_output", "message_tail", "missing_tail", "role_output"]
