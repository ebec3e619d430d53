"""ReMA policy losses. Importing this package registers ``rema_turn`` with veRL's ``register_policy_loss``."""

from .config import RemaTurnLossConfig
from .turn_level import (
    TURN_LOSS_NAME,
    assert_turn_layout,
    compute_policy_loss_rema_turn,
    count_turns,
    segment_turns,
)

__all__ = [
    "TURN_LOSS_NAME",
    "RemaTurnLossConfig",
    "assert_turn_layout",
    "compute_policy_loss_rema_turn",
    "count_turns",
    "segment_turns",
]
