"""Rollout throughput of the ReMA agent loop against the raw vLLM engine, and prefill tokens per turn.

    python benchmarks/bench_rema_rollout.py              # 32 prompts x 4 episodes, 3 turns, 32 tokens a message
    python benchmarks/bench_rema_rollout.py --quick      # 8 prompts x 2 episodes, 2 turns, 16 tokens a message
    python benchmarks/bench_rema_rollout.py --model PATH --prompts 64 --max-turns 3 --tokens 64

Method. One in-process vLLM engine (``AsyncLLM``, prefix caching on, eager) serves every phase; the model is the
embedded tiny Qwen2 unless ``--model`` is given. Each round runs, with the prefix cache reset before each phase:

A. ReMA: the registered ``rema`` agent loop (built per episode as veRL's agent-loop worker does) plays all
   episodes concurrently (``asyncio.gather``). Its ``server_manager`` is :class:`EpisodeClient`: the server's side
   (:meth:`EngineClient.serve`: the engine call, vLLM's outputs mapped to veRL's ``TokenOutput`` as veRL's vLLM
   server does) runs as its own task per request, as it runs in veRL's server actor, so vLLM's per-token outputs
   wake that task and the loop wakes once per reply. Every request is recorded: episode, role, turn, prompt ids,
   sampled ids, cached prompt tokens (``RequestOutput.num_cached_tokens``).
B. raw replay (the headline baseline): the same requests sent straight to the engine, with no agent loop:
   the same prompt ids and the very sampling kwargs ReMA sent (seed, stop strings, stop token ids, log-probs),
   ``max_tokens`` pinned to the tokens ReMA sampled (so the engine samples the same tokens and the prefix cache
   behaves the same). Within an episode the requests go one after another, as in ReMA (turn k's prompt holds turn
   k-1's reply); episodes run concurrently. ReMA / replay isolates what the loop itself costs (chat templates,
   token merging, Python). ``--bare-replay`` replays as this benchmark's first version did, without ReMA's stop
   conditions (``ignore_eos``, no stop strings): vLLM's front end then skips the stop-string check of every
   token, which the loop's requests need, so that ratio also charges the request's stop conditions to the loop.
C. raw flat (for reference): the same requests all at once, ignoring the turn order. This is the engine's
   best case for the same tokens; ReMA / flat also counts the price of the multi-turn dependency itself
   (fewer sequences decode together, later turns wait for earlier ones), which no loop can remove.

Round 1 is a warm-up; reported numbers are medians over the later rounds (``--rounds``, default 5), and the
ratio is the median of the per-round ratios, with a bootstrap 95% interval: on a small CPU one phase lasts seconds
and timings vary between rounds by tens of percent (the flat phase, the same work every round, too), so a target
is read off the interval of many rounds (``--rounds 41 --no-flat``), not one run's median. The front-end CPU
seconds (this process: the agent loop, vLLM's detokenizer and output handling) are the steadier sign of what the
loop adds; the garbage collections of each phase are counted (a full one walks the heap of this process), and the
start-up heap is frozen out of them once the engine is up, as veRL's server is with ``patches/gc_freeze.py``
(``--no-gc-freeze``: as without it). Only the last round's records are kept. The dialogue uses the
``multiturn`` prompt set with ``stop_when_truncated=false``: the random-weight embedded model rarely writes the
finish token or stops on its own, so with truncation ending the episode there would be no second turn.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

from rollout_records import (  # noqa: E402
    EpisodeLog,
    GcMeter,
    RequestRecord,
    format_prefill_table,
    prefill_table,
    ratio_summary,
)
from vllm_engine import EngineClient, EpisodeClient, start_engine  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# The phases
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """One phase of one round. ``cpu_seconds``: CPU time of this (front-end) process, threads included; the
    engine core and its worker are other processes."""

    tokens: int
    seconds: float
    cpu_seconds: float
    records: list[RequestRecord] = field(default_factory=list)
    same_tokens: float | None = None  # replay: share of requests that sampled exactly ReMA's tokens
    construct_seconds: float = 0.0  # ReMA: building the loops (hydra.utils.instantiate), inside ``seconds``
    gc_counts: list[int] = field(default_factory=lambda: [0, 0, 0])  # collections per generation, this process
    gc_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


class Stopwatch:
    """Wall and process CPU seconds of a ``with`` block, and its garbage collections (:class:`GcMeter`)."""

    def __enter__(self) -> Stopwatch:
        self.gc = GcMeter().__enter__()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        self.gc.__exit__()

    def result(self, tokens: int, **fields: Any) -> PhaseResult:
        return PhaseResult(
            tokens, self.seconds, self.cpu_seconds, gc_counts=self.gc.counts, gc_seconds=self.gc.seconds, **fields
        )


def rollout_block(args: argparse.Namespace) -> dict[str, Any]:
    """The ``rema.rollout`` block of the benchmark's episodes."""
    return {
        "prompt_set": "multiturn",
        "max_turns": args.max_turns,
        "max_tokens_per_message": args.tokens,
        "max_context_tokens": args.max_model_len - args.tokens,  # room for a whole message (the loop checks)
        "stop_when_truncated": False,
    }


