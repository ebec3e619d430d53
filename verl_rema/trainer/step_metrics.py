"""ReMA's per-step training metrics, from the rows of a step (pure functions; the trainer fetches the columns).

veRL's ``critic/score/*`` averages rows, so an episode of two rows counts twice and an all-masked idle row counts
like a played one. These count each episode once, by the reward of its last (scored) row:

- ``training/rema/episode/reward`` (mean, 0..1 with the binary math reward): the reward as trained on, 0 for an
  episode that did not finish normally. This is the paper's *training accuracy* curve (arXiv 2503.09501, Fig. 5/8).
- ``training/rema/episode/acc``: correctness of the final answer whether or not the episode finished normally.

and they say how the work is shared between the roles (a "lazy agent", one role doing everything, shows here):

- ``training/rema/<role>/action_token_share`` and ``training/rema/<role>/turn_share``: the role's share of the
  step's sampled tokens and of its turns (maximal runs of mask-1 tokens, as the turn-level loss counts them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from verl_rema.losses.turns import count_turns
from verl_rema.protocol import RowKey

PREFIX = "training/rema/"


def episode_outcomes(keys: Sequence[str], scores: Sequence[float], extra_fields: Sequence[Any]) -> dict[str, float]:
    """Mean reward and accuracy per episode; ``scores`` is each row's summed token reward."""
    last: dict[str, tuple[int, int]] = {}  # episode -> (row index within it, position in the batch)
    for position, key in enumerate(keys):
        row = RowKey.parse(key)
        if row.episode not in last or last[row.episode][0] < row.index:
            last[row.episode] = (row.index, position)
    rewards, accs = [], []
    for _, position in last.values():
        rewards.append(float(scores[position]))
        info = (extra_fields[position] or {}).get("reward_extra_info") if extra_fields else None
        acc = info.get("acc") if isinstance(info, Mapping) else None
        if isinstance(acc, int | float):
            accs.append(float(acc))
    out = {f"{PREFIX}episodes": float(len(rewards))}
    if rewards:
        out[f"{PREFIX}episode/reward"] = sum(rewards) / len(rewards)
    if accs:
        out[f"{PREFIX}episode/acc"] = sum(accs) / len(accs)
    return out


def role_shares(roles: Sequence[str], masks: Sequence[torch.Tensor]) -> dict[str, float]:
    """Rows, sampled tokens and turns per role, and each role's share of the step's tokens and turns."""
    tokens: dict[str, float] = {}
    turns: dict[str, float] = {}
    rows: dict[str, float] = {}
    for role, mask in zip(roles, masks, strict=True):
        mask = mask.reshape(1, -1)  # (1, T)
        rows[role] = rows.get(role, 0.0) + 1
        tokens[role] = tokens.get(role, 0.0) + float(mask.sum())
        turns[role] = turns.get(role, 0.0) + float(count_turns(mask).sum())
    total_tokens, total_turns = sum(tokens.values()), sum(turns.values())
    out: dict[str, float] = {}
    for role in sorted(rows):
        out[f"{PREFIX}{role}/rows"] = rows[role]
        out[f"{PREFIX}{role}/action_tokens"] = tokens[role]
        out[f"{PREFIX}{role}/action_token_share"] = tokens[role] / total_tokens if total_tokens else 0.0
        out[f"{PREFIX}{role}/turn_share"] = turns[role] / total_turns if total_turns else 0.0
    return out


__all__ = ["PREFIX", "episode_outcomes", "role_shares"]
