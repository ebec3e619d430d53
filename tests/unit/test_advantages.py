"""Tests of the ``rema_grpo`` and ``softrank`` advantage estimators."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

from verl_rema.advantages import compute_rema_grpo_advantage, compute_softrank_advantage
from verl_rema.advantages.row_roles import rows_with_roles
from verl_rema.advantages.softrank import soft_ranks, softrank_scores


def grpo(rewards, mask, uids, roles=None, **kw):
    """The estimator as the rema_sync trainer runs it: roles (if any) supplied for the call."""
    with rows_with_roles(roles):
        return compute_rema_grpo_advantage(rewards, mask, index=uids, **kw)


def batch(seed: int, n_prompts: int = 5, n_samples: int = 4, length: int = 7, binary: bool = False):
    """Rows of n_prompts x n_samples episodes x 2 roles, shuffled; the reward sits on the last action token."""
    gen = random.Random(seed)
    rows = [(f"p{p}", role) for p in range(n_prompts) for _ in range(n_samples) for role in ("meta", "reasoning")]
    gen.shuffle(rows)
    uids = np.array([u for u, _ in rows], dtype=object)
    roles = np.array([r for _, r in rows], dtype=object)
    mask = torch.zeros(len(rows), length)
    rewards = torch.zeros(len(rows), length)
    scores = []
    for i in range(len(rows)):
        end = gen.randint(1, length)
        mask[i, gen.randint(0, end - 1) : end] = 1
        score = float(gen.randint(0, 1)) if binary else gen.choice([gen.gauss(0, 1), 0.5, 1.0])  # some ties
        rewards[i, end - 1] = score
        scores.append(score)
    return rewards, mask, uids, roles, scores


def reference_grpo(scores: list[float], keys: list[Any], eps: float = 1e-6) -> list[float]:
    out = []
    for i, key in enumerate(keys):
        group = [s for s, k in zip(scores, keys, strict=True) if k == key]
        if len(group) == 1:
            out.append(scores[i] / (1.0 + eps))  # veRL convention: singleton mean 0, std 1
        else:
            out.append((scores[i] - statistics.mean(group)) / (statistics.stdev(group) + eps))
    return out


def per_row(adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The scalar each row's advantage was broadcast from (and a check that it was broadcast to the mask)."""
    row = adv[torch.arange(len(adv)), mask.argmax(-1)]  # (B,): value on the first action token
    torch.testing.assert_close(adv, row.unsqueeze(-1) * mask)
    return row


# ---------------------------------------------------------------------------------------------------------------
# rema_grpo
# ---------------------------------------------------------------------------------------------------------------
def test_registered() -> None:
    assert get_adv_estimator_fn("rema_grpo") is compute_rema_grpo_advantage
    assert get_adv_estimator_fn("softrank") is compute_softrank_advantage


def test_grpo_groups_by_uid_and_role() -> None:
    rewards, mask, uids, roles, scores = batch(0)
    adv, ret = grpo(rewards, mask, uids, roles, config=AlgoConfig())
    expected = reference_grpo(scores, list(zip(uids, roles, strict=True)))
    torch.testing.assert_close(per_row(adv, mask), torch.tensor(expected), rtol=1e-5, atol=1e-5)
    assert adv is ret or torch.equal(adv, ret)


def test_grpo_without_role_is_verl_grpo_by_uid() -> None:
    rewards, mask, uids, _, scores = batch(1)
    adv, _ = compute_rema_grpo_advantage(rewards, mask, index=uids, config=AlgoConfig())
    torch.testing.assert_close(
        per_row(adv, mask), torch.tensor(reference_grpo(scores, list(uids))), rtol=1e-5, atol=1e-5
    )
    verl_adv, _ = get_adv_estimator_fn("grpo")(rewards, mask, uids)
    torch.testing.assert_close(adv, verl_adv)


def test_grpo_role_groups_differ_from_uid_groups() -> None:
    """Both roles share the scalar reward, so the groups differ in size: unbiased std must see that."""
    rewards, mask, uids, roles, _ = batch(2)
    with_role, _ = grpo(rewards, mask, uids, roles)
    without, _ = grpo(rewards, mask, uids)
    assert not torch.allclose(with_role, without)


