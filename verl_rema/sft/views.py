"""Each role's SFT chat, rendered by the rollout's own dialogue protocol, so SFT trains on the chats RL samples in.

A dialogue is played through :class:`verl_rema.rollout.dialogue.Dialogue` with the chosen prompt set, message by
message (``record``), and each role's chat is ``Dialogue.view(role)``: its system prompt, its first user message
(the RA's built by the prompt set's template from the question and the MTA's first message), its own messages as
``assistant``, the other role's as ``user``. The chat ends with the role's last message: what follows it is never
trained (the rollout's row ends there too).

What the protocol implies for the texts, decided here once (counts in :class:`ViewStats`):

- the RA does not write the finish token: the reference data end the RA's last answer with `` [FINISH]`` (its
  cleaning script appended it), which is removed. Only the MTA's ``[FINISH]`` ends a dialogue; the rollout strips
  it from the RA's text, and since it stops both roles' generation on it, an RA taught to write it would learn to
  cut its own messages short. Any other occurrence in an RA message is a bad row;
- the MTA's last message must hold the finish token, since in the rollout a dialogue only ends (normally) when the
  MTA writes it. ``missing_finish``: ``append`` it (default; the paper's annotation rule says the MTA outputs
  ``[FINISH]`` when it confirms the answer, but 211 of the 804 reference dialogues lack it), ``keep`` the message
  as it is (the reference's SFT data exactly), or ``drop`` the dialogue. Text after the token is cut, as the
  rollout cuts it (``Dialogue.record``). An earlier MTA message with the token is a bad row (the dialogue would
  end there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from verl_rema.prompts import PromptSet
from verl_rema.protocol import ROLE_FIELD, Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue
from verl_rema.sft.dialogues import Turn, TwoRoleDialogue

MissingFinish = Literal["append", "keep", "drop"]
MISSING_FINISH: tuple[str, ...] = ("append", "keep", "drop")

# Columns of an SFT row (veRL's MultiTurnSFTDataset reads `messages`; the rest is for ReMASFTDataset and people).
MESSAGES, ROLE, STOP, QUESTION, ORIGIN = "messages", ROLE_FIELD, "stop", "question", "origin"


@dataclass
class ViewStats:
    """What rendering changed, for the build report."""

    dialogues: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ra_finish_removed: int = 0
    mta_finish_appended: int = 0
    mta_cut_after_finish: int = 0
    dropped_without_finish: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def rollout_config(prompts: PromptSet, rounds: int) -> ReMARolloutConfig:
    """The rollout settings a dialogue of ``rounds`` rounds is played with: the prompt set's prompts and finish
    token, and no round limit below its length (the SFT data, not RL's ``max_turns``, decides the length)."""
    if not prompts.has_meta:
        raise ValueError(f"prompt set {prompts.name!r} has no meta role: two-role SFT needs the MTA's prompts")
    return ReMARolloutConfig(prompt_set=prompts, max_turns=max(rounds, 1))


def clean_turns(
    dialogue: TwoRoleDialogue, finish: str | None, missing: MissingFinish, stats: ViewStats
) -> list[Turn] | None:
    """The turns as the rollout would have them (see the module docstring); None: dropped."""
    turns = list(dialogue.turns)
    if finish is None:
        return turns
    last_meta = max(i for i, turn in enumerate(turns) if turn.role is Role.META)
    for index, turn in enumerate(turns):
        if turn.role is Role.REASONING:
            text = turn.text
            if text.rstrip().endswith(finish):
                text = text.rstrip()[: -len(finish)].rstrip()
                stats.ra_finish_removed += 1
            if finish in text:
                raise dialogue.error(f"turns[{index}].content", f"the RA's message holds {finish!r} mid-text")
            turns[index] = Turn(Role.REASONING, text)
        elif index < last_meta and finish in turn.text:
            raise dialogue.error(
                f"turns[{index}].content",
                f"the MTA writes {finish!r} in round {index // 2 + 1} of {dialogue.rounds}: the dialogue ends there",
            )
        elif index == last_meta and finish not in turn.text:
            if missing == "drop":
                stats.dropped_without_finish += 1
                return None
            if missing == "append":
                turns[index] = Turn(Role.META, f"{turn.text.rstrip()} {finish}")
                stats.mta_finish_appended += 1
    return turns


def role_chats(
    dialogue: TwoRoleDialogue, prompts: PromptSet, missing: MissingFinish, stats: ViewStats
) -> dict[Role, list[dict[str, str]]] | None:
    """Each role's chat, cut after its last message, exactly as ``Dialogue.view`` renders it; None: dropped."""
    config = rollout_config(prompts, dialogue.rounds)
    turns = clean_turns(dialogue, config.finish, missing, stats)
    if turns is None:
        return None
    played = Dialogue(dialogue.question, config)
    for turn in turns:
        message = played.record(turn.role, turn.text)
        stats.mta_cut_after_finish += int(message.text != turn.text)
    if not played.done:  # cannot happen for a checked dialogue; a protocol change would show here
        raise RuntimeError(f"{dialogue.origin}: the dialogue protocol did not end after the RA's last message")
    stats.dialogues += 1
    return {role: _through_last_own_message(played.view(role)) for role in Role}


def sft_rows(
    dialogue: TwoRoleDialogue, prompts: PromptSet, roles: tuple[Role, ...], missing: MissingFinish, stats: ViewStats
) -> list[dict[str, Any]]:
    """veRL multi-turn SFT rows of one dialogue: one per role in ``roles`` (MTA first)."""
    chats = role_chats(dialogue, prompts, missing, stats)
    if chats is None:
        return []
    finish = prompts.finish_token
    rows = []
    for role in roles:
        rows.append(
            {
                MESSAGES: chats[role],
                ROLE: role.value,
                STOP: [finish] if finish else [],  # the rollout's stop strings (both roles stop on [FINISH])
                QUESTION: dialogue.question,
                ORIGIN: dialogue.origin,
            }
        )
        stats.rows[role.value] = stats.rows.get(role.value, 0) + 1
    return rows


def single_agent_row(question: str, answer: str, prompts: PromptSet, origin: str, stats: ViewStats) -> dict[str, Any]:
    """The SFT row of a one-message answer under a single-agent prompt set (``cot``), rendered by ``Dialogue``."""
    played = Dialogue(question, ReMARolloutConfig(prompt_set=prompts, max_turns=1))
    played.record(Role.REASONING, answer)
    stats.dialogues += 1
    stats.rows[Role.REASONING.value] = stats.rows.get(Role.REASONING.value, 0) + 1
    return {MESSAGES: played.view(Role.REASONING), ROLE: Role.REASONING.value, STOP: [], QUESTION: question,
            ORIGIN: origin}  # fmt: skip


def _through_last_own_message(chat: list[dict[str, str]]) -> list[dict[str, str]]:
    last = max(i for i, message in enumerate(chat) if message["role"] == "assistant")
    return chat[: last + 1]


__all__ = [
    "MISSING_FINISH",
    "ViewStats",
    "clean_turns",
    "role_chats",
    "rollout_config",
    "sft_rows",
    "single_agent_row",
]
