"""ReMA policy losses. Importing this package registers ``rema_turn`` with veRL's ``register_policy_loss``.

``turns.py`` says where the turns of a batch are (shared by the loss, the rollout's row check and the worker-side
turn count in ``patches/turn_count.py``); ``turn_level.py`` is the loss; ``config.py`` its typed knobs.
"""

from .config import RemaTurnLossConfig
from .turn_level import TURN_LOSS_NAME, compute_policy_loss_rema_turn

__all__ = ["TURN_LOSS_NAME", "RemaTurnLossConfig", "compute_policy_loss_rema_turn"]