def test_grpo_singleton_and_norm_switch() -> None:
    rewards = torch.tensor([[0.0, 2.0], [0.0, 1.0], [0.0, 3.0]])
    mask = torch.ones(3, 2)
    uids = np.array(["a", "a", "b"], dtype=object)
    adv, _ = compute_rema_grpo_advantage(rewards, mask, index=uids, config=AlgoConfig())
    std = statistics.stdev([2.0, 1.0])
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.5 / (std + 1e-6), -0.5 / (std + 1e-6), 3.0 / (1 + 1e-6)]))
    # Dr.GRPO switch read from the algorithm config, as veRL does not pass it to registered estimators
    adv, _ = compute_rema_grpo_advantage(rewards, mask, index=uids, config=AlgoConfig(norm_adv_by_std_in_grpo=False))
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.5, -0.5, 3.0]))


def test_grpo_rejects_unknown_role_and_missing_uid() -> None:
    rewards, mask, uids, roles, _ = batch(3)
    bad = roles.copy()
    bad[0] = "critic"
    with pytest.raises(ValueError, match="rema_role"):
        grpo(rewards, mask, uids, bad)
    with pytest.raises(ValueError, match="uid"):
        grpo(rewards, mask, None, roles)


def test_through_verl_compute_advantage() -> None:
    """veRL's compute_advantage passes token_level_rewards, response_mask, config and index=uid only.

    Pins the plumbing documented in grpo_role.py: a role non-tensor field does NOT reach the estimator through
    veRL 0.9.1, so grouping falls back to uid (hence the trainer's side channel). If veRL starts passing it, this
    fails.
    """
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rewards, mask, uids, roles, scores = batch(4)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": uids, "rema_role": roles},
    )
    for name in ("rema_grpo", "softrank"):
        out = compute_advantage(data, adv_estimator=name, config=OmegaConf.create({"norm_adv_by_std_in_grpo": True}))
        assert out.batch["advantages"].shape == mask.shape
    out = compute_advantage(data, adv_estimator="rema_grpo", config=OmegaConf.create({}))
    expected = reference_grpo(scores, list(uids))
    torch.testing.assert_close(per_row(out.batch["advantages"], mask), torch.tensor(expected), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# softrank (a reconstruction: see verl_rema/advantages/softrank.py)
# ---------------------------------------------------------------------------------------------------------------
def reference_softrank(scores: list[float], keys: list[Any], temperature: float = 0.8, offset: float = 0.5):
    """Python loops, math.exp and statistics.NormalDist: an independent implementation of the documented formula."""
    normal = statistics.NormalDist()

    def sigmoid(x: float) -> float:
        if temperature == 0:
            return 1.0 if x > 0 else 0.5 if x == 0 else 0.0
        return 1 / (1 + math.exp(-x / temperature))

    z = []
    for i, key in enumerate(keys):
        group = [s for s, k in zip(scores, keys, strict=True) if k == key]
        rho = sum(sigmoid(scores[i] - s) for s in group)
        z.append(normal.inv_cdf((rho + 0.5 - offset) / (len(group) + 1 - 2 * offset)))
    out = []
    for i, key in enumerate(keys):
        members = [z[j] for j, k in enumerate(keys) if k == key]
        out.append(z[i] - sum(members) / len(members))
    return out


def softrank(rewards, mask, uids, roles, **kw) -> torch.Tensor:
    with rows_with_roles(roles):
        adv, _ = compute_softrank_advantage(rewards, mask, index=uids, **kw)
    return per_row(adv, mask).double()


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("temperature", [0.0, 0.3, 0.8, 5.0])
def test_softrank_matches_reference(binary: bool, temperature: float) -> None:
    rewards, mask, uids, roles, scores = batch(5, binary=binary)
    expected = reference_softrank(scores, list(zip(uids, roles, strict=True)), temperature=temperature)
    got = softrank(rewards.double(), mask, uids, roles, temperature=temperature)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_softrank_hard_limit_is_mid_rank_quantiles() -> None:
    """tau -> 0: the soft rank is the hard mid-rank (rank - 1/2, ties averaged), u = Hazen's position."""
    scores = torch.tensor([0.3, 2.0, -1.0, 0.3, 7.0], dtype=torch.float64)
    mid_ranks = torch.tensor([2.0, 3.5, 0.5, 2.0, 4.5], dtype=torch.float64)  # ranks 2.5, 4, 1, 2.5, 5 minus 1/2
    torch.testing.assert_close(soft_ranks(scores, 0.0), mid_ranks)
    torch.testing.assert_close(soft_ranks(scores, 1e-4), mid_ranks)  # the limit is continuous
    z = torch.special.ndtri(mid_ranks / 5)
    got = softrank_scores(scores, torch.zeros(5, dtype=torch.long), temperature=1e-4, offset=0.5)
    torch.testing.assert_close(got, z - z.mean())


def test_softrank_lower_temperature_means_more_contrast() -> None:
    """Binary rewards: tau acts on the ranks, so it changes the advantages' spread (a scale on the advantages
    would be undone by Adam and the clip)."""
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    groups = torch.zeros(6, dtype=torch.long)
    spreads = [float(softrank_scores(scores, groups, tau, 0.5).abs().max()) for tau in (0.0, 0.3, 1.0, 3.0)]
    assert spreads == sorted(spreads, reverse=True) and spreads[0] > 2 * spreads[-1]


def group_rows(uids, roles) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(zip(uids, roles, strict=True)):
        groups.setdefault(key, []).append(i)
    return groups


def test_softrank_zero_mean_order_and_ties() -> None:
    rewards, mask, uids, roles, scores = batch(6, n_prompts=6, n_samples=8)
    adv = softrank(rewards, mask, uids, roles)
    for rows in group_rows(uids, roles).values():
        assert abs(float(adv[rows].sum())) < 1e-6  # float32 rewards -> float32 advantages
        for i in rows:
            for j in rows:
                if scores[i] > scores[j]:
                    assert adv[i] > adv[j]
                elif scores[i] == scores[j]:
                    assert adv[i] == adv[j]
    assert any(scores.count(s) > 1 for s in scores)  # ties present


@pytest.mark.parametrize(
    "transform",
    [lambda x: 3 * x + 7, lambda x: x**3 + x, torch.exp, lambda x: torch.atan(x) * 0.01 - 5, lambda x: -1 / (10 + x)],
)
def test_softrank_invariant_to_monotone_transforms_in_the_hard_limit(transform) -> None:
    rewards, mask, uids, roles, _ = batch(7)
    rewards = rewards.double()
    base = softrank(rewards, mask, uids, roles, temperature=0.0)
    end = (mask.cumsum(-1) == mask.sum(-1, keepdim=True)) & (mask > 0)  # last action token: where the reward is
    scores = rewards.sum(-1)
    moved = torch.zeros_like(rewards)
    moved[end] = transform(scores)
    assert not torch.allclose(moved.sum(-1), scores)
    torch.testing.assert_close(softrank(moved, mask, uids, roles, temperature=0.0), base, rtol=0, atol=1e-12)


def test_softrank_degenerate_groups() -> None:
    rewards = torch.tensor([[5.0], [1.0], [1.0], [1.0], [-2.0], [9.0]])
    mask = torch.ones(6, 1)
    uids = np.array(["solo", "same", "same", "same", "pair", "pair"], dtype=object)
    adv, _ = compute_softrank_advantage(rewards, mask, index=uids)
    assert torch.isfinite(adv).all()
    assert adv[:4].abs().max() == 0  # size-1 group and all-equal group: zero advantage
    assert adv[4] < 0 < adv[5]
    empty_mask = torch.zeros(6, 1)
    adv, _ = compute_softrank_advantage(rewards, empty_mask, index=uids)
    assert (adv == 0).all()


def test_softrank_config_keys() -> None:
    rewards, mask, uids, roles, scores = batch(8)
    keys = list(zip(uids, roles, strict=True))
    # veRL hands registered estimators the `algorithm` DictConfig; extra keys arrive via +algorithm.softrank_*
    cfg = OmegaConf.create({"adv_estimator": "softrank", "softrank_temperature": 2.0, "softrank_offset": 0.375})
    got = softrank(rewards, mask, uids, roles, config=cfg)
    expected = reference_softrank(scores, keys, temperature=2.0, offset=0.375)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)
    default = softrank(rewards, mask, uids, roles, config=AlgoConfig())  # dataclass without the keys: defaults
    torch.testing.assert_close(default, torch.tensor(reference_softrank(scores, keys), dtype=torch.float64))
    with pytest.raises(ValueError, match="softrank_temperature must be >= 0"):
        softrank(rewards, mask, uids, roles, temperature=-1.0)
    with pytest.raises(ValueError, match="softrank_offset"):
        softrank(rewards, mask, uids, roles, offset=0.7)
