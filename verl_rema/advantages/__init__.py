"""ReMA advantage estimators. Importing this package registers ``rema_grpo`` and ``softrank``
with veRL's ``register_adv_est`` (select with ``algorithm.adv_estimator=...``)."""

from .grpo_role import ROLE_KEY, ROLES, compute_rema_grpo_advantage, role_group_index
from .softrank import compute_softrank_advantage, softrank_scores

__all__ = [
    "ROLES",
    "ROLE_KEY",
    "compute_rema_grpo_advantage",
    "compute_softrank_advantage",
    "role_group_index",
    "softrank_scores",
]
