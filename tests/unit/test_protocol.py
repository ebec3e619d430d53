"""The contract module: the row key parser, and the rule that field names, roles and finish reasons are spelled
in ``verl_rema/protocol.py`` only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from verl_rema import protocol
from verl_rema.protocol import (
    EPISODE_FIELDS,
    FINISH_REASONS,
    NO_FINISH_REASON,
    ROLES,
    FinishReason,
    Role,
    RowKey,
    TrainerMode,
)

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("verl_rema", "patches", "benchmarks")
# The same spelling with another meaning: RewardBench's and JudgeBench's own category "reasoning" (not the role).
# The same text meaning something else: the judge data's "reasoning" column; Algorithm 1's agent loop, registered
# under its trainer mode's name (``rollout.phased_loop.AGENT_NAME``); the toy experiment's arm of that name.
LOOP = {"rema_algorithm1"}
HOMONYMS = {
    "verl_rema/data/judge.py": {"reasoning"},
    "verl_rema/rollout/phased_loop.py": LOOP,
    "verl_rema/knob_checks.py": LOOP,
    "verl_rema/checks.py": LOOP,
    "verl_rema/experiments/toy/__main__.py": {"rema_separate"},
}


def test_row_key_parses_veRL_keys_including_uids_with_underscores():
    key = RowKey.parse("3f_a_b_12_1")
    assert (key.uid, key.session, key.index, key.episode) == ("3f_a_b", "12", 1, "3f_a_b_12")
    for bad in ("nokey", "a_b", "a_b_x"):
        with pytest.raises(ValueError, match="row key"):
            RowKey.parse(bad)


def test_roles_and_finish_reasons():
    assert ROLES == ("meta", "reasoning") and Role.META.other is Role.REASONING and Role.REASONING.other is Role.META
    assert FINISH_REASONS[0] == FinishReason.NORMAL.value and NO_FINISH_REASON not in FINISH_REASONS


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_field_names_roles_finish_reasons_and_trainer_modes_are_defined_only_in_the_contract():
    """A string literal equal to a row field, a role, a finish reason or a trainer mode anywhere else is a second
    definition.

    ``max_turns`` is left out: it is also the name of a ``rema.rollout`` setting (``ReMARolloutConfig.max_turns``),
    which code rightly spells as a key."""
    modes = {mode.value for mode in TrainerMode}
    contract = {*EPISODE_FIELDS, *ROLES, *FINISH_REASONS, NO_FINISH_REASON, *modes} - {"max_turns"}
    offenders = []
    for directory in CODE_DIRS:
        for path in sorted((REPO / directory).rglob("*.py")):
            if path == Path(protocol.__file__):
                continue
            name = str(path.relative_to(REPO))
            allowed = HOMONYMS.get(name, set())
            offenders += [f"{name}:{line}: {value!r}" for line, value in _string_constants(path)
                          if value in contract and value not in allowed]  # fmt: skip
    assert not offenders, "defined outside verl_rema/protocol.py:\n" + "\n".join(offenders)
