"""ReMA advantage estimators. Importing this package registers ``rema_grpo`` and ``softrank`` with veRL's
``register_adv_est`` (select with ``algorithm.adv_estimator=...``). Both group rows per (prompt, role); the roles
come from the ``rema_sync`` trainer through :mod:`.row_roles`."""

from .grpo_role import compute_rema_grpo_advantage
from .softrank import compute_softrank_advantage

__all__ = ["compute_rema_grpo_advantage", "compute_softrank_advantage"]
