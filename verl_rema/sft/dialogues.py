"""Two-role dialogues for the SFT warm-up: one data model, two file formats, every bad row located by file and line.

A dialogue is a question and its turns: the meta-thinking agent (MTA) first, then the two roles alternating, the
reasoning agent (RA) last (its last message holds the answer). Texts are kept exactly as read; what the rollout
would do to them (cut the MTA after ``[FINISH]``, drop the RA's ``[FINISH]``) is decided in :mod:`.views`.

Formats (``.jsonl``, or ``.jsonl.gz``):

- plain, one dialogue a line: ``{"question": str, "turns": [{"role": "meta"|"reasoning", "content": str}, ...]}``;
- LLaMA-Factory, the reference's two files (``instruction, input, output, system, history``), one record per role
  and dialogue. MTA file: ``history[0] = [question, m1]``, then ``[y_j, m_j+1]`` pairs, ``instruction = y_k-1``,
  ``output = m_k``. RA file: ``history[0] = ["Question:\\n{q}\\n\\nInstruction:\\n{m1}", y1]``, then
  ``[m_j, y_j]`` pairs, ``instruction = m_k``, ``output = y_k``. Records are paired by that first RA message
  (built from the MTA record's question and first message), not by line number, and each pair must agree on
  the messages both files hold. ``system`` is not read: the chosen prompt set's system prompts are used.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

from verl_rema.data.schema import BadRowError, BadRowPolicy
from verl_rema.protocol import ROLES, Role

#: How the reference built the RA's first user message in the LLaMA-Factory files (the pairing key).
LLAMA_FACTORY_RA_FIRST_USER = "Question:\n{question}\n\nInstruction:\n{instruction}"

T = TypeVar("T")


class BadDialogueError(BadRowError):
    """A malformed dialogue record, located by file, 1-based line and field."""

    def __init__(self, file: str, line: int, field: str, reason: str) -> None:
        super().__init__(file, line, field, reason)
        self.args = (f"{file}:{line}: field {field!r}: {reason}",)


class Turn(NamedTuple):
    """One message of a dialogue: who wrote it, and its text as read."""

    role: Role
    text: str


@dataclass(frozen=True)
class TwoRoleDialogue:
    """A question and its turns (MTA first, alternating, RA last), and where it was read (``partner``: the RA
    record of a LLaMA-Factory pair, ``file:line``)."""

    question: str
    turns: tuple[Turn, ...]
    file: str = "<memory>"
    line: int = 0
    partner: str = ""

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}" + (f"+{self.partner}" if self.partner else "")

    def error(self, field: str, reason: str) -> BadDialogueError:
        return BadDialogueError(self.file, self.line, field, reason)

    @property
    def rounds(self) -> int:
        return sum(1 for turn in self.turns if turn.role is Role.META)

    def to_json(self) -> dict[str, Any]:
        """The plain format's record."""
        return {"question": self.question, "turns": [{"role": t.role.value, "content": t.text} for t in self.turns]}


def check_dialogue(question: Any, turns: list[Turn], file: str, line: int) -> TwoRoleDialogue:
    """A dialogue, or :class:`BadDialogueError` naming what breaks the two-role structure."""
    if not isinstance(question, str) or not question.strip():
        raise BadDialogueError(file, line, "question", f"must be non-empty text, got {question!r:.80}")
    if len(turns) < 2:
        raise BadDialogueError(file, line, "turns", f"needs at least one MTA and one RA message, got {len(turns)}")
    for index, turn in enumerate(turns):
        expected = Role.META if index % 2 == 0 else Role.REASONING
        if turn.role is not expected:
            raise BadDialogueError(
                file,
                line,
                f"turns[{index}].role",
                f"{expected.value} expected (MTA first, alternating), got {turn.role.value}",
            )
        if not turn.text.strip():
            raise BadDialogueError(file, line, f"turns[{index}].content", "empty message")
    if turns[-1].role is not Role.REASONING:
        raise BadDialogueError(file, line, "turns", "the last message must be the reasoning agent's (the answer)")
    return TwoRoleDialogue(question, tuple(turns), file, line)


