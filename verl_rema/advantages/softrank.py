"""SoftRankPO-style rank advantages, registered in veRL as ``softrank``. A RECONSTRUCTION, not the published method.

SoftRankPO (arXiv 2509.03817, AAAI-26) "shapes advantages based on the rank of rewards mapped through smooth normal
quantiles"; its formula, temperature and normalisation are not public (only abstracts and third-party summaries
were found). What is implemented here is our reading of that sentence, applied to ReMA's token-level training
(SoftRankPO itself trains a 3-action meta-policy, so this is an adaptation too). Within each group (the same
(uid, role) groups as ``rema_grpo``), for rewards R_1..R_n::

    rho_i = sum_j sigmoid((R_i - R_j) / tau)          soft rank in (0, n); the self term is 1/2
    u_i   = (rho_i + 1/2 - alpha) / (n + 1 - 2 alpha)  plotting position in (0, 1)
    A_i   = Phi^-1(u_i) - mean_group Phi^-1(u)        smooth normal quantile, centred

``tau`` (``algorithm.softrank_temperature``, default 0.8, the value the summaries report as best) acts on the rank
relaxation: as tau -> 0 the soft rank becomes the hard mid-rank (rank - 1/2, ties averaged) and the advantage is
invariant to any strictly monotone transform of the rewards; a larger tau pulls ranks toward the middle, so lower
tau means harder ranks and more contrast between a group's best and worst samples. ``tau = 0`` is the hard limit.
The advantages are centred but not divided by their spread: with two-valued rewards (binary correctness) a
standardisation would cancel tau entirely. They stay bounded for every group size
(|A| <= 2 Phi^-1(1 - 1/(2n)) with alpha = 1/2). ``alpha`` (``algorithm.softrank_offset``, default 0.5: Hazen's
position, u = rho / n) sets how far the extremes reach. A group of one, or of equal rewards, gets zero advantage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from .grpo_role import group_keys

DEFAULT_TEMPERATURE = 0.8
DEFAULT_OFFSET = 0.5


def soft_ranks(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """(n,) rewards -> (n,) soft ranks in (0, n); ``temperature == 0``: hard mid-ranks (ties averaged)."""
    diff = scores.unsqueeze(1) - scores.unsqueeze(0)  # (n, n): R_i - R_j
    if temperature == 0:
        pairwise = (diff > 0).to(scores.dtype) + 0.5 * (diff == 0).to(scores.dtype)  # (n, n)
    else:
        pairwise = torch.sigmoid(diff / temperature)  # (n, n)
    return pairwise.sum(dim=1)  # (n,)


def softrank_scores(scores: torch.Tensor, groups: torch.Tensor, temperature: float, offset: float) -> torch.Tensor:
    """(B,) rewards, (B,) long group ids -> (B,) float64 advantages, zero-mean per group."""
    if not temperature >= 0:
        raise ValueError(f"algorithm.softrank_temperature must be >= 0, got {temperature}")
    if not 0 <= offset <= 0.5:
        raise ValueError(f"algorithm.softrank_offset must be in [0, 0.5], got {offset}")
    scores = scores.detach().to(torch.float64)  # (B,)
    if torch.isnan(scores).any():
        raise ValueError("softrank: NaN reward")
    adv = torch.zeros_like(scores)  # (B,)
    for g in torch.unique(groups).tolist():  # once per step on the driver; groups are small
        idx = (groups == g).nonzero().flatten()  # (n,)
        rho = soft_ranks(scores[idx], temperature)  # (n,)
        u = (rho + 0.5 - offset) / (len(idx) + 1 - 2 * offset)  # (n,) in (0, 1)
        z = torch.special.ndtri(u)  # (n,)
        adv[idx] = z - z.mean()
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
    """Soft-rank advantage, (B, T), grouped per (uid, role); returns (advantages, returns) as veRL expects.

    ``temperature``/``offset`` default to ``algorithm.softrank_temperature``/``algorithm.softrank_offset``.
    """
    temperature = _setting("softrank_temperature", temperature, config, DEFAULT_TEMPERATURE)
    offset = _setting("softrank_offset", offset, config, DEFAULT_OFFSET)
    keys = group_keys(index, token_level_rewards.shape[0])
    codes: dict[Any, int] = {}
    groups = torch.tensor([codes.setdefault(k, len(codes)) for k in keys], dtype=torch.long)  # (B,)
    scores = token_level_rewards.sum(dim=-1).cpu()  # (B,)
    adv = softrank_scores(scores, groups, temperature, offset)  # (B,)
    adv = adv.to(device=token_level_rewards.device, dtype=token_level_rewards.dtype).unsqueeze(-1) * response_mask
    return adv, adv


__all__ = ["DEFAULT_OFFSET", "DEFAULT_TEMPERATURE", "compute_softrank_advantage", "soft_ranks", "softrank_scores"]
