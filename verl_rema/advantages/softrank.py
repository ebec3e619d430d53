"""SoftRankPO: rank-based group advantages, registered in veRL as ``softrank``.

Within each group (same (uid, role) as ``rema_grpo``) a reward is replaced by a normal score of its
rank, so only the *order* of rewards matters: the advantage is invariant to any strictly monotone
transform of the rewards (rescaling, shifting, squashing a reward model's logits) and bounded for
every group size, unlike GRPO's z-score which explodes when a group's std is tiny. For a group of n
rewards::

    r_i = #{j: R_j < R_i} + (#{j: R_j = R_i} + 1) / 2        rank, 1..n, ties averaged
    u_i = (r_i - alpha) / (n + 1 - 2 alpha)                 plotting position in (0, 1)
    z_i = Phi^-1(u_i)                                       smooth normal quantile (torch.special.ndtri)
    A_i = (z_i - mean_group z) / tau

``alpha`` (``algorithm.softrank_offset``, default 0.375 = Blom's approximation of expected normal order
statistics) smooths the tails: 0.5 maps the extremes furthest out, 0 pulls them in. ``tau``
(``algorithm.softrank_temperature``, default 1.0) scales the advantages (higher = softer updates).
Centring makes every group zero-mean even with ties (a tied rank set is not symmetric). A group of one,
or of equal rewards, has one rank value, hence zero advantage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from .grpo_role import group_keys

DEFAULT_TEMPERATURE = 1.0
DEFAULT_OFFSET = 0.375


def softrank_scores(scores: torch.Tensor, groups: torch.Tensor, temperature: float, offset: float) -> torch.Tensor:
    """(B,) rewards, (B,) long group ids -> (B,) float64 rank-normal advantages, zero-mean per group."""
    if not temperature > 0:
        raise ValueError(f"softrank temperature must be > 0, got {temperature}")
    if not 0 <= offset <= 0.5:
        raise ValueError(f"softrank offset must be in [0, 0.5], got {offset}")
    scores = scores.detach().to(torch.float64)  # (B,)
    if torch.isnan(scores).any():
        raise ValueError("softrank: NaN reward")
    adv = torch.zeros_like(scores)  # (B,)
    for g in torch.unique(groups).tolist():  # once per step on the driver; groups are small
        idx = (groups == g).nonzero().flatten()  # (n,)
        s = scores[idx]  # (n,)
        less = (s.unsqueeze(0) < s.unsqueeze(1)).sum(dim=1).to(s.dtype)  # (n,): rewards below each
        ties = (s.unsqueeze(0) == s.unsqueeze(1)).sum(dim=1).to(s.dtype)  # (n,): equal rewards, self included
        rank = less + (ties + 1) / 2  # (n,) in [1, n]
        u = (rank - offset) / (len(s) + 1 - 2 * offset)  # (n,) in (0, 1)
        z = torch.special.ndtri(u)  # (n,)
        adv[idx] = (z - z.mean()) / temperature
    return adv


def _setting(name: str, explicit: float | None, config: Any, default: float) -> float:
    if explicit is not None:
        return float(explicit)
    value = config.get(name, None) if config is not None else None
    return default if value is None else float(value)


@register_adv_est("softrank")
def compute_softrank_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | np.ndarray | None = None,
    config: Any = None,
    temperature: float | None = None,
    offset: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SoftRankPO advantage, (B, T), grouped per (uid, role); returns (advantages, returns) as veRL expects.

    ``temperature``/``offset`` default to ``algorithm.softrank_temperature``/``algorithm.softrank_offset``.
    """
    temperature = _setting("softrank_temperature", temperature, config, DEFAULT_TEMPERATURE)
    offset = _setting("softrank_offset", offset, config, DEFAULT_OFFSET)
    batch_size = token_level_rewards.shape[0]
    keys = group_keys(index, batch_size)
    codes: dict[Any, int] = {}
    groups = torch.tensor([codes.setdefault(k, len(codes)) for k in keys], dtype=torch.long)  # (B,)
    scores = token_level_rewards.sum(dim=-1).cpu()  # (B,)
    adv = softrank_scores(scores, groups, temperature, offset)  # (B,)
    adv = adv.to(device=token_level_rewards.device, dtype=token_level_rewards.dtype).unsqueeze(-1) * response_mask
    return adv, adv


__all__ = ["DEFAULT_OFFSET", "DEFAULT_TEMPERATURE", "compute_softrank_advantage", "softrank_scores"]
