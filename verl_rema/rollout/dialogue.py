"""ReMA's two-agent dialogue protocol as plain data: who speaks next, what each role sees, why an episode ended.

Free of veRL, tokenizers and engines so the protocol can be read and tested on its own; the agent loop
(``rema_agent_loop.py``) wraps it with tokens, the rollout server and the training rows.

Protocol (arXiv 2503.09501 §3.2 and App. D.2; the reference run's code for the finish rules):
- the meta-thinking agent (MTA, ``Role.META``) speaks first; a round is one MTA message and one reply of the
  reasoning agent (RA, ``Role.REASONING``); at most ``max_turns`` rounds;
- each role has its own chat view: its own messages are ``assistant``, the other's are ``user``; the RA's
  first user message is the prompt set's template filled with the question and the MTA's first message;
- the MTA ends the dialogue by writing the finish token; the RA answers once more and its last message is
  the final answer. Without a finish token (single-turn ReMA) the dialogue always runs ``max_turns`` rounds.
  The finish token also stops the RA's generation (the SFT dialogues end the RA's last answer with it), and is
  stripped from the RA's text: it only ends the dialogue when the MTA writes it;
- a prompt set without a meta role is a single-agent baseline: the RA answers the question once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verl_rema.prompts import render
from verl_rema.protocol import FinishReason, Role
from verl_rema.rollout.config import ReMARolloutConfig

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


def row_fields_of(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """The prompt set's extra placeholders from a dataset row: its column of that name, else its ``extra_info``
    entry. Raises ValueError naming the row and the field when one is missing or not text."""
    extra = row.get("extra_info")
    values = {}
    for name in names:
        value = row.get(name)
        if value is None and isinstance(extra, Mapping):
            value = extra.get(name)
        if not isinstance(value, str):
            raise ValueError(
                f"ReMA rollout: {describe_row(row)} has no text field {name!r} (a column or an extra_info entry), "
                f"which the prompt set's templates use; got {value!r:.80}"
            )
        values[name] = value
    return values


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

    def __init__(self, question: str, config: ReMARolloutConfig, fields: Mapping[str, str] | None = None):
        if not _usable_text(question):
            raise ValueError(f"ReMA dialogue needs a non-empty question, got {question!r}")
        self.question = question
        self.config = config
        self.fields = dict(fields or {})  # the prompt set's row_fields, filled from the dataset row
        self.messages: list[Message] = []
        self.finish_reason: FinishReason | None = None
        # Read every turn, the same all episode: derived once (the config's properties cost µs a call).
        self._roles = config.roles
        self._openings: dict[tuple[Role, bool], tuple[str, str]] = {}

    # -- reading the state ---------------------------------------------------------------------------------------

    @property
    def roles(self) -> tuple[Role, ...]:
        """Speaking order within a round."""
        return self._roles

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
        if role is Role.REASONING and self.config.prompts.has_meta and not self.messages:
            raise RuntimeError("the RA's view starts with the MTA's first message, which does not exist yet")
        chat = self.opening(role)
        history = self.messages[1:] if role is Role.REASONING and self.config.prompts.has_meta else self.messages
        for message in history:
            chat.append({"role": "assistant" if message.role is role else "user", "content": message.text})
        return chat

    def opening(self, role: Role) -> list[dict[str, str]]:
        """``role``'s system prompt and first user message. The RA's holds the MTA's first message as instruction
        (empty while the MTA has not spoken: the opening of a role that never got a turn)."""
        key = (role, bool(self.messages))  # the MTA's first message, once there, never changes
        if key not in self._openings:
            self._openings[key] = self._render_opening(role)
        system, first_user = self._openings[key]
        return [{"role": "system", "content": system}, {"role": "user", "content": first_user}]

    def _render_opening(self, role: Role) -> tuple[str, str]:
        prompts = self.config.prompts
        if role is Role.META:
            if prompts.meta is None:
                raise ValueError(f"prompt set {prompts.name!r} has no meta role")
            system, first_user = prompts.meta.system, self._render(prompts.meta.first_user)
        elif prompts.has_meta:
            instruction = self.messages[0].text if self.messages else ""
            system, first_user = (
                prompts.reasoning.system,
                self._render(prompts.reasoning.first_user, instruction=instruction),
            )
        else:
            system, first_user = prompts.reasoning.system, self._render(prompts.reasoning.first_user)
        return system, first_user

    def _render(self, template: str, **values: str) -> str:
        return render(template, self.config.prompts.row_fields, question=self.question, **self.fields, **values)

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

        ``hit_limit``: the reply used its whole token budget without stopping. ``cut_by_context`` (strict context
        cap only): that budget was smaller than the per-message limit because the role's chat was near its cap.
        """
        expected = self.next_role()
        if role is not expected:
            raise RuntimeError(f"protocol violation: {role.value} spoke but {expected.value} was due")
        finish_token = self.config.finish
        stopped_on_finish = finish_token is not None and finish_token in text
        if stopped_on_finish and role is Role.META:
            text = text[: text.index(finish_token) + len(finish_token)]  # the RA reads the MTA's [FINISH]
        elif stopped_on_finish:
            text = text[: text.index(finish_token)].rstrip()  # the RA's stop string is not part of its answer
        message = Message(
            role=role,
            text=text,
            token_ids=tuple(token_ids),
            truncated=hit_limit and not stopped_on_finish,
            finished=stopped_on_finish and role is Role.META,
            finish_token=finish_token,
        )
        self.messages.append(message)

        if message.truncated and cut_by_context:
            self._end(FinishReason.CONTEXT_OVERFLOW)  # this role's chat is full: it cannot speak again
        elif message.truncated and self.config.stop_when_truncated:
            self._end(FinishReason.TRUNCATED)
        elif role is Role.REASONING:
            if not self.config.prompts.has_meta:
                self._end(FinishReason.NORMAL)
            elif self._last(Role.META).finished:
                self._end(FinishReason.NORMAL)
            elif self.rounds >= self.config.max_turns:
                self._end(FinishReason.MAX_TURNS if finish_token is not None else FinishReason.NORMAL)
        return message

    def overflow(self) -> None:
        """The next speaker's chat exceeds its context cap before its turn: end with ``context_overflow``."""
        self.next_role()  # raises if already ended
        self._end(FinishReason.CONTEXT_OVERFLOW)

    def _last(self, role: Role) -> Message:
        return next(message for message in reversed(self.messages) if message.role is role)

    def _end(self, reason: FinishReason) -> None:
        self.finish_reason = reason


__all__ = ["Dialogue", "Message", "describe_row", "question_from_row", "row_fields_of"]