async def run_rema(
    client: EngineClient,
    tokenizer: Any,
    hf_model_type: str,
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    seed_base: int,
    *,
    block: dict[str, Any] | None = None,
    make_client: Callable[[EpisodeLog], Any] | None = None,
) -> PhaseResult:
    """Play every row's episode concurrently through the registered ``rema`` loop; per-request seeds from
    ``seed_base`` up. ``block``: the ``rema.rollout`` block (default :func:`rollout_block`); ``make_client``: each
    episode's server manager (default :class:`EpisodeClient`), which must append a record per request to the log."""
    from verl_rema.rollout.config import ReMARolloutConfig
    from verl_rema.rollout.standalone import make_agent_loop, trainer_config

    block = block or rollout_block(args)
    config = trainer_config(block, max_model_len=args.max_model_len)
    roles = [role.value for role in ReMARolloutConfig(**block).roles]
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    seeds = itertools.count(seed_base)
    make_client = make_client or (lambda log: EpisodeClient(client, log, seeds))
    logs = [EpisodeLog(i, roles) for i in range(len(rows))]

    construct = 0.0

    async def episode(log: EpisodeLog, row: dict[str, Any]) -> list[Any]:
        nonlocal construct
        started = time.perf_counter()
        # per episode, as veRL's AgentLoopWorker._run_agent_loop does
        loop = make_agent_loop(config, make_client(log), tokenizer, hf_model_type)
        construct += time.perf_counter() - started
        return await loop.run(dict(sampling), **row)

    with Stopwatch() as watch:
        await asyncio.gather(*(episode(log, row) for log, row in zip(logs, rows, strict=True)))
    records = [record for log in logs for record in log.records]
    tokens = sum(len(r.output_ids) for r in records)
    return watch.result(tokens, records=records, construct_seconds=construct)


def raw_params(record: RequestRecord, same: bool = True) -> dict[str, Any]:
    """The replayed request: with ``same``, exactly the vLLM kwargs ReMA sent (its stop strings and stop token
    ids, which vLLM's front end checks at every token, included), ``max_tokens`` pinned to the tokens it sampled;
    otherwise the bare request of the first version of this benchmark: ReMA's sampling settings and seed, that
    many tokens, ``ignore_eos``, no stop conditions."""
    if same and record.params is not None:
        return {**record.params, "max_tokens": max(len(record.output_ids), 1)}
    return {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": -1,
        "repetition_penalty": 1.0,
        "logprobs": 0,
        "seed": record.seed,
        "max_tokens": max(len(record.output_ids), 1),
        "ignore_eos": True,
    }