# ---------------------------------------------------------------------------------------------------------------
# Reading JSON lines
# ---------------------------------------------------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | BadDialogueError]]:
    """``(line number, object)`` per non-blank line; a line that is not a JSON object comes as its error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such dialogue file: {path}")
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
                if not text.strip():
                    continue
                record = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                yield number, BadDialogueError(str(path), number, "<line>", f"not UTF-8 JSON: {error}")
                continue
            if not isinstance(record, dict):
                reason = f"not a JSON object: {type(record).__name__}"
                yield number, BadDialogueError(str(path), number, "<line>", reason)
                continue
            yield number, record


def _read_records(path: str | Path, policy: BadRowPolicy, parse: Callable[[Mapping[str, Any], str, int], T]) -> list[T]:
    """``parse(record, file, line)`` of every record of a JSON-lines file; a bad line, or a record ``parse`` rejects
    with :class:`BadDialogueError`, goes to ``policy`` (raise, or skip and record)."""
    file = str(Path(path).expanduser())
    parsed = []
    for number, record in json_lines(path):
        try:
            if isinstance(record, BadDialogueError):
                raise record
            parsed.append(parse(record, file, number))
        except BadDialogueError as error:
            policy.handle(error)
    return parsed


def read_plain(path: str | Path, policy: BadRowPolicy) -> list[TwoRoleDialogue]:
    """Dialogues of a plain-format file; bad lines go to ``policy`` (raise, or skip and record)."""
    return _read_records(path, policy, _plain)


def _plain(record: Mapping[str, Any], file: str, line: int) -> TwoRoleDialogue:
    turns = record.get("turns")
    if not isinstance(turns, list):
        raise BadDialogueError(file, line, "turns", f"must be a list of {{role, content}}, got {turns!r:.80}")
    parsed = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise BadDialogueError(file, line, f"turns[{index}]", f"must be {{role, content}}, got {turn!r:.80}")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise BadDialogueError(file, line, f"turns[{index}].role", f"must be one of {list(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise BadDialogueError(file, line, f"turns[{index}].content", f"must be text, got {content!r:.80}")
        parsed.append(Turn(Role(role), content))
    return check_dialogue(record.get("question"), parsed, file, line)


# ---------------------------------------------------------------------------------------------------------------
# LLaMA-Factory: one file per role, paired
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chat:
    """One LLaMA-Factory record as alternating user/assistant messages."""

    users: list[str]
    assistants: list[str]
    file: str
    line: int


def _chat(record: Mapping[str, Any], file: str, line: int) -> _Chat:
    history = record.get("history") or []
    if not isinstance(history, list):
        raise BadDialogueError(file, line, "history", f"must be a list of [user, assistant] pairs, got {history!r:.80}")
    users, assistants = [], []
    for index, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(text, str) for text in pair)):
            raise BadDialogueError(
                file, line, f"history[{index}]", f"must be a [user, assistant] text pair, got {pair!r:.80}"
            )
        users.append(pair[0])
        assistants.append(pair[1])
    for key in ("instruction", "output"):
        if not isinstance(record.get(key), str):
            raise BadDialogueError(file, line, key, f"must be text, got {record.get(key)!r:.80}")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise BadDialogueError(file, line, "input", f"must be text or null, got {extra!r:.80}")
    users.append(record["instruction"] + (f"\n{extra}" if extra else ""))  # LLaMA-Factory joins them so
    assistants.append(record["output"])
    return _Chat(users, assistants, file, line)


def read_llama_factory(
    meta_path: str | Path, reasoning_path: str | Path, policy: BadRowPolicy
) -> list[TwoRoleDialogue]:
    """Dialogues from the reference's MTA and RA files, in the MTA file's order.

    Every record that has no partner, has two, or disagrees with its partner is a bad row (``policy``), reported
    with the file and line of each record involved.
    """
    metas, reasonings = _read_records(meta_path, policy, _chat), _read_records(reasoning_path, policy, _chat)
    by_first: dict[str, list[_Chat]] = {}
    for chat in reasonings:
        by_first.setdefault(chat.users[0], []).append(chat)
    paired: set[int] = set()
    dialogues = []
    for meta in metas:
        try:
            key = LLAMA_FACTORY_RA_FIRST_USER.format(question=meta.users[0], instruction=meta.assistants[0])
            partners = by_first.get(key, [])
            if len(partners) != 1:
                where = ", ".join(f"{p.file}:{p.line}" for p in partners) or "none"
                raise BadDialogueError(
                    meta.file, meta.line, "history[0]",
                    f"{len(partners)} RA records start with this question and first message (found: {where}); "
                    f"expected exactly one whose first user message is {key[:80]!r}...",
                )  # fmt: skip
            reasoning = partners[0]
            if id(reasoning) in paired:
                raise BadDialogueError(
                    meta.file, meta.line, "history[0]",
                    f"its RA record {reasoning.file}:{reasoning.line} is already paired with an earlier MTA record",
                )  # fmt: skip
            paired.add(id(reasoning))
            dialogues.append(_merge(meta, reasoning))
        except BadDialogueError as error:
            policy.handle(error)
    for chat in reasonings:
        if id(chat) not in paired:
            policy.handle(
                BadDialogueError(
                    chat.file,
                    chat.line,
                    "history[0]",
                    f"not paired with an MTA record of {meta_path} ({len(by_first[chat.users[0]])} RA records start "
                    "with this first user message)",
                )  # fmt: skip
            )
    return dialogues


def _merge(meta: _Chat, reasoning: _Chat) -> TwoRoleDialogue:
    """``m1 y1 ... m_k y_k`` from the MTA record ``[q, y1..y_k-1] / [m1..m_k]`` and the RA record
    ``[first, m2..m_k] / [y1..y_k]``, after checking that the messages both hold agree."""
    ms, ys = meta.assistants, reasoning.assistants
    round_ = _first_disagreement(meta, reasoning)
    if round_ is not None:
        raise BadDialogueError(
            meta.file, meta.line, "history",
            f"this MTA record ({len(ms)} MTA messages) and its RA record {reasoning.file}:{reasoning.line} "
            f"({len(ys)} RA messages) disagree from round {round_} on",
        )  # fmt: skip
    turns = [
        Turn(role, text) for m, y in zip(ms, ys, strict=True) for role, text in ((Role.META, m), (Role.REASONING, y))
    ]
    dialogue = check_dialogue(meta.users[0], turns, meta.file, meta.line)
    return TwoRoleDialogue(
        dialogue.question, dialogue.turns, meta.file, meta.line, f"{reasoning.file}:{reasoning.line}"
    )


def _first_disagreement(meta: _Chat, reasoning: _Chat) -> int | None:
    """The first round (1-based) whose messages the two records disagree on, or None."""
    ms, ys = meta.assistants, reasoning.assistants
    if len(ms) != len(ys):
        return min(len(ms), len(ys))
    for j in range(len(ms) - 1):
        if meta.users[j + 1] != ys[j]:  # the RA's reply of round j+1, as the MTA read it
            return j + 1
        if reasoning.users[j + 1] != ms[j + 1]:  # the MTA's message of round j+2, as the RA read it
            return j + 2
    return None


def write_plain(dialogues: list[TwoRoleDialogue], path: str | Path) -> Path:
    """The plain format, gzip-compressed when ``path`` ends in ``.gz`` (byte-identical for identical input)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(d.to_json(), ensure_ascii=False) + "\n" for d in dialogues).encode()
    path.write_bytes(gzip.compress(text, compresslevel=9, mtime=0) if path.suffix == ".gz" else text)
    return path


__all__ = [
    "LLAMA_FACTORY_RA_FIRST_USER",
    "BadDialogueError",
    "Turn",
    "TwoRoleDialogue",
    "check_dialogue",
    "json_lines",
    "read_llama_factory",
    "read_plain",
    "write_plain",
]
