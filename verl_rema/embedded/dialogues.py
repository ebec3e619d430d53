"""Two-role dialogues of the embedded arithmetic task: a tiny, exact stand-in for the LIMO dialogues of the paper.

Each problem ``a op1 b op2 c`` becomes a two-round decomposition in which both roles matter: the MTA copies the
operands and names the operation, the RA computes, and the second round needs the RA's own first result::

    MTA  First compute 37+55.
    RA   37+55=92.
    MTA  Then subtract 52. [FINISH]
    RA   92-52=40. \\boxed{40}

Used for the CPU-sized SFT warm-up (``rema.sft.source=embedded``) and, later, to warm-start the embedded model for
multi-turn RL. Questions are the embedded RL data's (``task.Problem.question``), so a model tuned on these dialogues
is evaluated by the embedded validation set as is.
"""

from __future__ import annotations

import re

from verl_rema.embedded.task import Problem, make_split
from verl_rema.protocol import Role
from verl_rema.sft.dialogues import Turn, TwoRoleDialogue, check_dialogue

FINISH_TOKEN = "[FINISH]"  # the multiturn prompt set's
OPERATION_WORDS = {"+": "add", "-": "subtract", "*": "multiply by"}
SOURCE = "<embedded arithmetic dialogues>"


def decomposition(problem: Problem, finish_token: str = FINISH_TOKEN) -> list[Turn]:
    """The four messages of ``problem``'s dialogue (see the module docstring)."""
    a, b, c = (int(n) for n in re.findall(r"\d+", problem.expression))
    op1, op2 = ("-" if problem.form == 1 else "+"), ("-", "+", "*")[problem.form]
    first = a - b if problem.form == 1 else a + b
    texts = [
        (Role.META, f"First compute {a}{op1}{b}."),
        (Role.REASONING, f"{a}{op1}{b}={first}."),
        (Role.META, f"Then {OPERATION_WORDS[op2]} {c}. {finish_token}"),
        (Role.REASONING, f"{first}{op2}{c}={problem.answer}. \\boxed{{{problem.answer}}}"),
    ]
    return [Turn(role, text) for role, text in texts]


def make_dialogues(
    n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset(), finish_token: str = FINISH_TOKEN
) -> list[TwoRoleDialogue]:
    """``n`` dialogues of distinct problems, none of whose expressions is in ``exclude`` (e.g. the validation set's),
    deterministic in ``seed``; ``line`` is the dialogue's index, for error messages."""
    return [
        check_dialogue(problem.question, decomposition(problem, finish_token), SOURCE, index)
        for index, problem in enumerate(make_split(n, seed=seed, exclude=exclude))
    ]


__all__ = ["FINISH_TOKEN", "OPERATION_WORDS", "decomposition", "make_dialogues"]
