"""Time forward + backward of the ``rema_turn`` loss against veRL's ``vanilla`` token loss, same run, same inputs.

    python benchmarks/bench_turn_loss.py                 # 64 rows x 4096 tokens x 30 turns a row, CPU
    python benchmarks/bench_turn_loss.py --quick         # small shape, a few seconds
    python benchmarks/bench_turn_loss.py --device cuda   # on a GPU (synchronised timings)

Prints the min and median time of each loss and their ratios to vanilla (target <= 1.1x). The inputs mimic our rollout
rows: per row, ``--turns`` action runs of one role separated by the other role's text (mask 0), then padding.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig

from verl_rema.losses import RemaTurnLossConfig
from verl_rema.losses.turns import count_turns


def make_mask(rows: int, tokens: int, turns: int, gen: torch.Generator) -> torch.Tensor:
    """(rows, tokens) bool: ``turns`` runs a row, run and gap lengths random, ~90% of the row used."""
    budget = int(tokens * 0.9)
    weights = torch.rand(rows, 2 * turns, generator=gen) + 0.2  # run, gap, run, gap, ...
    lengths = (weights / weights.sum(-1, keepdim=True) * budget).long().clamp(min=1)  # (rows, 2 * turns)
    ends = lengths.cumsum(-1)  # (rows, 2 * turns)
    position = torch.arange(tokens)  # (tokens,)
    segment = torch.searchsorted(ends, position.expand(rows, tokens).contiguous(), right=True)  # (rows, tokens)
    return (segment % 2 == 0) & (segment < 2 * turns)


def actor_config(ratio_mode: str, aggregation: str) -> ActorConfig:
    return ActorConfig(
        strategy="fsdp",
        rollout_n=1,
        ppo_micro_batch_size_per_gpu=1,
        policy_loss=RemaTurnLossConfig(turn_ratio_mode=ratio_mode, turn_aggregation=aggregation),
    )


def time_fn(fn: Callable[[], None], device: torch.device, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadiest on a busy host)")
    parser.add_argument("--quick", action="store_true", help="8 rows x 512 tokens x 10 turns, 5 iterations")
    parser.add_argument(
        "--max-ratio", type=float, default=None, help="exit 1 if any rema_turn/vanilla ratio exceeds it"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.tokens, args.turns, args.iters, args.warmup = 8, 512, 10, 5, 2

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    mask = make_mask(args.rows, args.tokens, args.turns, gen).to(device)  # (B, T)
    old = (-torch.rand(args.rows, args.tokens, generator=gen) * 3).to(device, dtype)  # (B, T)
    new_init = old + 0.2 * torch.randn(args.rows, args.tokens, generator=gen).to(device, dtype)
    adv = torch.randn(args.rows, 1, generator=gen).to(device, dtype).expand(-1, args.tokens) * mask  # (B, T)
    print(
        f"device={device} dtype={args.dtype} rows={args.rows} tokens={args.tokens} "
        f"turns/row={count_turns(mask).float().mean():.1f} action tokens={int(mask.sum())} "
        f"threads={torch.get_num_threads()} iters={args.iters}"
    )

    def step(name: str, cfg: ActorConfig, agg_mode: str) -> Callable[[], None]:
        loss_fn = get_policy_loss_fn(name)

        def run() -> None:
            new = new_init.detach().requires_grad_(True)
            loss, _ = loss_fn(old, new, adv, mask, agg_mode, cfg, None)
            loss.backward()

        return run

    cases = {
        "vanilla token-mean": step("vanilla", actor_config("geometric", "trajectory"), "token-mean"),
        "vanilla seq-mean-token-mean": step("vanilla", actor_config("geometric", "trajectory"), "seq-mean-token-mean"),
        "rema_turn geometric trajectory": step("rema_turn", actor_config("geometric", "trajectory"), "token-mean"),
        "rema_turn arithmetic trajectory": step("rema_turn", actor_config("arithmetic", "trajectory"), "token-mean"),
        "rema_turn geometric turn": step("rema_turn", actor_config("geometric", "turn"), "token-mean"),
    }
    # Interleaved rounds, so that drifts (other processes, clocks) hit every case alike. The ratio uses the
    # minimum (least disturbed run, stable on a shared machine); the median is printed beside it.
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(3):
        for name, fn in cases.items():
            results[name] += time_fn(fn, device, args.warmup, max(1, args.iters // 3))
    best = {k: min(v) for k, v in results.items()}
    median = {k: statistics.median(v) for k, v in results.items()}
    base, base_median = best["vanilla token-mean"], median["vanilla token-mean"]
    worst = 0.0
    print(
        f"{'case':34s} {'min ms':>9s} {'ratio':>6s}   {'median ms':>9s} {'ratio':>6s}  (ratios vs vanilla token-mean)"
    )
    for name in cases:
        ratio = best[name] / base
        if name.startswith("rema_turn"):
            worst = max(worst, ratio)
        print(
            f"{name:34s} {best[name] * 1e3:9.2f} {ratio:6.2f}   {median[name] * 1e3:9.2f} {median[name] / base_median:6.2f}"
        )
    print(f"worst rema_turn / vanilla ratio (min times): {worst:.2f} (target <= 1.1)")
    if args.max_ratio is not None and worst > args.max_ratio:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