async def run_replay(
    client: EngineClient, records: list[RequestRecord], sequential: bool, same_params: bool = True
) -> PhaseResult:
    """Send ``records`` to the engine directly: per episode in order (``sequential``) or all at once."""
    chains: dict[int, list[RequestRecord]] = defaultdict(list)
    for record in records:
        chains[record.episode].append(record)
    ids = itertools.count()
    same: list[bool] = []

    async def one(record: RequestRecord) -> int:
        final = await client.generate_raw(f"raw-{next(ids)}", record.prompt_ids, raw_params(record, same_params))
        token_ids = list(final.outputs[0].token_ids)
        same.append(token_ids == record.output_ids)
        return len(token_ids)

    async def chain(items: list[RequestRecord]) -> int:
        return sum([await one(record) for record in items])

    with Stopwatch() as watch:
        if sequential:
            counts = await asyncio.gather(*(chain(items) for items in chains.values()))
        else:
            counts = await asyncio.gather(*(one(record) for record in records))
    return watch.result(sum(counts), same_tokens=sum(same) / len(same))


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def load_rows(data: Path, prompts: int, episodes: int) -> list[dict[str, Any]]:
    """The first ``prompts`` dataset rows, each repeated ``episodes`` times (veRL's rollout.n), as loop kwargs."""
    import pandas as pd

    frame = pd.read_parquet(data).head(prompts)
    rows = []
    for index, item in enumerate(frame.to_dict("records")):
        row = {
            "question": item["question"],
            "raw_prompt": list(item["prompt"]),
            "index": index,
            "data_source": item["data_source"],
        }
        rows += [{**row, "uid": f"{index}-{k}"} for k in range(episodes)]
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, help="HF model dir (head_dim 64 on vLLM-CPU); default: the embedded default"
    )
    parser.add_argument(
        "--data", type=Path, help="parquet with a `question` column; default: the embedded default's train set"
    )
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per prompt (rollout.n)")
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="max tokens per message")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (A, B, C); round 1 is a warm-up")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument(
        "--block-size", type=int, default=128, help="KV block size; vLLM-CPU: a multiple of 32, default 128"
    )
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument(
        "--bare-replay", action="store_true", help="replay without ReMA's stop conditions (this benchmark's v1)"
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the start-up heap in the collector's scans, as veRL's server without patches/gc_freeze.py",
    )
    parser.add_argument(
        "--no-flat", action="store_true", help="skip phase C: more rounds of the headline ratio in the same time"
    )
    parser.add_argument("--quick", action="store_true", help="8 prompts x 2 episodes, 2 turns, 16 tokens, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts, args.episodes, args.max_turns, args.tokens, args.rounds = 8, 2, 2, 16, 3
    return args


PHASES = {
    "rema": "A  ReMA agent loop",
    "replay": "B  raw engine, same request chains",
    "flat": "C  raw engine, all requests at once",
}


async def run_round(
    engine: Any,
    client: EngineClient,
    tokenizer: Any,
    hf_model_type: str,
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    seed_base: int,
) -> dict[str, PhaseResult]:
    """ReMA, then its requests replayed in chains, then (unless ``--no-flat``) all at once; the prefix cache is
    emptied before each."""
    await engine.reset_prefix_cache()
    rema = await run_rema(client, tokenizer, hf_model_type, rows, args, seed_base)
    await engine.reset_prefix_cache()
    replay = await run_replay(client, rema.records, sequential=True, same_params=not args.bare_replay)
    phases = {"rema": rema, "replay": replay}
    if not args.no_flat:
        await engine.reset_prefix_cache()
        phases["flat"] = await run_replay(client, rema.records, sequential=False, same_params=not args.bare_replay)
    return phases


def report(results: list[dict[str, PhaseResult]], args: argparse.Namespace, model: Path) -> None:
    """Medians over the measured rounds (all but the warm-up), per-round ReMA/raw ratios, the prefill table."""
    measured = results[1:] or results
    records = measured[-1]["rema"].records
    print(
        f"\nmodel {model} ({args.dtype}, KV block {args.block_size}); {args.prompts} prompts x {args.episodes} "
        f"episodes, max_turns {args.max_turns}, {args.tokens} tokens/message: {len(records)} requests, "
        f"{measured[-1]['rema'].tokens} tokens a phase; medians of {len(measured)} rounds after 1 warm-up; "
        f"replay: {'bare (no stop conditions)' if args.bare_replay else 'the very requests ReMA sent'}; start-up "
        f"heap {'in the collector (--no-gc-freeze)' if args.no_gc_freeze else 'frozen (patches/gc_freeze.py)'}"
    )
    print(f"{'phase':<38}{'tokens/s':>10}{'wall s':>8}{'front-end CPU s':>17}{'ReMA / this':>13}")
    for name, label in PHASES.items():
        if name not in measured[0]:
            continue
        ratio = statistics.median(r["rema"].tokens_per_s / r[name].tokens_per_s for r in measured)
        print(
            f"{label:<38}{statistics.median(r[name].tokens_per_s for r in measured):>10.0f}"
            f"{statistics.median(r[name].seconds for r in measured):>8.2f}"
            f"{statistics.median(r[name].cpu_seconds for r in measured):>17.2f}{ratio:>13.3f}"
        )
    for name in measured[0]:
        counts = [sum(r[name].gc_counts[g] for r in measured) / len(measured) for g in range(3)]
        seconds = [statistics.median(r[name].gc_seconds[g] for r in measured) for g in range(3)]
        print(
            f"   garbage collection in {name}: collections a phase (mean) gen0/1/2 "
            f"{counts[0]:.0f}/{counts[1]:.1f}/{counts[2]:.2f}, seconds a phase (median) "
            f"{seconds[0]:.3f}/{seconds[1]:.3f}/{seconds[2]:.3f}"
        )
    construct = statistics.median(r["rema"].construct_seconds for r in measured)
    print(f"   of A's wall time: building the loops (veRL's instantiate, once per episode) {construct:.2f} s")
    same = statistics.mean(r["replay"].same_tokens for r in measured)
    print(f"B and C sampled exactly ReMA's tokens in {same:.1%} of requests (same prompt ids, same seed)")
    ratios = [r["rema"].tokens_per_s / r["replay"].tokens_per_s for r in measured]
    print(
        f"throughput ratio ReMA / raw engine (B): {ratio_summary(ratios)}; target >= 0.95\n"
        f"   rounds: {', '.join(f'{x:.2f}' for x in ratios)}"
    )

    print(f"\nprefill per turn, last round (prefix caching on, KV block {args.block_size} tokens; means per request):")
    print(format_prefill_table(prefill_table(records)))
    prompt = sum(len(r.prompt_ids) for r in records)
    prefilled = sum(r.prefilled for r in records)
    print(f"all requests: {prompt} prompt tokens, {prefilled} prefilled ({prefilled / prompt:.1%})")
    print("(new text: prompt tokens the role's stream lacked = prompt - its previous prompt - its previous reply)")


async def bench(args: argparse.Namespace) -> None:
    from transformers import AutoConfig, AutoTokenizer

    import verl_rema.rollout  # noqa: F401  (registers the `rema` agent loop)
    from verl_rema.embedded import embedded_paths

    paths = None if args.model and args.data else embedded_paths()
    model = args.model or paths.model
    tokenizer = AutoTokenizer.from_pretrained(model)
    hf_model_type = AutoConfig.from_pretrained(model).model_type
    rows = load_rows(args.data or paths.train, args.prompts, args.episodes)

    engine = start_engine(model, args)
    if not args.no_gc_freeze:
        # As veRL's server does with patches/gc_freeze.py, and vLLM's own API server: once started, the start-up heap
        # leaves the collector's scans (a full collection otherwise walks it: ~0.6-1 s a phase on the 2-core box).
        from vllm.utils.gc_utils import freeze_gc_heap

        freeze_gc_heap()
    client = EngineClient(engine, args.max_model_len)
    results: list[dict[str, PhaseResult]] = []
    try:
        for index in range(args.rounds):
            seed_base = args.seed_base + 10**6 * index  # fresh samples each round
            results.append(await run_round(engine, client, tokenizer, hf_model_type, rows, args, seed_base))
            if len(results) > 1:  # only the last round's records are reported; kept, they would grow the GC's heap
                results[-2]["rema"].records = []
            phases = ", ".join(
                f"{name} {r.seconds:.2f} s ({r.tokens_per_s:.0f} tok/s)" for name, r in results[-1].items()
            )
            print(f"round {index + 1}{' (warm-up)' if index == 0 and args.rounds > 1 else ''}: {phases}", flush=True)
    finally:
        engine.shutdown()
    report(results, args, model)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    asyncio.run(bench(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
