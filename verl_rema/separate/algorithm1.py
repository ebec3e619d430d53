"""Single-turn ReMA as the paper trains it: Algorithm 1 (arXiv 2503.09501, App. C.3), its settings and its state.

    for each of `iterations` outer iterations:
        build D_l with the current models; train the RA for `epochs` epochs over D_l     (lines 3-8)
        build D_h with the current models; train the MTA for `epochs` epochs over D_h    (lines 9-14)

Building a phase's data (App. D.1) keeps the questions whose success rate lies in the band [lo, hi]:
- D_l (the RA's): one greedy MTA plan, `filter_samples` RA answers at temperature 1; each kept question then gets
  `plans_per_question` fresh plans sampled at temperature 1, and every (question, plan) pair is a training prompt.
- D_h (the MTA's): `filter_samples` sampled plans, one greedy RA answer each.
Training an RA prompt samples the RA (`rollout.n` answers to the given plan); training an MTA prompt samples a plan
and scores it with the mean correctness of `ra_samples_per_plan` RA answers to it (the hierarchical sampling),
with the paper's role rewards (``verl_rema.rewards.role_rewards``).

A phase lasts ceil(epochs x |D| / train_batch_size) steps; the data are walked in a shuffled order per epoch and a
step's batch wraps into the next epoch rather than being short. Everything the run needs to continue mid-phase (the
outer iteration, the phase, its data, how far into them) is :class:`Algorithm1State`, saved with every checkpoint.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from verl.base_config import BaseConfig

from verl_rema.config_block import ConfigBlock, require_int
from verl_rema.protocol import Phase, Role

CONFIG_PATH = "rema.algorithm1"
TRAIN_PHASE = {Role.REASONING: Phase.TRAIN_REASONING, Role.META: Phase.TRAIN_META}
FILTER_PHASE = {Role.REASONING: Phase.FILTER_REASONING, Role.META: Phase.FILTER_META}


@dataclass
class Algorithm1Config(ConfigBlock, BaseConfig):
    """The outer loop, the band filter and the sampling of Algorithm 1 (defaults: the paper's Qwen2.5-7B run)."""

    CONFIG_PATH: ClassVar[str] = CONFIG_PATH

    _target_: str = "verl_rema.separate.algorithm1.Algorithm1Config"
    iterations: int = field(default=10, metadata={"help": "#Update Iteration: RA phase then MTA phase, this often."})
    epochs: int = field(default=4, metadata={"help": "#Training Episode: epochs over a phase's filtered data."})
    band: list[float] = field(default_factory=lambda: [0.2, 0.8], metadata={"help": "[eps_min, eps_max], inclusive."})
    filter_samples: int = field(default=10, metadata={"help": "Samples behind one question's success rate."})
    plans_per_question: int = field(default=4, metadata={"help": "Fresh plans attached to each question of D_l."})
    ra_samples_per_plan: int = field(default=4, metadata={"help": "RA answers scoring one plan (K; unstated)."})
    filter_questions: int = field(default=0, metadata={"help": "Questions tried per filter pass; 0: all."})
    seed: int = field(default=1, metadata={"help": "Seeds the question sample and the epoch orders."})

    def __post_init__(self) -> None:
        for name in ("iterations", "epochs", "filter_samples", "plans_per_question", "ra_samples_per_plan"):
            require_int(CONFIG_PATH, name, getattr(self, name))
        require_int(CONFIG_PATH, "filter_questions", self.filter_questions, least=0)
        band = list(self.band)
        if len(band) != 2 or not 0 <= band[0] <= band[1] <= 1:
            raise ValueError(f"{CONFIG_PATH}.band must be [lo, hi] with 0 <= lo <= hi <= 1, got {band}")

    def in_band(self, success_rate: float) -> bool:
        return self.band[0] <= success_rate <= self.band[1]


def keep_in_band(rates: dict[int, float], config: Algorithm1Config) -> tuple[list[int], dict[str, int]]:
    """The questions (dataset indices) whose success rate lies in the band, and the counts to report."""
    kept = sorted(i for i, rate in rates.items() if config.in_band(rate))
    too_hard = sum(1 for rate in rates.values() if rate < config.band[0])
    return kept, {"tried": len(rates), "kept": len(kept), "too_hard": too_hard, "too_easy": len(rates) - len(kept) - too_hard}  # fmt: skip


@dataclass
class Algorithm1State:
    """Where Algorithm 1 is. ``items`` are a phase's training prompts: ``[dataset index, plan or None]``."""

    iteration: int = 0  # 0-based outer iteration
    role: str = Role.REASONING.value  # the phase's trained role: the RA first (Algorithm 1)
    items: list[list[Any]] = field(default_factory=list)
    cursor: int = 0  # prompts of the phase handed out so far
    start_step: int = 1  # the phase's first global step
    steps: int = 0  # the phase's length in steps (0: not built yet)
    counts: dict[str, int] = field(default_factory=dict)  # the filter's report

    @property
    def phase_role(self) -> Role:
        return Role(self.role)

    def next_phase(self) -> None:
        """Move on: the RA phase of an iteration is followed by its MTA phase, then the next iteration's RA phase."""
        if self.phase_role is Role.REASONING:
            self.role = Role.META.value
        else:
            self.iteration, self.role = self.iteration + 1, Role.REASONING.value
        self.items, self.cursor, self.steps, self.counts = [], 0, 0, {}

    def done(self, config: Algorithm1Config) -> bool:
        return self.iteration >= config.iterations

    def phase_steps(self, config: Algorithm1Config, batch_size: int) -> int:
        return math.ceil(config.epochs * len(self.items) / batch_size) if self.items else 0

    def take(self, batch_size: int, seed: int) -> list[list[Any]]:
        """The next ``batch_size`` prompts: epoch after epoch, each in its own shuffled order."""
        out = []
        for position in range(self.cursor, self.cursor + batch_size):
            epoch, offset = divmod(position, len(self.items))
            order = list(range(len(self.items)))
            random.Random(f"{seed}/{self.iteration}/{self.role}/{epoch}").shuffle(order)  # stable across processes
            out.append(self.items[order[offset]])
        self.cursor += batch_size
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Algorithm1State:
        return cls(**data)


__all__ = ["CONFIG_PATH", "FILTER_PHASE", "TRAIN_PHASE", "Algorithm1Config", "Algorithm1State", "keep_in_band"]
