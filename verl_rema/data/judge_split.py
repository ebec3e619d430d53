"""A stratified group split with an exact test size: RewardBench970's train/test split (arXiv 2503.09501 App. D.1.2).

The paper states the constraints, not the procedure: 5,000 train and 970 test tuples; "loose" = no tuple in both
sets; "strict" = no instruction in both sets (Table 1b); "all original subsets are evenly represented in both".
The procedure here is a **reconstruction** that meets all three, deterministic from a seed:

1. Tuples are grouped: by instruction (strict; the two orders of a pair, and a prompt repeated across subsets, share
   a group) or by tuple text (loose; identical tuples share a group). A group goes wholly to one side.
2. Each subset gets a test target proportional to its tuple count (largest remainder, summing to the test size; in
   multiples of ``unit`` = 2 in strict mode, where every group holds both orders of its pairs).
3. Groups are visited in a seeded random order; a group joins the test set when it fits every subset's remaining
   target. Then, while the test set is short, the group with the smallest overshoot of the targets that still fits
   the total joins (the shuffled order breaks ties). A test size that no combination of groups reaches is an error.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """Tuples that must land on the same side; ``counts``: how many of them belong to each subset."""

    key: str
    counts: Mapping[str, int]

    @property
    def size(self) -> int:
        return sum(self.counts.values())


def allocate(total: int, counts: Mapping[str, int], unit: int = 1) -> dict[str, int]:
    """Integer targets proportional to ``counts``, multiples of ``unit``, each at most its count, summing to
    ``total`` (Hamilton's largest-remainder method; ties go to the subset named first)."""
    if total % unit:
        raise ValueError(f"test size {total} is not a multiple of {unit} (strict splits move pairs, both orders)")
    available = sum(counts.values())
    if not 0 < total < available:
        raise ValueError(f"test size {total} must be between 1 and {available - 1} (the tuples there are)")
    units, caps = total // unit, {s: c // unit for s, c in counts.items()}
    shares = {s: units * c / available for s, c in counts.items()}
    targets = {s: min(int(shares[s]), caps[s]) for s in counts}
    left = units - sum(targets.values())
    while left > 0:
        open_ = [s for s in sorted(counts) if targets[s] < caps[s]]
        if not open_:
            raise ValueError(f"cannot place {total} test tuples in multiples of {unit}: subsets too small")
        best = max(open_, key=lambda s: (shares[s] - targets[s], -sorted(counts).index(s)))
        targets[best] += 1
        left -= 1
    return {s: unit * t for s, t in targets.items()}


def _overshoot(group: Group, deficit: Mapping[str, int]) -> int:
    return sum(max(0, count - deficit[subset]) for subset, count in group.counts.items())


def stratified_group_split(
    groups: Sequence[Group], test_size: int, targets: Mapping[str, int], seed: int
) -> list[bool]:
    """For each group, whether it goes to the test set: exactly ``test_size`` tuples, per-subset counts as close
    to ``targets`` as the groups allow (module docstring, step 3)."""
    keys = [g.key for g in groups]
    if len(set(keys)) != len(keys):
        raise ValueError("group keys must be unique")
    order = sorted(range(len(groups)), key=lambda i: keys[i])  # independent of input order
    random.Random(seed).shuffle(order)
    deficit = Counter(targets)
    chosen = [False] * len(groups)
    taken = 0
    for i in order:
        group = groups[i]
        if taken + group.size <= test_size and all(c <= deficit[s] for s, c in group.counts.items()):
            chosen[i] = True
            taken += group.size
            deficit.subtract(group.counts)
    rank = {i: r for r, i in enumerate(order)}
    while taken < test_size:
        fitting = [i for i in order if not chosen[i] and taken + groups[i].size <= test_size]
        if not fitting:
            raise ValueError(
                f"cannot take exactly {test_size} test tuples: {taken} taken and no remaining group fits the rest"
            )
        best = min(fitting, key=lambda i: (_overshoot(groups[i], deficit), rank[i]))
        chosen[best] = True
        taken += groups[best].size
        deficit.subtract(groups[best].counts)
    return chosen


__all__ = ["Group", "allocate", "stratified_group_split"]
