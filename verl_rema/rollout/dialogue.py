"""ReMA's two-agent dialogue protocol as plain data: who speaks next, what each role sees, why an episode ended.

Free of veRL, tokenizers and engines so the protocol can be read and tested on its own; the agent loop
(``rema_agent_loop.py``) wraps it with tokens, the rollout server and the training rows.

Protocol (arXiv 2503.09501, ``notes/rema_spec.md`` §1):
- the meta-thinking agent (MTA, ``Role.META``) speaks first; a round is one MTA message and one reply of the
  reasoning agent (RA, ``Role.REASONING``); at most ``max_turns`` rounds;
- each role has its own chat view: its own messages are ``assistant``, the other's are ``user``; the RA's
  first user message is the prompt set's template filled with the question and the MTA's first message;
- the MTA ends the dialogue by writing the finish token; the RA answers once more and its last message is
  the final answer. Without a finish token (single-turn ReMA) the dialogue always runs ``max_turns`` rounds;
- a prompt set without a meta role is a single-agent baseline: the RA answers the question once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from verl_rema.prompts import PromptSet, load_prompt_set, render


class Role(str, Enum):
    """The two agents. The value is what the trainer sees in ``rema_role``."""

    META = "meta"
    REASONING = "reasoning"

    @property
    def other(self) -> Role:
        return Role.REASONING if self is Role.META else Role.META


class FinishReason(str, Enum):
    """Why an episode ended; only ``normal`` episodes can earn reward (spec §1, §3)."""

    NORMAL = "normal"  # the MTA wrote the finish token and the RA answered (or: no finish protocol, all rounds ran)
    MAX_TURNS = "max_turns"  # max_turns rounds ran and the MTA never wrote the finish token
    CONTEXT_OVERFLOW = "context_overflow"  # a role's chat reached its context cap before or during its turn
    TRUNCATED = "truncated"  # a message hit the per-message token limit (with stop_when_truncated)


FINISH_REASONS: tuple[str, ...] = tuple(reason.value for reason in FinishReason)

# ---------------------------------------------------------------------------------------------------------------
# Configuration (``rema.rollout`` in the trainer config)
# ---------------------------------------------------------------------------------------------------------------

CONFIG_DEFAULTS: dict[str, Any] = {
    "max_turns": 30,
    "max_tokens_per_message": 512,
    "max_context_tokens": None,  # None: rollout.prompt_length + rollout.response_length
    "stop_when_truncated": True,
    "prompt_set": "multiturn",
    "finish_token": "auto",  # "auto": the prompt set's; null or "": no finish protocol
}


@dataclass(frozen=True)
class DialogueConfig:
    """Protocol knobs, validated once. Per-role limits are resolved to one int per role."""

    prompt_set: PromptSet
    max_turns: int = 30
    max_tokens_per_message: Mapping[Role, int] = field(default_factory=lambda: {Role.META: 512, Role.REASONING: 512})
    max_context_tokens: Mapping[Role, int] = field(default_factory=lambda: {Role.META: 4096, Role.REASONING: 4096})
    stop_when_truncated: bool = True
    finish_token: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, *, default_context_tokens: int) -> DialogueConfig:
        """Parse the ``rema.rollout`` block; unknown keys are errors so that typos do not pass silently."""
        raw = dict(raw or {})
        unknown = set(raw) - set(CONFIG_DEFAULTS)
        if unknown:
            raise ValueError(f"rema.rollout: unknown keys {sorted(unknown)}; allowed: {sorted(CONFIG_DEFAULTS)}")
        values = {**CONFIG_DEFAULTS, **raw}
        prompt_set = load_prompt_set(values["prompt_set"])

        max_turns = _positive_int(values["max_turns"], "max_turns")
        per_message = _per_role(values["max_tokens_per_message"], "max_tokens_per_message", default=None)
        context = _per_role(values["max_context_tokens"], "max_context_tokens", default=default_context_tokens)
        if not isinstance(values["stop_when_truncated"], bool):
            raise ValueError(
                f"rema.rollout.stop_when_truncated must be true/false, got {values['stop_when_truncated']!r}"
            )

        finish_token = values["finish_token"]
        if finish_token == "auto":
            finish_token = prompt_set.finish_token
        elif finish_token is not None and not isinstance(finish_token, str):
            raise ValueError(f"rema.rollout.finish_token must be a string, 'auto' or null, got {finish_token!r}")
        finish_token = finish_token or None
        if finish_token is not None and not prompt_set.has_meta:
            raise ValueError(f"rema.rollout.finish_token={finish_token!r} needs a prompt set with a meta role")

        return cls(
            prompt_set=prompt_set,
            max_turns=max_turns,
            max_tokens_per_message=per_message,
            max_context_tokens=context,
            stop_when_truncated=values["stop_when_truncated"],
            finish_token=finish_token,
        )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rema.rollout.{name} must be a positive integer, got {value!r}")
    return value


def _per_role(value: Any, name: str, default: int | None) -> dict[Role, int]:
    """An int for both roles, or ``{meta: int, reasoning: int}`` (a missing role takes ``default``)."""
    if value is None:
        if default is None:
            raise ValueError(f"rema.rollout.{name} must be set")
        value = default
    if isinstance(value, Mapping):
        unknown = set(value) - {role.value for role in Role}
        if unknown:
            raise ValueError(f"rema.rollout.{name}: unknown roles {sorted(unknown)}; use 'meta' and 'reasoning'")
        resolved = {}
        for role in Role:
            role_value = value.get(role.value, default)
            if role_value is None:
                raise ValueError(f"rema.rollout.{name}.{role.value} must be set")
            resolved[role] = _positive_int(role_value, f"{name}.{role.value}")
        return resolved
    number = _positive_int(value, name)
    return {role: number for role in Role}


# ---------------------------------------------------------------------------------------------------------------
# The question of a dataset row
# ---------------------------------------------------------------------------------------------------------------


def describe_row(row: Mapping[str, Any]) -> str:
    """A short label for error messages: the dataset index, uid and data source when present."""
    parts = []
    for key in ("index", "uid", "data_source"):
        value = row.get(key)
        if value is not None:
            value = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
            parts.append(f"{key}={value}")
    return "row(" + (", ".join(parts) or "unlabelled") + ")"


def question_from_row(row: Mapping[str, Any]) -> str:
    """The question of a dataset row: its ``question`` column, else the last user message of its prompt.

    Raises ValueError naming the row when neither holds non-empty text: a data bug to fix, not an episode.
    """
    question = row.get("question")
    if _usable_text(question):
        return str(question)
    for key in ("raw_prompt", "prompt"):
        text = _last_user_text(row.get(key))
        if _usable_text(text):
            return text
    raise ValueError(
        f"ReMA rollout: {describe_row(row)} has no usable question: `question` is {question!r} and no user "
        "message with text was found in `raw_prompt`/`prompt`"
    )


def _usable_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _last_user_text(messages: Any) -> str | None:
    if messages is None or isinstance(messages, str | bytes | Mapping):
        return None
    try:
        items = list(messages)
    except TypeError:
        return None
    for message in reversed(items):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            try:  # a list of content parts: keep the text parts
                return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
            except TypeError:
                return None
    return None


# ---------------------------------------------------------------------------------------------------------------
# The dialogue
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message as it entered the dialogue.

    ``text`` is what the other role reads: the decoded reply, cut right after the finish token when the MTA wrote
    it. ``token_ids`` are the ids the engine sampled (the finish token's ids included, text after it too).
    """

    role: Role
    text: str
    token_ids: tuple[int, ...] = ()
    truncated: bool = False  # hit its token budget without stopping
    finished: bool = False  # the MTA wrote the finish token
    finish_token: str | None = None

    @property
    def content(self) -> str:
        """The text without the finish token, for emptiness and leakage checks."""
        if self.finished and self.finish_token:
            return self.text.replace(self.finish_token, "")
        return self.text

    @property
    def empty(self) -> bool:
        return not self.content.strip()


