"""ReMA's turn-level ratio policy loss (arXiv 2503.09501, Eq. 13), registered in veRL as ``rema_turn``.

A *turn* is one message of one role. PPO's importance ratio is taken per turn, not per token, so a
long message is clipped as a unit; each turn gets the mean of its token advantages. For row i and
turn t with action tokens Y and token log-ratios d_p = log pi_theta(y_p) - log pi_old(y_p)::

    rho = exp(min(mean_Y d_p, C))            geometric (reference code), C = turn_log_ratio_clip
    rho = mean_Y exp(min(d_p, C))            arithmetic (paper Eq. 13)
    A   = mean_Y A_p
    l   = max(-A rho, -A clip(rho, 1 - eps_low, 1 + eps_high));  l = min(l, -c A) if A < 0
    loss = sum_turns w_turn * l / N * dp_size

``trajectory``: w_turn = 1 / (turns in its row), N = rows in the global mini-batch (veRL's
``global_batch_size``), i.e. mean over turns, then over rows. ``turn``: w_turn = 1, N = turns in the
global mini-batch. Normalising by global counts (never by the micro-batch) makes the summed loss and
gradient independent of how veRL splits a mini-batch into micro-batches and DP ranks, exactly like
veRL's own ``agg_loss`` with ``config.global_batch_info``.

Turns are the maximal runs of ``response_mask == 1`` of a row (see ``turns.py``); rows without action tokens
contribute zero loss.

Implementation: one cumsum numbers the turns, ``index_add_`` reduces tokens into per-turn buffers;
no Python loop over rows or turns. One host sync sizes those buffers (veRL's vanilla loss syncs too,
for its metrics). Modelled on torchtune's GRPO loss: small, shapes in comments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from verl.trainer.ppo.core_algos import register_policy_loss

from .config import RemaTurnLossConfig
from .turns import TurnLayout, segment_turns

logger = logging.getLogger(__name__)

TURN_LOSS_NAME = "rema_turn"
_warned: set[str] = set()


def _segment_mean(values: torch.Tensor, layout: TurnLayout) -> torch.Tensor:
    """(B, T) token values -> (K,) per-turn means. Non-action tokens land in the dropped dummy bin."""
    flat = values.reshape(-1)  # (N,)
    sums = flat.new_zeros(layout.num_turns + 1).index_add_(0, layout.token_turn, flat)  # (K + 1,)
    return sums[: layout.num_turns] / layout.turn_len.to(flat.dtype)  # (K,)


@dataclass(frozen=True)
class TurnLossSettings:
    ratio_mode: str
    aggregation: str
    log_ratio_clip: float
    clip_low: float
    clip_high: float
    clip_c: float
    global_num_turns: int | None


def resolve_settings(config: Any) -> TurnLossSettings:
    """The loss's knobs from the actor config: its ``RemaTurnLossConfig``, or that class's defaults when the actor
    carries veRL's plain ``PolicyLossConfig``; unset clip constants are the actor's own (as ``vanilla`` reads them)."""
    policy_loss = config.get("policy_loss", None)
    turn = policy_loss if isinstance(policy_loss, RemaTurnLossConfig) else RemaTurnLossConfig()

    def actor_clip(own: float | None, name: str) -> float:
        if own is not None:
            return float(own)
        value = config.get(name, None)
        return float(value if value is not None else config.get("clip_ratio", 0.2))

    return TurnLossSettings(
        ratio_mode=turn.turn_ratio_mode,
        aggregation=turn.turn_aggregation,
        log_ratio_clip=float(turn.turn_log_ratio_clip),
        clip_low=actor_clip(turn.turn_clip_ratio_low, "clip_ratio_low"),
        clip_high=actor_clip(turn.turn_clip_ratio_high, "clip_ratio_high"),
        clip_c=float(turn.turn_clip_ratio_c if turn.turn_clip_ratio_c is not None else config.get("clip_ratio_c", 3.0)),
        global_num_turns=turn.global_turn_info.get("num_turns"),
    )


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(msg)


def _normaliser(settings: TurnLossSettings, layout: TurnLayout, info: Mapping[str, Any], dp_size: int) -> float:
    """Global count the summed turn losses are divided by (rows for ``trajectory``, turns for ``turn``)."""
    if settings.aggregation == "trajectory":
        count = info.get("global_batch_size")
        if count is None:
            if dp_size > 1:
                raise ValueError("global_batch_size is required when dp_size > 1")
            count = int((layout.turns_per_row > 0).sum())  # local fallback, as veRL's agg_loss
    else:
        count = settings.global_num_turns
        if count is None:
            if dp_size > 1:
                raise ValueError(
                    "turn_aggregation=turn needs policy_loss.global_turn_info['num_turns'] when dp_size > 1"
                )
            if info.get("global_batch_size") is not None:
                _warn_once(
                    "turn-local",
                    "rema_turn: turn aggregation without global_turn_info['num_turns'] normalises per "
                    "micro-batch; the gradient then depends on the micro-batch split",
                )
            count = layout.num_turns
    return float(max(count, 1))


@register_policy_loss(TURN_LOSS_NAME)  # type: ignore[arg-type]
def compute_policy_loss_rema_turn(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Turn-level clipped PPO loss; veRL's policy-loss signature (see ``compute_policy_loss_vanilla``).

    ``loss_agg_mode`` is ignored: the aggregation is ``policy_loss.turn_aggregation`` (veRL still uses
    ``loss_agg_mode`` for its entropy and KL terms). All (B, T) tensors are padded micro-batch tensors.
    Metrics (per micro-batch; veRL averages them over micro-batches): turn-level clip fractions, mean/max
    turn ratio, turns per row with any action token, token-level ``ppo_kl`` and turn-level ``approx_kl`` (k1).
    """
    assert config is not None, "rema_turn needs the actor config"
    settings = resolve_settings(config)
    info: Mapping[str, Any] = config.get("global_batch_info", None) or {}
    dp_size = int(info.get("dp_size", 1) or 1)

    mask = response_mask.bool()  # (B, T)
    layout = segment_turns(mask)
    zeros = torch.zeros((), dtype=log_prob.dtype, device=log_prob.device)
    log_ratio = torch.where(mask, log_prob - old_log_prob, zeros)  # (B, T); 0 off-action, so exp never overflows there

    if settings.ratio_mode == "geometric":
        turn_log_ratio = _segment_mean(log_ratio, layout)  # (K,)
        ratio = torch.exp(torch.clamp(turn_log_ratio, max=settings.log_ratio_clip))  # (K,)
    else:
        token_ratio = torch.where(mask, torch.exp(torch.clamp(log_ratio, max=settings.log_ratio_clip)), zeros)
        ratio = _segment_mean(token_ratio, layout)  # (K,)
        turn_log_ratio = _segment_mean(log_ratio.detach(), layout)  # (K,), metrics only

    adv = _segment_mean(torch.where(mask, advantages.to(ratio.dtype), zeros), layout)  # (K,)

    # Same operations, in the same order, as veRL's compute_policy_loss_vanilla, on turns instead of tokens.
    pg_losses1 = -adv * ratio  # (K,)
    pg_losses2 = -adv * torch.clamp(ratio, 1 - settings.clip_low, 1 + settings.clip_high)  # (K,)
    clip_pg_losses1 = torch.maximum(pg_losses1, pg_losses2)  # (K,)
    pg_losses3 = -adv * settings.clip_c  # (K,)
    clip_pg_losses2 = torch.min(pg_losses3, clip_pg_losses1)  # (K,)
    turn_losses = torch.where(adv < 0, clip_pg_losses2, clip_pg_losses1)  # (K,)

    if rollout_is_weights is not None:  # veRL multiplies token losses; a turn takes its tokens' mean weight
        turn_is_weights = _segment_mean(torch.where(mask, rollout_is_weights.to(ratio.dtype), zeros), layout)
        turn_losses = turn_losses * turn_is_weights.detach()  # (K,)

    if settings.aggregation == "trajectory":
        turn_losses = turn_losses / layout.turns_per_row[layout.turn_row].to(turn_losses.dtype)  # (K,)
    pg_loss = turn_losses.sum() / _normaliser(settings, layout, info, dp_size) * dp_size

    metrics = _turn_metrics(ratio, adv, pg_losses1, pg_losses2, clip_pg_losses1, pg_losses3, turn_log_ratio)
    with torch.no_grad():
        ppo_kl = 0.0 - log_ratio.sum() / mask.sum().clamp(min=1)  # token-level k1 as vanilla's ppo_kl; 0.0 - x: no -0.0
        rows_with_turns = (layout.turns_per_row > 0).sum().to(metrics.dtype)
    kl, n_rows, *turn_stats = torch.stack([ppo_kl.to(metrics.dtype), rows_with_turns, *metrics]).tolist()  # one sync
    names = (
        "actor/pg_clipfrac",
        "actor/pg_clipfrac_lower",
        "actor/rema_turn/clipfrac_upper",
        "actor/rema_turn/clipfrac_lower",
        "actor/rema_turn/clipfrac_dual",
        "actor/rema_turn/ratio_mean",
        "actor/rema_turn/ratio_max",
        "actor/rema_turn/approx_kl",
    )
    pg_metrics = {
        "actor/ppo_kl": kl,
        "actor/rema_turn/turns_per_row": layout.num_turns / max(n_rows, 1.0),
        # Turns in the global mini-batch as the worker counted them (-1: unknown, per-micro-batch fallback).
        "actor/rema_turn/global_turns": float(-1 if settings.global_num_turns is None else settings.global_num_turns),
        **dict(zip(names, turn_stats, strict=True)),
    }
    return pg_loss, pg_metrics


