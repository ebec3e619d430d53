"""``rema.schedule``: which role's model trains at which step, when the two roles are separate models.

The paper's separated setting trains one model at a time and switches the trained role every ``switch_freq`` steps,
the MTA first for multi-turn (arXiv 2503.09501, App. D.2); Algorithm 1 (App. C.3) starts with the RA. A role left
out of ``train_roles`` keeps generating with its initial weights (one trainable model, one frozen).
``switch_freq: 0`` trains every role of ``train_roles`` at every step instead (each model on its own rows).

The role(s) of a step are a pure function of the step number, so a run resumed from step N continues the schedule
exactly (same role, same position in its phase); the checkpoint stores the schedule to refuse a different one.

Block alignment: steps 1..f train the first role, f+1..2f the next. (The authors' code computes the role as
``(step // f) % 2`` from step 1, so its first block is f-1 steps long; not reproduced.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from verl.base_config import BaseConfig

from verl_rema.config_block import ConfigBlock, require_int
from verl_rema.protocol import ROLES, Role

CONFIG_PATH = "rema.schedule"


@dataclass
class ScheduleConfig(ConfigBlock, BaseConfig):
    """Which roles train, which starts, and how long a phase lasts."""

    CONFIG_PATH: ClassVar[str] = CONFIG_PATH

    _target_: str = "verl_rema.separate.schedule.ScheduleConfig"
    train_roles: list[str] = field(
        default_factory=lambda: list(ROLES), metadata={"help": "Roles whose model is trained; others stay frozen."}
    )
    first_role: Optional[str] = field(  # noqa: UP045  (OmegaConf reads Optional)
        default=None, metadata={"help": "The role trained in the first phase; null: the first of train_roles."}
    )
    switch_freq: int = field(
        default=10, metadata={"help": "Steps per phase (reference: 10); 0: every trained role at every step."}
    )

    def __post_init__(self) -> None:
        roles = list(self.train_roles)
        unknown = sorted(set(roles) - set(ROLES))
        if unknown or not roles or len(set(roles)) != len(roles):
            raise ValueError(f"{CONFIG_PATH}.train_roles must be distinct roles of {list(ROLES)}, got {roles}")
        first = roles[0] if self.first_role is None else self.first_role
        if first not in roles:
            raise ValueError(f"{CONFIG_PATH}.first_role={self.first_role!r} must be one of train_roles {roles}")
        require_int(CONFIG_PATH, "switch_freq", self.switch_freq, least=0)
        start = roles.index(first)
        object.__setattr__(self, "_order", tuple(Role(r) for r in roles[start:] + roles[:start]))

    @property
    def order(self) -> tuple[Role, ...]:
        """Trained roles in phase order, starting with ``first_role``."""
        return self._order  # type: ignore[attr-defined]

    def roles_at(self, step: int) -> tuple[Role, ...]:
        """The role(s) whose model trains at global step ``step`` (1-based, as veRL counts)."""
        if step < 1:
            raise ValueError(f"steps count from 1, got {step}")
        if self.switch_freq == 0:
            return self.order
        return (self.order[((step - 1) // self.switch_freq) % len(self.order)],)

    def step_in_phase(self, step: int) -> int:
        """0-based position of ``step`` in its phase (always 0 when every role trains every step)."""
        return 0 if self.switch_freq == 0 else (step - 1) % self.switch_freq

    def state(self) -> dict[str, Any]:
        """What a checkpoint records of the schedule (resuming refuses a different one)."""
        return {"train_roles": [r.value for r in self.order], "switch_freq": self.switch_freq}


__all__ = ["CONFIG_PATH", "ScheduleConfig"]
