"""GRPO grouped per (prompt, role), registered in veRL as ``rema_grpo``.

ReMA trains both roles' rows of an episode in one step; the reference normalises each reward within
the rows of the same prompt *and* role: A = (R - mean_g) / (std_g + 1e-6), unbiased std, broadcast to
every action token. This is veRL's ``compute_grpo_outcome_advantage`` with a group key of (uid, role).

How the role gets here. veRL 0.9.1's ``compute_advantage`` calls a registered estimator with
``token_level_rewards``, ``response_mask``, ``config`` (the ``algorithm`` config), ``index`` (the
``uid`` non-tensor field) and ``reward_baselines`` if present, and the v1 trainer fetches just ``uid``
from the TransferQueue. ReMA's trainer (``trainer.v1.trainer_mode=rema_sync``) therefore fetches each
row's role and supplies it through :mod:`.row_roles` for the duration of veRL's own advantage
computation; outside that trainer the estimators group by ``uid`` alone (and say so once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, register_adv_est

from verl_rema.advantages.row_roles import current_row_roles
from verl_rema.protocol import ROLE_FIELD, ROLES

logger = logging.getLogger(__name__)

_warned: set[str] = set()


def group_keys(index: Sequence[Any] | np.ndarray | None, batch_size: int) -> list[Any]:
    """Group key per row: ``(uid, role)`` with the trainer's roles, else ``uid``."""
    if index is None:
        raise ValueError("grouped advantages need the 'uid' non-tensor field (veRL passes it as index=)")
    uids = list(index)
    if len(uids) != batch_size:
        raise ValueError(f"index has {len(uids)} entries for {batch_size} rows")
    roles = current_row_roles()
    if roles is None:
        if "no-role" not in _warned:
            _warned.add("no-role")
            logger.warning(
                "verl_rema advantages: no %r per row (not the rema_sync trainer); grouping by uid", ROLE_FIELD
            )
        return uids
    if len(roles) != batch_size:
        raise ValueError(f"{ROLE_FIELD} has {len(roles)} entries for {batch_size} rows")
    unknown = set(roles.tolist()) - set(ROLES)
    if unknown:
        raise ValueError(f"{ROLE_FIELD} values must be in {ROLES}, got {sorted(map(str, unknown))}")
    return list(zip(uids, roles.tolist(), strict=True))


@register_adv_est("rema_grpo")
def compute_rema_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | np.ndarray | None = None,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: bool | None = None,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO outcome advantage, (B, T), grouped per (uid, role).

    ``norm_adv_by_std_in_grpo`` defaults to ``algorithm.norm_adv_by_std_in_grpo`` (veRL does not pass it to
    registered estimators). Singleton groups follow veRL: mean 0, std 1.
    """
    if norm_adv_by_std_in_grpo is None:
        norm_adv_by_std_in_grpo = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True
    return compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards,
        response_mask=response_mask,
        index=group_keys(index, token_level_rewards.shape[0]),  # type: ignore[arg-type]  # any hashable keys
        epsilon=epsilon,
        norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo,
        config=config,
    )


__all__ = ["compute_rema_grpo_advantage", "group_keys"]
