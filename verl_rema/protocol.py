"""The contract between ReMA's components: the roles, why an episode ends, what travels with each training row.

One batch flows agent loop -> reward -> trainer (advantage groups, metrics) -> loss, and validation rows flow on to
the evaluation report. Every component names the fields it reads or writes from here, and nowhere else. The module
imports nothing from veRL, so the reward's worker processes and the report can use it too.

Per training row (an ``AgentLoopOutput``) the ReMA agent loop writes:

- ``extra_fields`` (veRL merges the scored row's into the reward function's ``extra_info``):
  ``rema_role``, ``rema_finish_reason``, ``rema_final_answer`` (the reasoning agent's last message),
  ``rema_num_rounds``, ``rema_metrics`` (the episode's dialogue metrics, ``rollout/metrics.py``);
- a top-level ``rema_role`` field: a TransferQueue column of its own, which the trainer fetches to group
  advantages per (prompt, role).

veRL's v1 trainer keys each row ``{uid}_{session}_{index}``: one ``uid`` per prompt, one ``session`` per sample of
``rollout.n``, one ``index`` per row of an episode. :class:`RowKey` parses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    """The two agents (arXiv 2503.09501 §3): the meta-thinking agent plans, the reasoning agent solves."""

    META = "meta"
    REASONING = "reasoning"

    @property
    def other(self) -> Role:
        return Role.REASONING if self is Role.META else Role.META


ROLES: tuple[str, ...] = tuple(role.value for role in Role)


class FinishReason(str, Enum):
    """Why an episode ended; with ``mask_unfinished_reward`` only ``normal`` episodes earn reward."""

    NORMAL = "normal"  # the MTA wrote the finish token and the RA answered (or: no finish protocol, all rounds ran)
    MAX_TURNS = "max_turns"  # max_turns rounds ran and the MTA never wrote the finish token
    CONTEXT_OVERFLOW = "context_overflow"  # a role's chat reached its context cap before its turn
    TRUNCATED = "truncated"  # a message hit the per-message token limit (with stop_when_truncated)


FINISH_REASONS: tuple[str, ...] = tuple(reason.value for reason in FinishReason)
NO_FINISH_REASON = "n/a"
"""The finish reason of a row that carries none (another agent loop): nothing is masked."""

# Fields of a row's ``extra_fields`` (and, for the reward, of ``extra_info``).
ROLE_FIELD = "rema_role"
FINISH_REASON_FIELD = "rema_finish_reason"
FINAL_ANSWER_FIELD = "rema_final_answer"
NUM_ROUNDS_FIELD = "rema_num_rounds"
METRICS_FIELD = "rema_metrics"
RA_ANSWERS_FIELD = "rema_ra_answers"  # hierarchical sampling: the K RA final answers sampled for the MTA's plan
EPISODE_FIELDS: tuple[str, ...] = (
    ROLE_FIELD,
    FINISH_REASON_FIELD,
    FINAL_ANSWER_FIELD,
    NUM_ROUNDS_FIELD,
    METRICS_FIELD,
    RA_ANSWERS_FIELD,
)


class TrainerMode(str, Enum):
    """The trainer modes verl-rema registers with veRL (``trainer.v1.trainer_mode``)."""

    SYNC = "rema_sync"  # one model, both roles (parameter sharing)
    EVAL = "rema_eval"  # validation only, with per-subset and dialogue metrics
    SEPARATE = "rema_separate"  # a model per role, updated in alternation
    ALGORITHM1 = "rema_algorithm1"  # the paper's single-turn Algorithm 1 (a model per role, phases)
    SEPARATE_EVAL = "rema_separate_eval"  # rema_eval with a model per role


#: The trainer modes that only evaluate (no training data is read).
EVALUATION_MODES: tuple[str, ...] = (TrainerMode.EVAL.value, TrainerMode.SEPARATE_EVAL.value)

# Fields the trainer writes into a dataset row to choose the episode's protocol (Algorithm 1, App. C.3).
PHASE_FIELD = "rema_phase"
PLAN_FIELD = "rema_plan"  # the MTA plan an RA-phase episode is given instead of sampling one


class Phase(str, Enum):
    """What an Algorithm 1 episode is for; the agent loop plays it, the reward scores its last row."""

    TRAIN_REASONING = "train_reasoning"  # a given plan, the RA samples (rollout.n per plan); the RA's row is scored
    TRAIN_META = "train_meta"  # the MTA samples a plan, the RA samples K answers to it; the MTA's row is scored
    FILTER_REASONING = "filter_reasoning"  # one greedy plan, K sampled RA answers: the RA's success rate
    FILTER_META = "filter_meta"  # a sampled plan, one greedy RA answer (rollout.n plans per question)


@dataclass(frozen=True)
class RowKey:
    """A veRL v1 row key ``{uid}_{session}_{index}`` (the uid itself may contain ``_``)."""

    uid: str
    session: str
    index: int

    @classmethod
    def parse(cls, key: str) -> RowKey:
        parts = str(key).rsplit("_", 2)
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"not a veRL row key '{{uid}}_{{session}}_{{index}}': {key!r}")
        return cls(parts[0], parts[1], int(parts[2]))

    @property
    def episode(self) -> str:
        """``{uid}_{session}``: the rows of one episode (one sample of one prompt) share it."""
        return f"{self.uid}_{self.session}"


__all__ = [
    "EPISODE_FIELDS",
    "EVALUATION_MODES",
    "TrainerMode",
    "PHASE_FIELD",
    "PLAN_FIELD",
    "RA_ANSWERS_FIELD",
    "Phase",
    "FINAL_ANSWER_FIELD",
    "FINISH_REASONS",
    "FINISH_REASON_FIELD",
    "METRICS_FIELD",
    "NO_FINISH_REASON",
    "NUM_ROUNDS_FIELD",
    "ROLES",
    "ROLE_FIELD",
    "FinishReason",
    "Role",
    "RowKey",
]