@torch.no_grad()
def _turn_metrics(
    ratio: torch.Tensor,
    adv: torch.Tensor,
    pg_losses1: torch.Tensor,
    pg_losses2: torch.Tensor,
    clip_pg_losses1: torch.Tensor,
    pg_losses3: torch.Tensor,
    turn_log_ratio: torch.Tensor,
) -> torch.Tensor:
    """(8,) turn-level metrics; zeros for a micro-batch without turns.

    ``pg_clipfrac``/``pg_clipfrac_lower`` keep veRL's meaning (any PPO clip / dual clip) so dashboards of
    the token-level ablation line up; the ``rema_turn/`` split says which side clipped.
    """
    if ratio.numel() == 0:
        return torch.zeros(8, dtype=torch.float32, device=ratio.device)
    neg = adv < 0
    clipped = (pg_losses2 > pg_losses1).float()  # (K,): clip branch active
    dual = ((clip_pg_losses1 > pg_losses3) & neg).float()  # (K,)
    upper = clipped * (adv > 0).float()  # ratio > 1 + eps_high, positive advantage
    lower = clipped * neg.float()  # ratio < 1 - eps_low, negative advantage
    stats = [clipped, dual, upper, lower, dual, ratio, ratio.max(), -turn_log_ratio]
    return torch.stack([s.float().mean() for s in stats])


__all__ = ["TURN_LOSS_NAME", "compute_policy_loss_rema_turn", "resolve_settings"]
