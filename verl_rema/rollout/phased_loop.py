"""Algorithm 1's episodes (single-turn ReMA, separate models), as the agent loop ``rema_algorithm1``.

A row that carries ``rema_phase`` (``protocol.PHASE_FIELD``, written by the Algorithm 1 trainer) is played as that
phase asks (arXiv 2503.09501, App. C.3 and D.1); a row without it is a plain single-turn ReMA episode (validation,
evaluation), played by the ``rema`` loop:

==================  ===============================  =================================  ==========================
phase               the MTA's plan                   the RA's answers                   row scored (last)
==================  ===============================  =================================  ==========================
train_reasoning     given by the row (``rema_plan``)  one, sampled                       the RA's
train_meta          sampled                          K = ra_samples_per_plan, sampled   the MTA's (mean over K)
filter_reasoning    greedy                           K = filter_samples, sampled        the MTA's (success rate)
filter_meta         sampled                          one, greedy                        the MTA's
==================  ===============================  =================================  ==========================

The K answers to one plan are requested together, all from the same RA prompt (one sticky server, so the engine's
prefix cache serves the shared prompt once); the first is the RA's row, all K reach the reward as
``rema_ra_answers``. The episode also reports its plan (``rema_plan``), which the trainer keeps for the RA's data.
"""

from __future__ import annotations

import asyncio
from typing import Any

from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register

from verl_rema.protocol import PHASE_FIELD, PLAN_FIELD, RA_ANSWERS_FIELD, Phase, Role
from verl_rema.rollout.dialogue import Dialogue, describe_row, question_from_row, row_fields_of
from verl_rema.rollout.rema_agent_loop import EpisodeStats, ReMAAgentLoop, _as_int
from verl_rema.rollout.rows import RoleTrack

AGENT_NAME = "rema_algorithm1"
ALGORITHM1_PATH = "rema.algorithm1"


def greedy(sampling_params: dict[str, Any]) -> dict[str, Any]:
    return {**sampling_params, "temperature": 0.0, "top_p": 1.0, "top_k": -1}


@register(AGENT_NAME)
class PhasedAgentLoop(ReMAAgentLoop):
    """``rema`` plus Algorithm 1's phases; see the module docstring."""

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        phase = kwargs.get(PHASE_FIELD)
        if not phase:
            return await super().run(sampling_params, **kwargs)
        phase = Phase(phase)
        row = describe_row(kwargs)
        if self.settings.max_turns != 1 or not self.settings.prompts.has_meta:
            raise ValueError(f"ReMA rollout: {row}: Algorithm 1's phases need a single-turn, two-role prompt set")
        dialogue = Dialogue(question_from_row(kwargs), self.settings, row_fields_of(kwargs, self.settings.prompts.row_fields))  # fmt: skip
        want_logprobs = bool(sampling_params.get("logprobs"))
        stats, tracks = EpisodeStats(), {}

        if phase is Phase.TRAIN_REASONING:
            plan = kwargs.get(PLAN_FIELD)
            if not isinstance(plan, str) or not plan.strip():
                raise ValueError(f"ReMA rollout: {row}: a train_reasoning episode needs its plan in {PLAN_FIELD!r}")
            dialogue.record(Role.META, plan)  # given, not sampled: the MTA's row trains nothing
        else:
            params = greedy(sampling_params) if phase is Phase.FILTER_REASONING else sampling_params
            await self._turn(Role.META, dialogue, tracks, params, stats, kwargs, row, want_logprobs, samples=1)

        answers: list[str] = []
        if not dialogue.done:
            samples = self._samples(phase)
            params = greedy(sampling_params) if phase is Phase.FILTER_META else sampling_params
            answers = await self._turn(Role.REASONING, dialogue, tracks, params, stats, kwargs, row, want_logprobs, samples)  # fmt: skip
        if stats.min_global_steps is None:
            stats.min_global_steps = stats.max_global_steps = _as_int(kwargs.get("global_steps"))
        scored_last = (Role.META, Role.REASONING) if phase is Phase.TRAIN_REASONING else (Role.REASONING, Role.META)
        extra = {RA_ANSWERS_FIELD: answers, PLAN_FIELD: dialogue.messages[0].text if dialogue.messages else ""}
        return await self._rows(dialogue, tracks, stats, want_logprobs, order=scored_last, extra=extra)

    def _samples(self, phase: Phase) -> int:
        """K: the RA answers one plan gets in this phase."""
        settings = OmegaConf.select(self.config, ALGORITHM1_PATH, default=None) or {}
        if phase is Phase.TRAIN_META:
            return int(settings.get("ra_samples_per_plan", 4))
        if phase is Phase.FILTER_REASONING:
            return int(settings.get("filter_samples", 10))
        return 1

    async def _turn(
        self,
        role: Role,
        dialogue: Dialogue,
        tracks: dict[Role, RoleTrack],
        params: dict[str, Any],
        stats: EpisodeStats,
        kwargs: dict[str, Any],
        row: str,
        want_logprobs: bool,
        samples: int,
    ) -> list[str]:
        """``role``'s message, ``samples`` times over from one prompt; the first enters the dialogue and the row."""
        track = await self._sync_view(role, dialogue, tracks, want_logprobs)
        budget = self.settings.message_tokens(role)
        if len(track.token_ids) > self._context_caps[role]:
            dialogue.overflow()
            return []
        replies = await asyncio.gather(
            *(self._generate(role, track, budget, params, stats, kwargs, row) for _ in range(samples))
        )
        texts = [self.tokenizer.decode(list(reply.token_ids), skip_special_tokens=True) for reply in replies]
        ids = list(replies[0].token_ids)
        self._append_reply(track, ids, replies[0], want_logprobs, row)
        message = dialogue.record(
            role, texts[0], ids, hit_limit=len(ids) >= budget and not (ids and ids[-1] in self._stop_token_ids)
        )
        track.messages = dialogue.view(role)
        return [message.text, *texts[1:]]


__all__ = ["AGENT_NAME", "PhasedAgentLoop"]
