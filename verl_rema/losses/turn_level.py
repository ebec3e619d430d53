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

Turn segmentation. Turns are the maximal runs of ``response_mask == 1`` in a row. This is exact for
our rollout rows: a row is one role's chat view, whose action tokens are that role's messages, and
two consecutive messages of a role are always separated by the other role's message wrapped in
chat-template tokens, all mask 0. Two turns can therefore merge only if a rollout emits two
messages of a role back to back with nothing in between; :func:`assert_turn_layout` lets the rollout
check its rows against the number of messages it actually generated. A message with no action token
at all is not a turn (it has no ratio); rows without action tokens contribute zero loss.

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
import torch.nn.functional as F
from verl.trainer.ppo.core_algos import register_policy_loss

from .config import validate_turn_settings

logger = logging.getLogger(__name__)

TURN_LOSS_NAME = "rema_turn"
_warned: set[str] = set()


@dataclass(frozen=True)
class TurnLayout:
    """Where the turns of a micro-batch are. K = number of turns, N = B * T tokens."""

    token_turn: torch.Tensor  # (N,) long: turn id of each token, K for non-action tokens (a dummy bin)
    turn_row: torch.Tensor  # (K,) long: row of each turn
    turn_len: torch.Tensor  # (K,) float: action tokens per turn (>= 1)
    turns_per_row: torch.Tensor  # (B,) long
    num_turns: int  # K


def segment_turns(response_mask: torch.Tensor) -> TurnLayout:
    """Number the maximal runs of mask-1 tokens of each row, in row-major order."""
    mask = response_mask.bool()  # (B, T)
    batch_size = mask.shape[0]
    prev = F.pad(mask[:, :-1], (1, 0), value=False)  # (B, T): left neighbour; False before column 0
    starts = mask & ~prev  # (B, T): first token of each turn
    turns_per_row = starts.sum(dim=-1)  # (B,)
    num_turns = int(turns_per_row.sum())  # the one host sync: sizes the per-turn buffers
    token_turn = torch.cumsum(starts.flatten(), dim=0) - 1  # (N,): a row's first turn never continues the last row
    token_turn = torch.where(mask.flatten(), token_turn, num_turns)  # (N,)
    turn_len = torch.bincount(token_turn, minlength=num_turns + 1)[:num_turns].to(torch.float32)  # (K,)
    rows = torch.arange(batch_size, device=mask.device)  # (B,)
    turn_row = torch.repeat_interleave(rows, turns_per_row, output_size=num_turns)  # (K,)
    return TurnLayout(token_turn, turn_row, turn_len, turns_per_row, num_turns)


def count_turns(response_mask: torch.Tensor) -> torch.Tensor:
    """Turns per row, (B,) long. Sum it over a global mini-batch for ``global_turn_info['num_turns']``."""
    mask = response_mask.bool()
    prev = F.pad(mask[:, :-1], (1, 0), value=False)
    return (mask & ~prev).sum(dim=-1)


def assert_turn_layout(response_mask: torch.Tensor, expected_turns: torch.Tensor | list[int]) -> None:
    """Guard against silently merged (or split) turns: compare segmentation with the messages generated.

    ``expected_turns[i]`` = number of messages with at least one action token that the rollout put in row i.
    """
    found = count_turns(response_mask).cpu()
    expected = torch.as_tensor(expected_turns, dtype=found.dtype)
    bad = (found != expected).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        raise ValueError(
            f"turn segmentation disagrees with the rollout in {len(bad)} row(s), e.g. row {i}: "
            f"{int(found[i])} mask-1 runs vs {int(expected[i])} messages (adjacent messages without a mask-0 gap?)"
        )


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


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key, default) if cfg is not None else default
    return default if value is None else value


def resolve_settings(config: Any) -> TurnLossSettings:
    """Read the knobs from the actor config; a plain ``PolicyLossConfig`` falls back to the defaults."""
    policy_loss = config.get("policy_loss", None)
    clip_ratio = _get(config, "clip_ratio", 0.2)
    settings = TurnLossSettings(
        ratio_mode=_get(policy_loss, "turn_ratio_mode", "geometric"),
        aggregation=_get(policy_loss, "turn_aggregation", "trajectory"),
        log_ratio_clip=float(_get(policy_loss, "turn_log_ratio_clip", 3.0)),
        clip_low=float(_get(policy_loss, "turn_clip_ratio_low", _get(config, "clip_ratio_low", clip_ratio))),
        clip_high=float(_get(policy_loss, "turn_clip_ratio_high", _get(config, "clip_ratio_high", clip_ratio))),
        clip_c=float(_get(policy_loss, "turn_clip_ratio_c", _get(config, "clip_ratio_c", 3.0))),
        global_num_turns=_get(policy_loss, "global_turn_info", {}).get("num_turns"),
    )
    validate_turn_settings(
        settings.ratio_mode,
        settings.aggregation,
        settings.log_ratio_clip,
        settings.clip_low,
        settings.clip_high,
        settings.clip_c,
    )
    return settings


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


__all__ = [
    "TURN_LOSS_NAME",
    "TurnLayout",
    "assert_turn_layout",
    "compute_policy_loss_rema_turn",
    "count_turns",
    "resolve_settings",
    "segment_turns",
]
