"""Synthetic verifiable math: three-operand integer arithmetic with a boxed answer.

Forms ``a+b-c``, ``a-b+c`` and ``(a+b)*c`` with every intermediate value non-negative, so a
tiny model can learn it and :mod:`math_verify` can check it like any MATH answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DATA_SOURCE = "verl_rema/toy_arith"


@dataclass(frozen=True)
class Problem:
    expression: str  # e.g. "35-7+24"
    answer: int
    form: int  # 0: a+b-c, 1: a-b+c, 2: (a+b)*c
    solution: str  # worked chain of thought ending in \boxed{answer}

    @property
    def question(self) -> str:
        return f"Compute {self.expression}. Put the answer in \\boxed{{}}."


@dataclass(frozen=True)
class OperandRanges:
    """How large the numbers are: ``a, b, c`` of ``a+b-c`` and ``a-b+c`` in [1, additive]; ``a, b`` of ``(a+b)*c`` in
    [1, product_base] and ``c`` in [2, factor]. The size of the arithmetic a model must learn is set here."""

    additive: int = 60
    product_base: int = 20
    factor: int = 9

    def space(self) -> int:
        """An upper bound on the number of distinct problems (what ``make_split`` can draw)."""
        return 2 * self.additive**3 + self.product_base**2 * (self.factor - 1)


# The embedded default's task, and the toy learning experiment's: single-digit operands, whose ~500 arithmetic facts
# a 0.6M-parameter model learns in a few hundred SFT steps (the default's two-digit sums take thousands).
TASKS = {"embedded": OperandRanges(), "toy": OperandRanges(additive=9, product_base=9, factor=9)}


def task_ranges(task: str) -> OperandRanges:
    if task not in TASKS:
        raise ValueError(f"unknown embedded task {task!r}; choose one of {sorted(TASKS)}")
    return TASKS[task]


def sample_problem(rng: random.Random, ranges: OperandRanges = TASKS["embedded"]) -> Problem:
    form = rng.randrange(3)
    while True:
        if form < 2:
            a, b, c = (rng.randint(1, ranges.additive) for _ in range(3))
        else:
            a, b, c = (
                rng.randint(1, ranges.product_base),
                rng.randint(1, ranges.product_base),
                rng.randint(2, ranges.factor),
            )
        first = a - b if form == 1 else a + b
        answer = (first - c, first + c, first * c)[form]
        if first >= 0 and answer >= 0:
            break
    expression = ("{a}+{b}-{c}", "{a}-{b}+{c}", "({a}+{b})*{c}")[form].format(a=a, b=b, c=c)
    op1, op2 = ("-" if form == 1 else "+"), ("-", "+", "*")[form]
    solution = f"{a}{op1}{b}={first}. {first}{op2}{c}={answer}. \\boxed{{{answer}}}"
    return Problem(expression, answer, form, solution)


def make_split(
    n: int,
    seed: int,
    exclude: set[str] | frozenset[str] = frozenset(),
    ranges: OperandRanges = TASKS["embedded"],
) -> list[Problem]:
    """``n`` distinct problems, none of whose expressions is in ``exclude``."""
    rng = random.Random(seed)
    problems: list[Problem] = []
    seen = set(exclude)
    misses = 0
    while len(problems) < n:
        problem = sample_problem(rng, ranges)
        if problem.expression not in seen:
            seen.add(problem.expression)
            problems.append(problem)
            misses = 0
        else:
            misses += 1
            if misses > 100_000:  # the space is (nearly) exhausted: say so instead of looping for ever
                raise ValueError(f"make_split: only {len(problems)} distinct problems of {n} found with {ranges}")
    return problems


def to_rl_rows(problems: list[Problem], split: str) -> list[dict]:
    """veRL RL parquet rows (``data_source``, ``prompt``, ``ability``, ``reward_model``, ``extra_info``)
    plus the ``question`` and ``subset`` columns every verl-rema dataset carries."""
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": p.question}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(p.answer)},
            "extra_info": {"split": split, "index": i, "form": p.form, "expression": p.expression},
            "question": p.question,
            "subset": f"toy_arith_form{p.form}",
        }
        for i, p in enumerate(problems)
    ]


PROTOCOL_TEXT = ("Question:\n", "\n\nInstruction:\n", "[FINISH]", "\\boxed{}")


def prompt_texts() -> list[str]:
    """Every shipped role prompt (system and first-user template), so the tokenizer encodes them compactly."""
    from verl_rema.prompts import available_prompt_sets, load_prompt_set

    texts = []
    for name in available_prompt_sets():
        prompts = load_prompt_set(name)
        for role in (prompts.meta, prompts.reasoning):
            if role is not None:
                texts += [role.system, role.first_user]
    return texts


def tokenizer_corpus(seed: int, n: int = 4000) -> list[str]:
    """Text the tokenizer is trained on: questions, worked solutions and ReMA's role vocabulary."""
    rng = random.Random(seed)
    corpus = [*PROTOCOL_TEXT, *prompt_texts()]
    for _ in range(n):
        problem = sample_problem(rng)
        corpus += [problem.question, problem.solution]
    return corpus
