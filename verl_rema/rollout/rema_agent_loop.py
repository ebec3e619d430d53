"""ReMA's hierarchical two-agent rollout as a veRL agent loop, registered as ``rema``.

One episode per dataset row (and per ``rollout.n`` sample): the meta-thinking agent (MTA) and the reasoning
agent (RA) talk through one shared model and rollout server, told apart only by their system prompts
(``dialogue.py`` holds the protocol, ``verl_rema/prompts`` the prompts). The episode returns one training row per
role that acted, MTA first and RA last, so that veRL's reward loop scores the RA's row (the final answer):

    row = that role's chat view as runtime tokens, cut right after the role's last message;
    response_mask = 1 exactly on the tokens the engine sampled for that role (their log-probs alongside),
                    0 on system prompt, question, the other role's text and chat-template tokens.

Rows are built with veRL's Continuous Token helpers from the engine's token ids: nothing the model sampled is
decoded and re-encoded. Needs veRL's v1 trainer (``trainer.use_v1=true``), whose agent-loop worker accepts a
list of outputs per episode.

What reaches the trainer and the reward, per row: the fields of :mod:`verl_rema.protocol` (``extra_fields``,
which veRL's reward loop merges into the reward function's ``extra_info`` for the scored last row, and a top-level
role field, a TransferQueue column of its own), plus ``min/max_global_steps``.

Configuration: the ``rema.rollout`` block of the trainer config (:class:`~verl_rema.rollout.config.ReMARolloutConfig`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import torch
from omegaconf import DictConfig, OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput, register
from verl.utils.profiler import simple_timer
from verl.utils.tokenizer import normalize_token_ids
from verl.utils.tokenizer.chat_template import apply_chat_template
from verl.workers.rollout.llm_server import LLMServerClient
from verl.workers.rollout.replica import TokenOutput

from verl_rema.losses.turns import assert_turn_layout
from verl_rema.protocol import (
    FINAL_ANSWER_FIELD,
    FINISH_REASON_FIELD,
    METRICS_FIELD,
    NUM_ROUNDS_FIELD,
    ROLE_FIELD,
    Role,
)
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue, describe_row, question_from_row, row_fields_of
from verl_rema.rollout.metrics import episode_metrics

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

AGENT_NAME = "rema"


class ReMAAgentLoopOutput(AgentLoopOutput):
    """An AgentLoopOutput that also carries the speaking role as a top-level field (``protocol.ROLE_FIELD``).

    veRL's v1 worker stores ``output.as_dict()`` (the pydantic fields) as TransferQueue columns, whereas
    ``extra_fields`` stays one nested column. A top-level role can be fetched by name like ``uid``.
    """

    rema_role: str


assert ROLE_FIELD in ReMAAgentLoopOutput.model_fields  # the column name is the contract's


@dataclass
class RoleTrack:
    """One role's runtime token stream: the tokens of its chat view as the engine saw them, plus row metadata.

    ``mask``/``logprobs`` align with ``token_ids[prompt_len:]``. ``action_end`` is the stream length right after
    the role's last sampled message: its row ends there. ``open_turn``: the last message did not end with the
    chat template's end-of-turn token (truncated, stopped on a stop string, or empty), so the template's
    turn-closing tokens must be added before the next context message.
    """

    request_id: str
    messages: list[dict[str, str]]
    token_ids: list[int]
    prompt_len: int
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    action_end: int = 0
    num_turns: int = 0
    open_turn: bool = False

    @property
    def num_sampled(self) -> int:
        return sum(self.mask[: max(self.action_end - self.prompt_len, 0)])


@dataclass
class EpisodeStats:
    """Engine-side bookkeeping of one episode: timing, preemptions, weight versions."""

    timing: dict[str, float] = field(default_factory=dict)
    num_preempted: int = -1
    min_global_steps: int | None = None
    max_global_steps: int | None = None

    def add(self, output: TokenOutput) -> None:
        if output.num_preempted is not None:
            self.num_preempted = max(self.num_preempted, 0) + output.num_preempted
        first = output.extra_fields.get("min_global_steps", output.extra_fields.get("global_steps"))
        last = output.extra_fields.get("max_global_steps", output.extra_fields.get("global_steps"))
        if self.min_global_steps is None and first is not None:
            self.min_global_steps = int(first)
        if last is not None:
            self.max_global_steps = int(last)


@register(AGENT_NAME)
class ReMAAgentLoop(AgentLoopBase):
    """Plays one ReMA episode per sample; see the module docstring for the rows it returns."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not OmegaConf.select(self.config, "trainer.use_v1", default=True):
            raise ValueError(
                "the 'rema' agent loop returns one output per role and needs veRL's v1 trainer (trainer.use_v1=true)"
            )
        self.settings = self._read_settings(self.config)
        self._context_caps = self._engine_caps(self.config, self.settings)
        eos = self.tokenizer.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        self._turn_close_ids = _turn_closing_tokens(self.tokenizer, self.apply_chat_template_kwargs, eos_ids)
        # A reply ending with one of these stopped on its own; otherwise it ran out of budget or hit a stop string.
        self._end_of_turn_ids = eos_ids | set(self._turn_close_ids[-1:])

    @staticmethod
    def _read_settings(config: DictConfig) -> ReMARolloutConfig:
        """The ``rema.rollout`` block as its dataclass (the dataclass's defaults when the block is absent)."""
        return ReMARolloutConfig.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))

    @staticmethod
    def _engine_caps(config: DictConfig, settings: ReMARolloutConfig) -> dict[Role, int]:
        """Each role's context cap, bounded by what the engine can see (its max_model_len): a larger cap would
        let the engine cut replies silently. An uncapped role gets prompt_length + response_length."""
        rollout = config.actor_rollout_ref.rollout
        default = int(rollout.prompt_length) + int(rollout.response_length)
        max_model_len = rollout.get("max_model_len")
        caps = {}
        for role in Role:
            cap = settings.context_cap(role) or default
            caps[role] = min(cap, int(max_model_len)) if max_model_len else cap
        return caps

    def _server_for(self, role: Role) -> LLMServerClient:
        """The single point of the role -> model mapping. Parameter sharing: one server plays both roles."""
        return self.server_manager

    # -- the episode ---------------------------------------------------------------------------------------------

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        row = describe_row(kwargs)
        fields = row_fields_of(kwargs, self.settings.prompts.row_fields)
        dialogue = Dialogue(question_from_row(kwargs), self.settings, fields)
        want_logprobs = bool(sampling_params.get("logprobs"))
        stats = EpisodeStats()
        tracks: dict[Role, RoleTrack] = {}

        while not dialogue.done:
            role = dialogue.next_role()
            track = await self._sync_view(role, dialogue, tracks, want_logprobs)
            per_message = self.settings.message_tokens(role)
            room = self._context_caps[role] - len(track.token_ids)
            if room < 1:
                dialogue.overflow()
                break
            budget = min(per_message, room)
            reply = await self._generate(role, track, budget, sampling_params, stats, kwargs, row)
            await self._append_reply(track, reply, want_logprobs, row)
            ids = list(reply.token_ids)
            stopped = bool(ids) and ids[-1] in self._end_of_turn_ids
            dialogue.record(
                role,
                self.tokenizer.decode(ids, skip_special_tokens=True),
                ids,
                hit_limit=len(ids) >= budget and not stopped,
                cut_by_context=budget < per_message,
            )
            track.messages = dialogue.view(role)
            track.num_turns = len(track.messages) - 1  # all but the system prompt

        if stats.min_global_steps is None:  # nothing was generated (overflow before the first turn)
            stats.min_global_steps = stats.max_global_steps = _as_int(kwargs.get("global_steps"))
        return self._rows(dialogue, tracks, stats, want_logprobs)

    async def _sync_view(
        self, role: Role, dialogue: Dialogue, tracks: dict[Role, RoleTrack], want_logprobs: bool
    ) -> RoleTrack:
        """Bring ``role``'s token stream up to date with its chat view before it speaks."""
        view = dialogue.view(role)
        track = tracks.get(role)
        if track is None:
            # The builder directly, not ct_build_initial_tokens: that one left-truncates prompts longer than
            # rollout.prompt_length (the RA's first prompt holds the MTA's first message); here the
            # per-role context cap decides, as an explicit context_overflow.
            prompt_ids = await self.loop.run_in_executor(
                None, lambda: self.continuous_token_builder.build_initial_tokens(view)
            )
            track = RoleTrack(
                request_id=uuid4().hex,
                messages=view,
                token_ids=list(prompt_ids),
                prompt_len=len(prompt_ids),
                logprobs=[] if want_logprobs else None,
            )
            track.action_end = track.prompt_len
            tracks[role] = track
            return track

        if track.open_turn:
            # End the role's unfinished message with the template's end-of-turn token(s), as context (mask 0),
            # so that it looks like a reply that stopped on its own; the builder then adds its usual separator.
            track.token_ids += self._turn_close_ids
            track.mask += [0] * len(self._turn_close_ids)
            if track.logprobs is not None:
                track.logprobs += [0.0] * len(self._turn_close_ids)
            track.open_turn = False
        prefix_len = len(track.token_ids)
        merge, track.mask, track.logprobs = await self.ct_merge_context_msg(
            track.messages, view, track.token_ids, track.mask, track.logprobs
        )
        # A builder may drop boundary tokens at the end of the prefix (e.g. GLM); keep the row end inside it.
        track.action_end = min(track.action_end, prefix_len - merge.removed_prefix_token_count)
        track.token_ids = merge.token_ids
        track.messages = view
        return track

    async def _generate(
        self,
        role: Role,
        track: RoleTrack,
        budget: int,
        sampling_params: dict[str, Any],
        stats: EpisodeStats,
        kwargs: dict[str, Any],
        row: str,
    ) -> TokenOutput:
        params = {**sampling_params, "max_tokens": budget}
        if role is Role.META and self.settings.finish:
            params["stop"] = [*(sampling_params.get("stop") or []), self.settings.finish]
        priority = _as_int(kwargs.get("priority")) or 0
        with simple_timer("generate_sequences", stats.timing):
            output: TokenOutput = await self._server_for(role).generate(
                request_id=track.request_id,
                prompt_ids=list(track.token_ids),
                sampling_params=params,
                priority=priority,
            )
        if output.stop_reason in ("aborted", "abort"):
            raise RuntimeError(f"ReMA rollout: {row}: the engine aborted the {role.value} turn")
        stats.add(output)
        return output

    async def _append_reply(self, track: RoleTrack, reply: TokenOutput, want_logprobs: bool, row: str) -> None:
        """Append the sampled tokens to the role's stream with mask 1 and their engine log-probs."""
        ids = list(reply.token_ids)
        if want_logprobs and (reply.log_probs is None or len(reply.log_probs) != len(ids)):
            got = None if reply.log_probs is None else len(reply.log_probs)
            raise RuntimeError(f"ReMA rollout: {row}: the engine returned {got} log-probs for {len(ids)} tokens")
        merge, track.mask, track.logprobs = await self.ct_merge_assistant_token(
            track.token_ids,
            ids,
            track.mask,
            track.logprobs,
            assistant_logprobs=list(reply.log_probs) if want_logprobs else None,
        )
        track.token_ids = merge.token_ids
        track.action_end = len(track.token_ids)
        close = self._turn_close_ids
        track.open_turn = bool(close) and ids[-len(close) :] != close

    # -- training rows -------------------------------------------------------------------------------------------

    def _rows(
        self, dialogue: Dialogue, tracks: dict[Role, RoleTrack], stats: EpisodeStats, want_logprobs: bool
    ) -> list[AgentLoopOutput]:
        """One row per role that sampled at least one token, MTA first and RA last (the reward scores the last)."""
        shared = {
            FINISH_REASON_FIELD: dialogue.finish_reason.value,
            FINAL_ANSWER_FIELD: dialogue.final_answer,
            NUM_ROUNDS_FIELD: dialogue.rounds,
            METRICS_FIELD: episode_metrics(dialogue.messages, dialogue.finish_reason.value),
            "min_global_steps": stats.min_global_steps,
            "max_global_steps": stats.max_global_steps,
        }
        metrics = AgentLoopMetrics(
            generate_sequences=stats.timing.get("generate_sequences", 0.0), num_preempted=stats.num_preempted
        )
        rows = []
        for role in Role:
            track = tracks.get(role)
            if track is None or track.num_sampled == 0:
                continue
            n = track.action_end - track.prompt_len
            turns = sum(1 for message in dialogue.messages if message.role is role and message.token_ids)
            assert_turn_layout(torch.tensor([track.mask[:n]]), [turns])
            rows.append(
                self._output(
                    role,
                    prompt_ids=track.token_ids[: track.prompt_len],
                    response_ids=track.token_ids[track.prompt_len : track.action_end],
                    mask=track.mask[:n],
                    logprobs=track.logprobs[:n] if track.logprobs is not None else None,
                    num_turns=track.num_turns,
                    metrics=metrics,
                    shared=shared,
                )
            )
        if not rows:
            rows.append(self._prompt_only_row(dialogue, tracks, metrics, shared, want_logprobs))
        return rows

    def _prompt_only_row(
        self,
        dialogue: Dialogue,
        tracks: dict[Role, RoleTrack],
        metrics: AgentLoopMetrics,
        shared: dict[str, Any],
        want_logprobs: bool,
    ) -> AgentLoopOutput:
        """Nobody sampled a token (e.g. the question overflows the cap before the first MTA turn).

        The episode still leaves one row so that its finish reason, reward (0) and metrics are recorded: the first
        speaker's prompt, left-truncated to its context cap, whose last token is moved into a one-token response
        with mask 0 (veRL needs a non-empty response). No token of it is trained.
        """
        role = dialogue.roles[0]
        track = tracks[role]
        cap = self._context_caps[role]
        ids = track.token_ids[: track.prompt_len][-max(cap, 2) :]
        logger.warning(
            "ReMA rollout: episode ended (%s) before any token was sampled; prompt of %d tokens, %s cap %d",
            dialogue.finish_reason.value,
            track.prompt_len,
            role.value,
            cap,
        )
        return self._output(
            role,
            prompt_ids=ids[:-1],
            response_ids=ids[-1:],
            mask=[0],
            logprobs=[0.0] if want_logprobs else None,
            num_turns=1,
            metrics=metrics,
            shared=shared,
        )

    @staticmethod
    def _output(
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
        if len(mask) != len(response_ids) or (logprobs is not None and len(logprobs) != len(response_ids)):
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


def _turn_closing_tokens(tokenizer: Any, chat_template_kwargs: dict[str, Any], eos_ids: set[int]) -> list[int]:
    """The end-of-turn token(s) the chat template puts after a message's content, e.g. ``<|im_end|>`` for ChatML.

    Found as veRL's ``initialize_turn_separator`` does: the common tail of one user turn rendered with two
    contents is ``[end-of-turn..., separator...]``; the end-of-turn part runs up to the last eos id in it (or is
    its first token). Empty when the template puts nothing after a message.
    """
    first, second = (
        normalize_token_ids(
            apply_chat_template(
                tokenizer,
                [{"role": "user", "content": content}],
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
    tail = first[len(first) - n :]
    last_eos = max((i for i, token_id in enumerate(tail) if token_id in eos_ids), default=0)
    return tail[: last_eos + 1]


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return int(value)


__all__ = ["AGENT_NAME", "ReMAAgentLoop", "ReMAAgentLoopOutput", "RoleTrack"]
