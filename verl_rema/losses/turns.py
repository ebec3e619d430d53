"""Where the turns of a batch are: the maximal runs of ``response_mask == 1`` in each row.

A turn is one message of one role (arXiv 2503.09501, Eq. 13). In a ReMA row (one role's chat view) the role's
messages are its sampled tokens (mask 1), always separated by the other role's message wrapped in chat-template
tokens (mask 0), so runs of ones are exactly the role's messages with at least one sampled token. The rollout checks
this on every row it builds (:func:`assert_turn_layout`); the loss (``turn_level.py``) and the worker-side global
turn count (``patches/turn_count.py``) use :func:`turn_starts` through the helpers below. No veRL import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def turn_starts(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) mask -> (B, T) bool: True on the first token of each turn."""
    mask = mask.bool()
    prev = F.pad(mask[:, :-1], (1, 0), value=False)  # (B, T): left neighbour; nothing before column 0
    return mask & ~prev


def count_turns(mask: torch.Tensor) -> torch.Tensor:
    """Turns per row: (B, T) dense mask -> (B,) long."""
    return turn_starts(mask).sum(dim=-1)


def count_turns_total(mask: torch.Tensor) -> int:
    """Turns in a whole batch, dense (B, T) or a jagged nested tensor of rows (veRL's engine input)."""
    if not mask.is_nested:
        return int(count_turns(mask).sum())
    flat = mask.values().bool()[None]  # (1, N): the rows, concatenated
    starts = turn_starts(flat)[0]  # (N,); a run may wrongly continue across a row boundary...
    first = mask.offsets()[:-1].long()  # (B,) first token of each row
    first = first[first < flat.shape[1]]
    starts[first] = flat[0, first]  # ...so a row's first token starts a turn whenever it is an action token
    return int(starts.sum())


@dataclass(frozen=True)
class TurnLayout:
    """Where the turns of a micro-batch are. K = number of turns, N = B * T tokens."""

    token_turn: torch.Tensor  # (N,) long: turn id of each token, K for non-action tokens (a dummy bin)
    turn_row: torch.Tensor  # (K,) long: row of each turn
    turn_len: torch.Tensor  # (K,) float: action tokens per turn (>= 1)
    turns_per_row: torch.Tensor  # (B,) long
    num_turns: int  # K


def segment_turns(response_mask: torch.Tensor) -> TurnLayout:
    """Number the turns of each row, in row-major order (one host sync, to size the per-turn buffers)."""
    mask = response_mask.bool()  # (B, T)
    starts = turn_starts(mask)  # (B, T)
    turns_per_row = starts.sum(dim=-1)  # (B,)
    num_turns = int(turns_per_row.sum())  # the one host sync
    token_turn = torch.cumsum(starts.flatten(), dim=0) - 1  # (N,): a row's first turn never continues the last row
    token_turn = torch.where(mask.flatten(), token_turn, num_turns)  # (N,)
    turn_len = torch.bincount(token_turn, minlength=num_turns + 1)[:num_turns].to(torch.float32)  # (K,)
    rows = torch.arange(mask.shape[0], device=mask.device)  # (B,)
    turn_row = torch.repeat_interleave(rows, turns_per_row, output_size=num_turns)  # (K,)
    return TurnLayout(token_turn, turn_row, turn_len, turns_per_row, num_turns)


def assert_turn_layout(response_mask: torch.Tensor, expected_turns: torch.Tensor | Sequence[int]) -> None:
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


__all__ = ["TurnLayout", "assert_turn_layout", "count_turns", "count_turns_total", "segment_turns", "turn_starts"]