class Dialogue:
    """State of one episode: the messages so far, who speaks next, each role's chat view, the finish reason."""

    def __init__(self, question: str, config: DialogueConfig):
        if not _usable_text(question):
            raise ValueError(f"ReMA dialogue needs a non-empty question, got {question!r}")
        self.question = question
        self.config = config
        self.messages: list[Message] = []
        self.finish_reason: FinishReason | None = None

    # -- reading the state ---------------------------------------------------------------------------------------

    @property
    def roles(self) -> tuple[Role, ...]:
        """Speaking order within a round."""
        return (Role.META, Role.REASONING) if self.config.prompt_set.has_meta else (Role.REASONING,)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def rounds(self) -> int:
        """Rounds started so far (= messages of the first speaker)."""
        return sum(1 for message in self.messages if message.role is self.roles[0])

    @property
    def final_answer(self) -> str:
        """The RA's last message ("" if the RA never spoke): what the reward scores."""
        for message in reversed(self.messages):
            if message.role is Role.REASONING:
                return message.text
        return ""

    def next_role(self) -> Role:
        if self.done:
            raise RuntimeError(f"the dialogue has ended ({self.finish_reason.value}); nobody speaks next")
        if not self.messages:
            return self.roles[0]
        return self.roles[(self.roles.index(self.messages[-1].role) + 1) % len(self.roles)]

    def view(self, role: Role) -> list[dict[str, str]]:
        """The chat ``role`` sees: its system prompt, its first user message, then own = assistant, other = user."""
        prompts = self.config.prompt_set
        if role is Role.META:
            if prompts.meta is None:
                raise ValueError(f"prompt set {prompts.name!r} has no meta role")
            first_user = render(prompts.meta.first_user, question=self.question)
            system, history = prompts.meta.system, self.messages
        elif prompts.has_meta:
            if not self.messages:
                raise RuntimeError("the RA's view starts with the MTA's first message, which does not exist yet")
            first_user = render(prompts.reasoning.first_user, question=self.question, instruction=self.messages[0].text)
            system, history = prompts.reasoning.system, self.messages[1:]
        else:
            first_user = render(prompts.reasoning.first_user, question=self.question)
            system, history = prompts.reasoning.system, self.messages
        chat = [{"role": "system", "content": system}, {"role": "user", "content": first_user}]
        for message in history:
            chat.append({"role": "assistant" if message.role is role else "user", "content": message.text})
        return chat

    # -- advancing it --------------------------------------------------------------------------------------------

    def record(
        self,
        role: Role,
        text: str,
        token_ids: Sequence[int] = (),
        *,
        hit_limit: bool = False,
        cut_by_context: bool = False,
    ) -> Message:
        """Add ``role``'s reply and decide whether the episode ends.

        ``hit_limit``: the reply used its whole token budget without stopping. ``cut_by_context``: that budget was
        smaller than the per-message limit because the role's chat was near its context cap.
        """
        expected = self.next_role()
        if role is not expected:
            raise RuntimeError(f"protocol violation: {role.value} spoke but {expected.value} was due")
        finish_token = self.config.finish_token
        finished = role is Role.META and finish_token is not None and finish_token in text
        if finished:
            text = text[: text.index(finish_token) + len(finish_token)]
        message = Message(
            role=role,
            text=text,
            token_ids=tuple(token_ids),
            truncated=hit_limit and not finished,
            finished=finished,
            finish_token=finish_token,
        )
        self.messages.append(message)

        if message.truncated and cut_by_context:
            self._end(FinishReason.CONTEXT_OVERFLOW)  # this role's chat is full: it cannot speak again
        elif message.truncated and self.config.stop_when_truncated:
            self._end(FinishReason.TRUNCATED)
        elif role is Role.REASONING:
            if not self.config.prompt_set.has_meta:
                self._end(FinishReason.NORMAL)
            elif self._last(Role.META).finished:
                self._end(FinishReason.NORMAL)
            elif self.rounds >= self.config.max_turns:
                self._end(FinishReason.MAX_TURNS if finish_token is not None else FinishReason.NORMAL)
        return message

    def overflow(self) -> None:
        """The next speaker's chat has no room left for a reply: end with ``context_overflow``."""
        self.next_role()  # raises if already ended
        self._end(FinishReason.CONTEXT_OVERFLOW)

    def _last(self, role: Role) -> Message:
        return next(message for message in reversed(self.messages) if message.role is role)

    def _end(self, reason: FinishReason) -> None:
        self.finish_reason = reason


__all__ = [
    "CONFIG_DEFAULTS",
    "FINISH_REASONS",
    "Dialogue",
    "DialogueConfig",
    "FinishReason",
    "Message",
    "Role",
    "describe_row",
    "question_from_row",
]
