"""Two-role dialogues of the embedded arithmetic task: a tiny, exact stand-in for the LIMO dialogues of the paper.

Each problem ``a op1 b op2 c`` becomes a two-round decomposition in which both roles matter: the MTA copies the
operands and names the operation, the RA computes, and the second round needs the RA's own first result::

    MTA  First compute 37+55.
    RA   37+55=92.
    MTA  Then subtract 52. [FINISH]
    RA   92-52=40. \\boxed{40}

Used for the CPU-sized SFT warm-up (``rema.sft.source=embedded``) and to warm-start the embedded model for
multi-turn RL. Questions are the embedded RL data's (``task.Problem.question``), so a model tuned on these dialogues
is evaluated by the embedded validation set as is.

An *imperfect teacher* (``wrong_plan_share``) makes a fixed share of the dialogues of some question forms carry a
wrong plan: the MTA names the wrong second operation (``Then add 52.`` for ``37+55-52``) and the RA, a faithful
follower, computes what it was told, so the answer is wrong. Which problems are affected is a hash of the expression
(deterministic, but unpredictable from the question), so SFT to convergence learns the teacher's error *rate* per
form: with a share above one half, greedy decoding picks the wrong plan, and sampling still finds the right one,
which a verifiable reward can then reinforce. ``drill_texts`` are packed equations in the RA's surface form, the
cheap arithmetic practice the toy SFT needs to learn the sums at all (see ``hydra_configs/sft/recipe/sft_toy.yaml``).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Collection

from verl_rema.embedded.task import TASKS, OperandRanges, Problem, make_split, sample_problem
from verl_rema.protocol import Role
from verl_rema.sft.dialogues import Turn, TwoRoleDialogue, check_dialogue

FINISH_TOKEN = "[FINISH]"  # the multiturn prompt set's
OPERATION_WORDS = {"+": "add", "-": "subtract", "*": "multiply by"}
WRONG_OPERATION = {"-": "+", "+": "-", "*": "+"}  # the imperfect teacher's confusion of the second operation
SOURCE = "<embedded arithmetic dialogues>"
DRILL_SOURCE = "<embedded arithmetic drill>"
FLAW_SALT = "verl_rema/wrong_plan/v1"


def operands(problem: Problem) -> tuple[int, int, int, str, str, int]:
    """``(a, b, c, op1, op2, a op1 b)`` of ``problem``."""
    a, b, c = (int(n) for n in re.findall(r"\d+", problem.expression))
    op1, op2 = ("-" if problem.form == 1 else "+"), ("-", "+", "*")[problem.form]
    return a, b, c, op1, op2, (a - b if problem.form == 1 else a + b)


def apply(first: int, op: str, c: int) -> int:
    return first + c if op == "+" else first - c if op == "-" else first * c


def flaw_draw(problem: Problem, occurrence: int = 0) -> float:
    """A uniform number in [0, 1) fixed by the expression (and, for a problem taught more than once, by which of its
    dialogues this is): which dialogues the imperfect teacher gets wrong."""
    key = problem.expression if occurrence == 0 else f"{problem.expression}#{occurrence}"
    digest = hashlib.sha256(f"{FLAW_SALT}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def has_wrong_plan(problem: Problem, share: float, forms: Collection[int], occurrence: int = 0) -> bool:
    """Whether the imperfect teacher's plan for ``problem`` is wrong: a ``share`` of the problems of ``forms``,
    except where the wrong operation would leave the non-negative integers (then the plan stays right)."""
    if problem.form not in forms or flaw_draw(problem, occurrence) >= share:
        return False
    _, _, c, _, op2, first = operands(problem)
    return apply(first, WRONG_OPERATION[op2], c) >= 0


def teacher_steps(problem: Problem, wrong_plan: bool = False) -> tuple[int, int, int, str, str, int, int]:
    """``(a, b, c, op1, op2, first, result)`` as the teacher plans and computes them (``op2`` wrong if asked)."""
    a, b, c, op1, op2, first = operands(problem)
    if wrong_plan:
        op2 = WRONG_OPERATION[op2]
    return a, b, c, op1, op2, first, apply(first, op2, c)


def decomposition(problem: Problem, finish_token: str = FINISH_TOKEN, wrong_plan: bool = False) -> list[Turn]:
    """The four messages of ``problem``'s dialogue (see the module docstring); ``wrong_plan``: the MTA names the
    wrong second operation and the RA follows it."""
    a, b, c, op1, op2, first, result = teacher_steps(problem, wrong_plan)
    texts = [
        (Role.META, f"First compute {a}{op1}{b}."),
        (Role.REASONING, f"{a}{op1}{b}={first}."),
        (Role.META, f"Then {OPERATION_WORDS[op2]} {c}. {finish_token}"),
        (Role.REASONING, f"{first}{op2}{c}={result}. \\boxed{{{result}}}"),
    ]
    return [Turn(role, text) for role, text in texts]


def cot_solution(problem: Problem, wrong_plan: bool = False) -> str:
    """The single-message chain of thought of the same teacher (the CoT baseline's SFT target)."""
    a, b, c, op1, op2, first, result = teacher_steps(problem, wrong_plan)
    return f"{a}{op1}{b}={first}. {first}{op2}{c}={result}. \\boxed{{{result}}}"


def make_dialogues(
    n: int,
    seed: int,
    exclude: set[str] | frozenset[str] = frozenset(),
    finish_token: str = FINISH_TOKEN,
    wrong_plan_share: float = 0.0,
    wrong_plan_forms: Collection[int] = (0, 1, 2),
    ranges: OperandRanges = TASKS["embedded"],
    repeats: int = 1,
) -> list[TwoRoleDialogue]:
    """``n`` dialogues of distinct problems (``ranges``' task), none of whose expressions is in ``exclude`` (e.g. the
    validation set's), deterministic in ``seed``; ``line`` is the dialogue's index, for error messages.
    ``wrong_plan_share``: the share of the ``wrong_plan_forms`` dialogues whose plan is wrong (:func:`has_wrong_plan`).
    ``repeats``: each problem is taught that many times, each with its own draw of the teacher's plan, so on a small
    problem space the model learns the teacher's error *rate* rather than which problems it errs on."""
    dialogues = []
    problems = make_split(-(-n // repeats), seed=seed, exclude=exclude, ranges=ranges)
    for index in range(n):
        problem, occurrence = problems[index % len(problems)], index // len(problems)
        wrong = has_wrong_plan(problem, wrong_plan_share, wrong_plan_forms, occurrence)
        dialogues.append(check_dialogue(problem.question, decomposition(problem, finish_token, wrong), SOURCE, index))
    return dialogues


def drill_texts(
    n: int,
    seed: int,
    exclude: Collection[str] = frozenset(),
    equations: int = 12,
    ranges: OperandRanges = TASKS["embedded"],
) -> list[str]:
    """``n`` texts of ``equations`` packed equations each, two per problem in the RA's surface form (``19+10=29.
    29*9=261.``), from problems not in ``exclude``: arithmetic practice at ~8 tokens an equation instead of the
    ~60 template and prompt tokens around each equation of a dialogue view."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while len(parts) < equations:
            problem = sample_problem(rng, ranges)
            if problem.expression in exclude:
                continue
            a, b, c, op1, op2, first, result = teacher_steps(problem)
            parts += [f"{a}{op1}{b}={first}.", f"{first}{op2}{c}={result}."]
        texts.append(" ".join(parts[:equations]))
    return texts


__all__ = [
    "DRILL_SOURCE",
    "FINISH_TOKEN",
    "OPERATION_WORDS",
    "WRONG_OPERATION",
    "cot_solution",
    "decomposition",
    "drill_texts",
    "flaw_draw",
    "has_wrong_plan",
    "make_dialogues",
]
