"""Tests of the ``rema_turn`` policy loss: parity with a loop reference, properties, config plumbing."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import pytest
import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig, PolicyLossConfig

from verl_rema.losses import RemaTurnLossConfig
from verl_rema.losses.turn_level import compute_policy_loss_rema_turn
from verl_rema.losses.turns import assert_turn_layout, count_turns, segment_turns

MODES = ("geometric", "arithmetic")
AGGS = ("trajectory", "turn")


def actor_config(clip_low: float = 0.2, clip_high: float = 0.2, clip_c: float = 3.0, **turn: Any) -> ActorConfig:
    """A real veRL ActorConfig carrying our policy-loss subclass (veRL's losses assert the type)."""
    return ActorConfig(
        strategy="fsdp",
        rollout_n=1,
        ppo_micro_batch_size_per_gpu=1,
        clip_ratio=clip_high,
        clip_ratio_low=clip_low,
        clip_ratio_high=clip_high,
        clip_ratio_c=clip_c,
        policy_loss=RemaTurnLossConfig(**turn),
    )


def random_mask(gen: random.Random, batch: int, length: int, max_turns: int = 30) -> torch.Tensor:
    """Rows of 0..max_turns turns (runs of 1s, single tokens included) separated by >= 1 masked token."""
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for i in range(batch):
        if gen.random() < 0.15:
            continue  # a row without action tokens
        n_turns = gen.randint(1, max(1, min(max_turns, (length + 1) // 2)))
        lens = [1 if gen.random() < 0.3 else gen.randint(1, 6) for _ in range(n_turns)]
        pos = gen.randint(0, 2)
        for n in lens:
            if pos >= length:
                break
            mask[i, pos : min(pos + n, length)] = True
            pos += n + gen.randint(1, 3)
    return mask


def random_inputs(gen: random.Random, batch: int, length: int, dtype=torch.float64, **mask_kw: Any):
    torch.manual_seed(gen.randint(0, 10**6))
    mask = random_mask(gen, batch, length, **mask_kw)
    old = -torch.rand(batch, length, dtype=dtype) * 3
    log_ratio = torch.randn(batch, length, dtype=dtype) * 0.4
    big = torch.rand(batch, length) < 0.05  # a few tokens far out, to reach the clamps
    log_ratio = torch.where(big, torch.randn(batch, length, dtype=dtype) * 4, log_ratio)
    new = (old + log_ratio).requires_grad_(True)
    adv_row = torch.randn(batch, 1, dtype=dtype)
    adv = (adv_row + 0.3 * torch.randn(batch, length, dtype=dtype)) * mask  # varies within a turn
    weights = torch.rand(batch, length, dtype=dtype) * 2
    return old, new, adv, mask, weights


# ---------------------------------------------------------------------------------------------------------------
# Independent reference: plain Python loops over rows, tokens and turns, straight from the formulas.
# ---------------------------------------------------------------------------------------------------------------
def reference_loss(
    old: torch.Tensor,
    new: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None,
    mode: str,
    agg: str,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    c: float = 3.0,
    pre_clip: float = 3.0,
    global_rows: int | None = None,
    global_turns: int | None = None,
    dp_size: int = 1,
) -> torch.Tensor:
    batch, length = mask.shape
    row_losses: list[list[torch.Tensor]] = []
    for i in range(batch):
        turns: list[list[int]] = []
        current: list[int] = []
        for p in range(length):
            if bool(mask[i, p]):
                current.append(p)
            elif current:
                turns.append(current)
                current = []
        if current:
            turns.append(current)
        losses = []
        for turn in turns:
            d = [new[i, p] - old[i, p] for p in turn]
            if mode == "geometric":
                mean_d = sum(d) / len(turn)
                rho = torch.exp(mean_d if float(mean_d.detach()) < pre_clip else mean_d * 0 + pre_clip)
            else:
                rho = sum(torch.exp(x if float(x.detach()) < pre_clip else x * 0 + pre_clip) for x in d) / len(turn)
            a = sum(float(adv[i, p]) for p in turn) / len(turn)
            clipped = min(max(rho, rho * 0 + 1 - eps_low), rho * 0 + 1 + eps_high)
            loss = max(-a * rho, -a * clipped)
            if a < 0:
                loss = min(loss, loss * 0 - c * a)
            if weights is not None:
                loss = loss * (sum(float(weights[i, p]) for p in turn) / len(turn))
            losses.append(loss)
        row_losses.append(losses)
    total = new.sum() * 0
    if agg == "trajectory":
        for losses in row_losses:
            if losses:
                total = total + sum(losses) / len(losses)
        count = global_rows if global_rows is not None else sum(1 for ls in row_losses if ls)
    else:
        for losses in row_losses:
            for loss in losses:
                total = total + loss
        count = global_turns if global_turns is not None else sum(len(ls) for ls in row_losses)
    return total / max(count, 1) * dp_size


def run_loss(old, new, adv, mask, weights, cfg, loss_agg_mode: str = "token-mean", name: str = "rema_turn"):
    return get_policy_loss_fn(name)(
        old_log_prob=old,
        log_prob=new,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode=loss_agg_mode,
        config=cfg,
        rollout_is_weights=weights,
    )


def grad_of(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


# ---------------------------------------------------------------------------------------------------------------
# Parity
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_parity_with_loop_reference(mode: str, agg: str) -> None:
    gen = random.Random(f"{mode}-{agg}")
    for case in range(8):
        batch, length = gen.randint(1, 5), gen.choice([1, 2, 7, 40, 70])
        old, new, adv, mask, weights = random_inputs(gen, batch, length)
        w = weights if case % 2 else None
        eps_low, eps_high, c = (0.2, 0.28, 3.0) if case % 3 else (0.1, 0.3, 2.0)
        cfg = actor_config(eps_low, eps_high, c, turn_ratio_mode=mode, turn_aggregation=agg)
        loss, _ = run_loss(old, new, adv, mask, w, cfg)
        ref = reference_loss(old, new, adv, mask, w, mode, agg, eps_low, eps_high, c)
        assert torch.allclose(loss, ref, rtol=1e-6, atol=1e-6), (case, float(loss), float(ref))
        torch.testing.assert_close(grad_of(loss, new), grad_of(ref, new), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_parity_with_global_batch_info_and_30_turns(mode: str, agg: str) -> None:
    """Realistic layout (30 turns a row) and veRL's global normalisers, dp_size 2."""
    gen = random.Random(f"g-{mode}-{agg}")
    old, new, adv, mask, weights = random_inputs(gen, 3, 130, max_turns=30)
    global_rows, global_turns = 7, int(count_turns(mask).sum()) + 11
    cfg = actor_config(turn_ratio_mode=mode, turn_aggregation=agg)
    cfg.global_batch_info.update(dp_size=2, global_batch_size=global_rows, batch_num_tokens=999)
    cfg.policy_loss.global_turn_info["num_turns"] = global_turns
    loss, _ = run_loss(old, new, adv, mask, weights, cfg)
    ref = reference_loss(
        old, new, adv, mask, weights, mode, agg, global_rows=global_rows, global_turns=global_turns, dp_size=2
    )
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_of(loss, new), grad_of(ref, new), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_all_masked_micro_batch(mode: str, agg: str) -> None:
    gen = random.Random(1)
    old, new, adv, _, weights = random_inputs(gen, 3, 9)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    old = torch.where(mask, old, torch.full_like(old, -math.inf))  # padding may hold anything
    loss, metrics = run_loss(old, new, adv, mask, weights, actor_config(turn_ratio_mode=mode, turn_aggregation=agg))
    assert loss.item() == 0.0 and loss.requires_grad  # still connected: FSDP needs every rank to backward
    g = grad_of(loss, new)
    assert torch.isfinite(g).all() and (g == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


# ---------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------
def one_turn_inputs(seed: int, batch: int = 5, length: int = 30):
    gen = random.Random(seed)
    torch.manual_seed(seed)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for i in range(batch):
        start = gen.randint(0, 10)
        mask[i, start : start + gen.randint(1, length - 10)] = True
    old = -torch.rand(batch, length, dtype=torch.float64) * 2
    new = (old + 0.3 * torch.randn(batch, length, dtype=torch.float64)).requires_grad_(True)
    adv = torch.randn(batch, 1, dtype=torch.float64).expand(batch, length) * mask
    return old, new, adv, mask


def test_one_turn_per_row_equals_verl_gspo() -> None:
    """geometric + trajectory with one turn a row is GSPO's sequence ratio, seq-mean-token-mean."""
    old, new, adv, mask = one_turn_inputs(3)
    adv = adv.abs()  # veRL's GSPO has no dual clip; it only differs for negative advantages
    cfg = actor_config(0.2, 0.28, turn_ratio_mode="geometric", turn_aggregation="trajectory")
    ours, _ = run_loss(old, new, adv, mask, None, cfg)
    gspo, _ = run_loss(old, new, adv, mask, None, cfg, "seq-mean-token-mean", name="gspo")
    torch.testing.assert_close(ours, gspo, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_of(ours, new), grad_of(gspo, new), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("agg", AGGS)
def test_one_turn_per_row_equals_sequence_level_loss(agg: str) -> None:
    """With negative advantages too: a vectorised sequence-level dual-clip loss (trajectory == turn here)."""
    old, new, adv, mask = one_turn_inputs(4, batch=8)
    adv[0] = -abs(adv[0]) * 40  # negative, large ratio below: dual clip active
    cfg = actor_config(0.2, 0.28, 3.0, turn_ratio_mode="geometric", turn_aggregation=agg)
    ours, _ = run_loss(old, new, adv, mask, None, cfg)
    d = ((new - old) * mask).sum(-1) / mask.sum(-1)
    ratio = torch.exp(torch.clamp(d, max=3.0))
    a = adv.sum(-1) / mask.sum(-1)
    seq = torch.maximum(-a * ratio, -a * torch.clamp(ratio, 0.8, 1.28))
    seq = torch.where(a < 0, torch.minimum(seq, -3.0 * a), seq)
    ref = seq.mean()
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_of(ours, new), grad_of(ref, new), rtol=1e-10, atol=1e-10)


def alternating_inputs(seed: int, batch: int = 6, length: int = 50):
    """Every action token its own turn: no two adjacent mask-1 tokens."""
    gen = random.Random(seed)
    torch.manual_seed(seed)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for i in range(1, batch):  # row 0 stays empty
        p = gen.randint(0, 1)
        while p < length:
            mask[i, p] = gen.random() < 0.8
            p += gen.randint(2, 3)
    old = -torch.rand(batch, length, dtype=torch.float64) * 2
    log_ratio = torch.clamp(torch.randn(batch, length, dtype=torch.float64) * 0.8, -2.9, 2.9)
    new = (old + log_ratio).requires_grad_(True)
    adv = torch.randn(batch, length, dtype=torch.float64) * mask
    weights = torch.rand(batch, length, dtype=torch.float64) * 2
    return old, new, adv, mask, weights


@pytest.mark.parametrize(("agg", "verl_mode"), [("turn", "token-mean"), ("trajectory", "seq-mean-token-mean")])
@pytest.mark.parametrize("use_weights", [False, True])
@pytest.mark.parametrize("global_info", [False, True])
def test_token_turns_arithmetic_equals_verl_vanilla(agg: str, verl_mode: str, use_weights: bool, global_info: bool):
    old, new, adv, mask, weights = alternating_inputs(11)
    assert (count_turns(mask) == mask.sum(-1)).all()
    w = weights if use_weights else None
    cfg = actor_config(0.2, 0.28, 3.0, turn_ratio_mode="arithmetic", turn_aggregation=agg)
    if global_info:
        n_tokens = int(mask.sum())
        cfg.global_batch_info.update(dp_size=4, batch_num_tokens=n_tokens + 5, global_batch_size=9)
        cfg.policy_loss.global_turn_info["num_turns"] = n_tokens + 5
    ours, ours_m = run_loss(old, new, adv, mask, w, cfg)
    vanilla, van_m = run_loss(old, new, adv, mask, w, cfg, verl_mode, name="vanilla")
    torch.testing.assert_close(ours, vanilla, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_of(ours, new), grad_of(vanilla, new), rtol=1e-10, atol=1e-10)
    for key in ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl"):
        assert ours_m[key] == pytest.approx(van_m[key], abs=1e-6), key
    assert van_m["actor/pg_clipfrac"] > 0 and van_m["actor/pg_clipfrac_lower"] > 0  # the test reaches both clips


def micro_batch_grad(old, new, adv, mask, weights, cfg, splits: list[int], dp_size: int = 1) -> torch.Tensor:
    """Sum of micro-batch gradients per rank, averaged over ranks (what FSDP's reduce does)."""
    n_turns = int(count_turns(mask).sum())
    cfg.global_batch_info.update(dp_size=dp_size, global_batch_size=mask.shape[0], batch_num_tokens=int(mask.sum()))
    cfg.policy_loss.global_turn_info["num_turns"] = n_turns
    total = torch.zeros_like(new)
    start = 0
    for size in splits:
        sl = slice(start, start + size)
        loss, _ = run_loss(old[sl], new[sl], adv[sl], mask[sl], weights[sl], cfg)
        total += grad_of(loss, new)
        start += size
    assert start == mask.shape[0]
    return total / dp_size


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_micro_batch_and_dp_split_invariance(mode: str, agg: str) -> None:
    gen = random.Random(f"split-{mode}-{agg}")
    old, new, adv, mask, weights = random_inputs(gen, 8, 60)
    mask[3] = False  # an empty row inside a micro-batch
    mask[4:6] = False  # an all-masked micro-batch when split in 4

    def cfg() -> ActorConfig:
        return actor_config(turn_ratio_mode=mode, turn_aggregation=agg)

    one = micro_batch_grad(old, new, adv, mask, weights, cfg(), [8])
    assert one.abs().sum() > 0
    for splits in ([4, 4], [2, 2, 2, 2], [3, 1, 2, 2]):  # last: uneven, as with dynamic batch size
        torch.testing.assert_close(micro_batch_grad(old, new, adv, mask, weights, cfg(), splits), one)
    # two DP ranks with two micro-batches each: loss * dp_size, gradients averaged over ranks
    torch.testing.assert_close(micro_batch_grad(old, new, adv, mask, weights, cfg(), [2, 2, 2, 2], dp_size=2), one)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_finite_on_degenerate_inputs(mode: str, agg: str) -> None:
    gen = random.Random(5)
    old, new, adv, mask, weights = random_inputs(gen, 4, 40)
    cfg = actor_config(turn_ratio_mode=mode, turn_aggregation=agg)
    # zero advantages: zero loss and gradient
    loss, metrics = run_loss(old, new, torch.zeros_like(adv), mask, weights, cfg)
    assert loss.item() == 0.0 and (grad_of(loss, new) == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())
    # huge log-ratios on action tokens and -inf/NaN padding outside them
    wild = torch.where(mask, old + torch.randn_like(old) * 200, torch.full_like(old, math.nan))
    loss, metrics = run_loss(old.detach(), wild.requires_grad_(True), adv, mask, weights, cfg)
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
    assert torch.isfinite(grad_of(loss, wild)).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("agg", AGGS)
def test_gradcheck(mode: str, agg: str) -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1, 0, 0, 1]]).bool()
    old = -torch.rand(3, 9, dtype=torch.float64)
    # log-ratios chosen away from every kink: inside the clip range, above 1 + eps, below 1 - eps
    offsets = torch.tensor([0.05, -0.03, 0.0, 0.6, 0.0, 0.0, -0.5, -0.45, -0.6], dtype=torch.float64)
    new = (old + offsets).requires_grad_(True)
    adv = torch.tensor([[1.0], [0.5], [-2.0]], dtype=torch.float64).expand(3, 9) * mask
    cfg = actor_config(turn_ratio_mode=mode, turn_aggregation=agg)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return compute_policy_loss_rema_turn(old, x, adv, mask, "token-mean", cfg)[0]

    assert torch.autograd.gradcheck(fn, (new,), eps=1e-6, atol=1e-7)


def test_pre_clip_bounds_geometric_ratio() -> None:
    mask = torch.ones(1, 4, dtype=torch.bool)
    old = torch.zeros(1, 4, dtype=torch.float64)
    new = torch.full((1, 4), 10.0, dtype=torch.float64, requires_grad=True)
    adv = -torch.ones(1, 4, dtype=torch.float64)
    cfg = actor_config(clip_c=30.0, turn_ratio_mode="geometric")
    loss, metrics = run_loss(old, new, adv, mask, None, cfg)
    assert metrics["actor/rema_turn/ratio_max"] == pytest.approx(math.exp(3.0), rel=1e-6)
    assert loss.item() == pytest.approx(math.exp(3.0))  # -A * rho with rho = e^3 < c = 30
    assert (grad_of(loss, new) == 0).all()  # clamped: no gradient, as the reference's min()


def test_metrics_on_crafted_turns() -> None:
    """Four turns: upper clip (A>0, rho=2), lower clip (A<0, rho=0.5), dual clip (A<0, rho=5), unclipped."""
    mask = torch.tensor([[1, 1, 0, 1, 0, 0], [1, 0, 1, 1, 1, 0]]).bool()
    log_rho = torch.tensor([[math.log(2)] * 2 + [0, math.log(0.5), 0, 0], [math.log(5), 0] + [0.01] * 3 + [0]])
    adv = torch.tensor([[1.0, 1.0, 0, -1.0, 0, 0], [-1.0, 0, 2.0, 2.0, 2.0, 0]])
    old = torch.zeros(2, 6)
    cfg = actor_config(0.2, 0.2, 3.0)
    loss, m = run_loss(old, old + log_rho, adv, mask, None, cfg)
    assert m["actor/rema_turn/turns_per_row"] == 2.0
    assert m["actor/rema_turn/clipfrac_upper"] == pytest.approx(0.25)
    assert m["actor/rema_turn/clipfrac_lower"] == pytest.approx(0.25)
    assert m["actor/rema_turn/clipfrac_dual"] == pytest.approx(0.25)
    assert m["actor/pg_clipfrac"] == pytest.approx(0.5)
    assert m["actor/pg_clipfrac_lower"] == pytest.approx(0.25)
    assert m["actor/rema_turn/ratio_max"] == pytest.approx(5.0, rel=1e-5)
    assert m["actor/rema_turn/ratio_mean"] == pytest.approx((2 + 0.5 + 5 + math.exp(0.01)) / 4, rel=1e-5)
    # trajectory: row 0 mean(-1.2, 0.8) = -0.2, row 1 mean(3, -2 e^0.01) -> mean over rows
    expected = (-0.2 + (3.0 - 2 * math.exp(0.01)) / 2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_missing_global_counts_fail_loudly_with_dp() -> None:
    gen = random.Random(2)
    old, new, adv, mask, _ = random_inputs(gen, 3, 20)
    for agg in AGGS:
        cfg = actor_config(turn_aggregation=agg)
        cfg.global_batch_info.update(dp_size=2)
        with pytest.raises(ValueError):
            run_loss(old, new, adv, mask, None, cfg)


# ---------------------------------------------------------------------------------------------------------------
# Segmentation
# ---------------------------------------------------------------------------------------------------------------
def test_segmentation_rows_do_not_merge_across_row_boundaries() -> None:
    mask = torch.tensor([[0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1]]).bool()
    layout = segment_turns(mask)
    assert layout.num_turns == 4
    assert layout.turn_row.tolist() == [0, 1, 3, 3]
    assert layout.turn_len.tolist() == [2.0, 2.0, 1.0, 1.0]
    assert layout.token_turn.view(4, 3).tolist() == [[4, 0, 0], [1, 1, 4], [4, 4, 4], [2, 4, 3]]


def test_assert_turn_layout_catches_merged_turns() -> None:
    mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 1]]).bool()  # row 1: two messages glued together
    assert_turn_layout(mask[:1], [2])
    with pytest.raises(ValueError, match="row 1"):
        assert_turn_layout(mask, [2, 2])


# ---------------------------------------------------------------------------------------------------------------
# Config plumbing
# ---------------------------------------------------------------------------------------------------------------
def test_config_defaults_and_validation() -> None:
    cfg = RemaTurnLossConfig()
    assert (cfg.loss_mode, cfg.turn_ratio_mode, cfg.turn_aggregation) == ("rema_turn", "geometric", "trajectory")
    assert cfg.turn_log_ratio_clip == 3.0
    assert isinstance(cfg, PolicyLossConfig)
    for bad in (
        {"turn_ratio_mode": "harmonic"},
        {"turn_aggregation": "token"},
        {"turn_log_ratio_clip": 0.0},
        {"turn_clip_ratio_c": 1.0},
        {"turn_clip_ratio_low": 1.0},
    ):
        with pytest.raises(ValueError):
            RemaTurnLossConfig(**bad)


def test_clip_constants_come_from_actor_unless_overridden() -> None:
    """One shared set of clip constants keeps the vanilla ablation a one-key switch."""
    from verl_rema.losses.turn_level import resolve_settings

    s = resolve_settings(actor_config(0.1, 0.3, 4.0))
    assert (s.clip_low, s.clip_high, s.clip_c, s.log_ratio_clip) == (0.1, 0.3, 4.0, 3.0)
    s = resolve_settings(actor_config(0.1, 0.3, 4.0, turn_clip_ratio_low=0.2, turn_clip_ratio_c=3.0))
    assert (s.clip_low, s.clip_high, s.clip_c) == (0.2, 0.3, 3.0)
    plain = ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)  # veRL's own PolicyLossConfig
    s = resolve_settings(plain)
    assert (s.ratio_mode, s.aggregation) == ("geometric", "trajectory")
    assert (s.clip_low, s.clip_high, s.clip_c) == (0.2, 0.2, 3.0)


@pytest.fixture(scope="module")
def compose():
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")

    def _compose(overrides: list[str]):
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return hydra_compose("ppo_trainer", overrides=overrides)

    return _compose


BASE = ["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2"]
TURN = [
    "actor_rollout_ref.actor.policy_loss._target_=verl_rema.losses.config.RemaTurnLossConfig",
    "actor_rollout_ref.actor.policy_loss.loss_mode=rema_turn",
    "+actor_rollout_ref.actor.policy_loss.turn_ratio_mode=arithmetic",
    "+actor_rollout_ref.actor.policy_loss.turn_aggregation=turn",
    "+actor_rollout_ref.actor.policy_loss.turn_log_ratio_clip=2.5",
    "actor_rollout_ref.actor.clip_ratio_high=0.28",
]


def test_hydra_overrides_reach_the_loss(compose) -> None:
    """veRL's worker builds the actor config with omega_conf_to_dataclass (hydra instantiate, _target_)."""
    from verl.utils.config import omega_conf_to_dataclass

    actor = omega_conf_to_dataclass(compose(BASE + TURN).actor_rollout_ref.actor)
    assert isinstance(actor, ActorConfig) and isinstance(actor.policy_loss, RemaTurnLossConfig)
    assert get_policy_loss_fn(actor.policy_loss.loss_mode) is compute_policy_loss_rema_turn
    from verl_rema.losses.turn_level import resolve_settings

    s = resolve_settings(actor)
    assert (s.ratio_mode, s.aggregation, s.log_ratio_clip, s.clip_high) == ("arithmetic", "turn", 2.5, 0.28)

    # the ablation: one more override, everything else identical
    ablation = omega_conf_to_dataclass(
        compose(BASE + TURN + ["actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"]).actor_rollout_ref.actor
    )
    assert ablation.policy_loss.loss_mode == "vanilla"
    assert get_policy_loss_fn(ablation.policy_loss.loss_mode).__name__ == "compute_policy_loss_vanilla"
    for key in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c", "loss_agg_mode", "ppo_mini_batch_size"):
        assert ablation[key] == actor[key]
    assert ablation.policy_loss.turn_ratio_mode == actor.policy_loss.turn_ratio_mode


def test_unknown_key_without_subclass_fails_loudly(compose) -> None:
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose(BASE + ["+actor_rollout_ref.actor.policy_loss.turn_ratio_mode=arithmetic"])
    with pytest.raises(Exception, match="turn_ratio_mode"):
        omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


def test_through_verl_ppo_loss_with_global_batch_info() -> None:
    """veRL's own actor loss entry point (workers/utils/losses.ppo_loss) calls rema_turn per micro-batch."""
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.losses import ppo_loss

    gen = random.Random(9)
    batch, prompt_len, resp_len = 4, 3, 40
    old, new, adv, mask, _ = random_inputs(gen, batch, resp_len, dtype=torch.float32)
    # flat, un-padded model output: per row prompt_len + resp_len log-probs, shifted left by one token
    flat = torch.zeros(batch, prompt_len + resp_len)
    flat[:, prompt_len - 1 : prompt_len - 1 + resp_len] = new.detach()
    flat = flat.flatten().requires_grad_(True)

    def run(rows: slice, cfg: ActorConfig) -> torch.Tensor:
        n = rows.stop - rows.start
        td = TensorDict(
            {
                "prompts": torch.ones(n, prompt_len, dtype=torch.long),
                "responses": torch.ones(n, resp_len, dtype=torch.long),
                "attention_mask": torch.ones(n, prompt_len + resp_len, dtype=torch.long),
                "response_mask": mask[rows].long(),
                "old_log_probs": old[rows],
                "advantages": adv[rows].float(),
            },
            batch_size=[n],
        )
        tu.assign_non_tensor(td, dp_size=1, batch_num_tokens=int(mask.sum()), global_batch_size=batch)
        out = flat.view(batch, -1)[rows].flatten()
        loss, metrics = ppo_loss(cfg, {"log_probs": out}, td)
        assert "actor/rema_turn/turns_per_row" in metrics
        return loss

    cfg = actor_config(turn_ratio_mode="geometric", turn_aggregation="trajectory")
    whole = grad_of(run(slice(0, batch), cfg), flat)
    halves = grad_of(run(slice(0, 2), cfg), flat) + grad_of(run(slice(2, 4), cfg), flat)
    torch.testing.assert_close(halves, whole, rtol=1e-5, atol=1e-7)
    ref = reference_loss(
        old.double(), new.double(), adv.double(), mask, None, "geometric", "trajectory", global_rows=batch
    )
    torch.testing.assert_close(run(slice(0, batch), cfg).double(), ref.detach(), rtol=1e-5, atol=1e-6)
