"""A length budget for judge rows: what to do with pairs whose instruction and two responses are too long.

The paper states no prompt length for the judge task (its generation length is 2048); RewardBench and JudgeBench hold
responses of several thousand tokens. With no budget (the default, faithful: every pair is kept) an over-long RA chat
ends its episode as ``context_overflow`` at run time (reward 0). With a budget, each pair is measured -- the
instruction plus both responses, in characters, or in tokens of ``tokenizer`` -- and one over it is either

- ``filter``-ed out (counted), or
- ``truncate``-d by this rule [reconstruction]: the instruction is never cut (a pair whose instruction alone
  exceeds the budget is filtered in either mode); the two responses share what is left, a response shorter than
  half of it keeps its whole text and leaves the rest to the other; a cut response keeps its beginning and ends with
  :data:`MARKER`, whose length counts toward its share. The rule is symmetric, so both orders of a pair read the
  same texts.

The prompt template, the system prompt and the MTA's plan come on top of the budget: size it as the context cap
minus those (see README, "LLM-as-a-judge").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

Overlong = Literal["truncate", "filter"]
OVERLONG: tuple[str, ...] = ("truncate", "filter")
MARKER = "\n[... truncated]"


@dataclass(frozen=True)
class Trimmed:
    """A pair's texts after the budget; ``truncated`` says whether a response was cut."""

    instruction: str
    response_1: str
    response_2: str
    truncated: bool


@dataclass(frozen=True)
class LengthBudget:
    """``max_length`` units (characters, or tokens of ``tokenizer``: a path or hub id, or a loaded tokenizer) for
    instruction + both responses."""

    max_length: int
    overlong: str = "truncate"
    tokenizer: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 1:
            raise ValueError(f"--max-length must be a positive integer, got {self.max_length!r}")
        if self.overlong not in OVERLONG:
            raise ValueError(f"--overlong must be one of {OVERLONG}, got {self.overlong!r}")

    @property
    def unit(self) -> str:
        return "tokens" if self.tokenizer else "characters"

    def describe(self) -> str:
        name = self.tokenizer if isinstance(self.tokenizer, str) else getattr(self.tokenizer, "name_or_path", "")
        return f"{self.max_length} {self.unit}" + (f" of {name}" if self.tokenizer else "")

    @cached_property
    def _codec(self) -> tuple[Callable[[str], list[Any]], Callable[[list[Any]], str]]:
        if not self.tokenizer:
            return list, "".join
        tokenizer = self.tokenizer
        if isinstance(tokenizer, str):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        return (
            lambda text: tokenizer.encode(text, add_special_tokens=False),
            lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
        )

    def measure(self, text: str) -> int:
        return len(self._codec[0](text))

    def cut(self, text: str, share: int) -> str:
        """``text`` within ``share`` units: unchanged when it fits, else its beginning plus :data:`MARKER`."""
        encode, decode = self._codec
        units = encode(text)
        if len(units) <= share:
            return text
        keep = max(0, share - self.measure(MARKER))
        return decode(units[:keep]).rstrip() + MARKER

    def apply(self, instruction: str, response_1: str, response_2: str) -> Trimmed | None:
        """The pair within the budget, or None when it is to be filtered out."""
        lengths = [self.measure(t) for t in (instruction, response_1, response_2)]
        if sum(lengths) <= self.max_length:
            return Trimmed(instruction, response_1, response_2, truncated=False)
        room = self.max_length - lengths[0]
        if self.overlong == "filter" or room < 2 * (self.measure(MARKER) + 1):
            return None
        half = room // 2
        first, second = lengths[1], lengths[2]
        if first <= half:
            shares = (first, room - first)
        elif second <= half:
            shares = (room - second, second)
        else:
            shares = (half, half)
        return Trimmed(instruction, self.cut(response_1, shares[0]), self.cut(response_2, shares[1]), truncated=True)


__all__ = ["MARKER", "OVERLONG", "LengthBudget", "Trimmed"]
