"""ReMA rollout, our design against the authors': episodes/s, tokens/s, prefill per turn, prefix-cache hits.

    python benchmarks/bench_vs_lockstep.py                          # rounds 1, 3, 8 x spreads 0, 0.5, 0.9
    python benchmarks/bench_vs_lockstep.py --rounds 8 --spreads 0.5 --repeats 3
    python benchmarks/bench_vs_lockstep.py --quick                  # 4 prompts x 2, rounds 1 and 3, spread 0.5

Both designs run in one process on one in-process vLLM engine (``AsyncLLM``, prefix caching, eager; the embedded
tiny Qwen2 unless ``--model``), with the same prompts (``--prompts`` questions x ``--episodes``), the same
``multiturn`` prompt set and dialogue protocol, the same sampling settings, a per-message seed from
(episode, role, turn) and a per-message token budget from (episode, role, turn) (``lockstep.LengthPlan``: ``--tokens``
on average, uniform within +-``--spreads``, or ``--shape lognormal`` with log-scale deviation ``--spreads``, capped at
4x the mean; the random-weight model almost never stops on its own, so the budget is the message's length and the
spread stands in for how much real messages differ in length):

(a) lockstep, as the reference (``benchmarks/lockstep.py`` says what follows it and what is approximated): per
    turn the whole batch of live episodes, every chat re-rendered and re-tokenised from text, one generate call
    awaited as a whole; training rows re-encoded from text at the end;
(b) ours: the registered ``rema`` agent loop, one asyncio task per episode, token-exact streams, each turn sent to
    the engine as soon as the episode's previous turn is back.

Per setting, the prefix cache is emptied before each design; the designs alternate which goes first; one warm-up
pass precedes everything. Reported: medians over ``--repeats`` (min-max), episodes/s and generated tokens/s of
each design and the ratio (b)/(a), prompt and prefilled tokens per request, the prefix-cache hit rate (cached /
prompt tokens), generate calls that are barriers, and the share of (a)'s replies whose re-tokenised text is not
the sampled ids (their KV blocks cannot be reused and their rows train on tokens the model did not sample).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

from bench_rema_rollout import Stopwatch, load_rows, run_rema  # noqa: E402
from lockstep import LengthPlan, Reply, request_seed, retokenised_share, run_lockstep  # noqa: E402
from rollout_records import EpisodeLog, RequestRecord, vllm_request_kwargs  # noqa: E402
from vllm_engine import EngineClient, start_engine  # noqa: E402

SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}


@dataclass(frozen=True)
class DesignResult:
    """One design, one repeat."""

    episodes: int
    tokens: int
    seconds: float
    cpu_seconds: float
    prompt_tokens: int
    cached_tokens: int
    requests: int
    batches: int  # generate calls every episode of the batch waited for (0 for ours)
    retokenised: float | None = None

    @property
    def episodes_per_s(self) -> float:
        return self.episodes / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / max(self.prompt_tokens, 1)

    @property
    def prefilled_per_request(self) -> float:
        return (self.prompt_tokens - self.cached_tokens) / max(self.requests, 1)

    @property
    def prompt_per_request(self) -> float:
        return self.prompt_tokens / max(self.requests, 1)


def design_result(
    records: Sequence[RequestRecord], episodes: int, seconds: float, cpu_seconds: float, **extra: Any
) -> DesignResult:
    return DesignResult(
        episodes=episodes,
        tokens=sum(len(r.output_ids) for r in records),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        prompt_tokens=sum(len(r.prompt_ids) for r in records),
        cached_tokens=sum(r.cached for r in records),
        requests=len(records),
        **extra,
    )


def block_for(rounds: int, plan: LengthPlan, max_model_len: int) -> dict[str, Any]:
    """The ``rema.rollout`` block of both designs: the plan's longest message fits after a chat at the cap."""
    return {
        "prompt_set": "multiturn",
        "max_turns": rounds,
        "max_tokens_per_message": plan.longest,
        "max_context_tokens": max_model_len - plan.longest,
        "stop_when_truncated": False,
    }


class PlannedClient:
    """The ``server_manager`` of one episode of (b): the plan's budget and the (episode, role, turn) seed of each
    message, as (a) uses them, and a record of the request."""

    def __init__(self, client: EngineClient, log: EpisodeLog, plan: LengthPlan, seed_base: int):
        self.client, self.log, self.plan, self.seed_base = client, log, plan, seed_base

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw: Any):
        role, turn = self.log.label(request_id)
        seed = request_seed(self.seed_base, self.log.episode, role, turn)
        budget = min(int(sampling_params["max_tokens"]), self.plan.budget(self.log.episode, role, turn))
        params = {**sampling_params, "seed": seed, "max_tokens": budget}
        output = await self.client.generate(request_id, prompt_ids=prompt_ids, sampling_params=params, **kw)
        cached = output.extra_fields.get("num_cached_tokens") or 0
        self.log.records.append(
            RequestRecord(self.log.episode, role, turn, list(prompt_ids), list(output.token_ids), cached, seed)
        )
        return output


async def run_ours(engine, client, tokenizer, model_type, rows, args, block, plan, seed_base) -> DesignResult:
    await engine.reset_prefix_cache()
    phase = await run_rema(
        client,
        tokenizer,
        model_type,
        rows,
        args,
        seed_base,
        block=block,
        make_client=lambda log: PlannedClient(client, log, plan, seed_base),
    )
    return design_result(phase.records, len(rows), phase.seconds, phase.cpu_seconds, batches=0)


async def run_reference(engine, client, tokenizer, rows, block, plan, seed_base, args) -> DesignResult:
    from verl_rema.rollout.config import ReMARolloutConfig
    from verl_rema.rollout.rows import message_tail

    await engine.reset_prefix_cache()
    settings = ReMARolloutConfig(**block)
    tail = message_tail(tokenizer, {})
    stop_ids = sorted({tokenizer.eos_token_id, *tail[:1]})  # the same stop tokens as the agent loop's
    sampling = {**SAMPLING, "stop_token_ids": stop_ids}
    ids = itertools.count()

    async def generate(prompt_ids: list[int], params: dict[str, Any]) -> Reply:
        kwargs = vllm_request_kwargs(params, len(prompt_ids), args.max_model_len)
        final = await client.generate_raw(f"lockstep-{next(ids)}", prompt_ids, kwargs)
        completion = final.outputs[0]
        return Reply(
            list(completion.token_ids), completion.text, completion.finish_reason, final.num_cached_tokens or 0
        )

    with Stopwatch() as watch:
        result = await run_lockstep(
            [row["question"] for row in rows],
            settings,
            tokenizer,
            generate,
            plan,
            sampling,
            context_cap=block["max_context_tokens"],
            seed_base=seed_base,
        )
    records = [
        RequestRecord(t.episode, t.role, t.turn, t.prompt_ids, t.reply.token_ids, t.reply.cached, t.seed)
        for t in result.turns
    ]
    retokenised = retokenised_share(result.turns, tokenizer)
    return design_result(
        records, len(rows), watch.seconds, watch.cpu_seconds, batches=result.batches, retokenised=retokenised
    )


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.4g} ({min(values):.4g}-{max(values):.4g})"


def report(setting: str, reference: list[DesignResult], ours: list[DesignResult]) -> list[str]:
    ratios = [o.episodes_per_s / r.episodes_per_s for r, o in zip(reference, ours, strict=True)]
    lines = [f"\n{setting}: {len(ours)} repeats; medians (min-max)"]
    header = f"{'':<14}{'episodes/s':>24}{'gen tokens/s':>24}{'tokens/req':>11}{'prompt/req':>11}"
    lines.append(header + f"{'prefill/req':>12}{'hit rate':>10}")
    for name, runs in (("(a) lockstep", reference), ("(b) ours", ours)):
        lines.append(
            f"{name:<14}{_median([r.episodes_per_s for r in runs]):>24}{_median([r.tokens_per_s for r in runs]):>24}"
            f"{statistics.median(r.tokens / max(r.requests, 1) for r in runs):>11.1f}"
            f"{statistics.median(r.prompt_per_request for r in runs):>11.1f}"
            f"{statistics.median(r.prefilled_per_request for r in runs):>12.1f}"
            f"{statistics.median(r.hit_rate for r in runs):>10.1%}"
        )
    lines.append(
        f"(b)/(a) episodes/s: {_median(ratios)}; (a): {reference[0].batches} barrier batches, "
        f"{statistics.median(r.retokenised for r in reference):.0%} of replies re-tokenise differently; "
        f"front-end CPU s (a) {statistics.median(r.cpu_seconds for r in reference):.2f} / "
        f"(b) {statistics.median(r.cpu_seconds for r in ours):.2f}"
    )
    return lines


async def bench(args: argparse.Namespace) -> None:
    from transformers import AutoConfig, AutoTokenizer

    import verl_rema.rollout  # noqa: F401  (registers the `rema` agent loop)
    from verl_rema.embedded import embedded_paths

    paths = None if args.model and args.data else embedded_paths()
    model = args.model or paths.model
    tokenizer = AutoTokenizer.from_pretrained(model)
    model_type = AutoConfig.from_pretrained(model).model_type
    rows = load_rows(args.data or paths.train, args.prompts, args.episodes)
    engine = start_engine(model, args)
    client = EngineClient(engine, args.max_model_len)
    lines = [
        f"model {model} (KV block {args.block_size}); {args.prompts} prompts x {args.episodes} episodes; "
        f"{args.tokens} tokens a message on average"
    ]
    try:
        warm = LengthPlan(args.tokens, 0.0)
        block = block_for(1, warm, args.max_model_len)
        await run_reference(engine, client, tokenizer, rows, block, warm, 0, args)
        await run_ours(engine, client, tokenizer, model_type, rows, args, block, warm, 0)
        for rounds, spread in itertools.product(args.rounds, args.spreads):
            plan = LengthPlan(args.tokens, spread, seed=args.seed, shape=args.shape)
            block = block_for(rounds, plan, args.max_model_len)
            reference, ours = [], []
            for repeat in range(args.repeats):
                seed_base = args.seed + 10**6 * (repeat + 1)
                first, second = ("a", "b") if repeat % 2 == 0 else ("b", "a")
                for design in (first, second):
                    started = time.perf_counter()
                    if design == "a":
                        reference.append(
                            await run_reference(engine, client, tokenizer, rows, block, plan, seed_base, args)
                        )
                    else:
                        ours.append(
                            await run_ours(engine, client, tokenizer, model_type, rows, args, block, plan, seed_base)
                        )
                    print(f"  rounds {rounds} spread {spread} repeat {repeat + 1} ({design}): "
                          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            spread_text = f"+-{spread:.0%}" if args.shape == "uniform" else f"lognormal sigma {spread}"
            lines += report(f"rounds {rounds}, message lengths {spread_text}", reference, ours)
            print("\n".join(lines[-5:]), flush=True)
    finally:
        engine.shutdown()
    print("\n" + "\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="HF model dir (head_dim 64 on vLLM-CPU); default: embedded")
    parser.add_argument("--data", type=Path, help="parquet with a `question` column; default: embedded train set")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per prompt (rollout.n)")
    parser.add_argument("--tokens", type=int, default=32, help="mean tokens per message")
    parser.add_argument("--rounds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 3, 8])
    parser.add_argument("--spreads", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.5, 0.9])
    parser.add_argument("--shape", choices=["uniform", "lognormal"], default="uniform", help="see LengthPlan")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--block-size", type=int, default=128, help="KV block size (vLLM-CPU: a multiple of 32)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="4 prompts x 2, rounds 1 and 3, spread 0.5, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts, args.episodes, args.rounds, args.spreads, args.repeats = 4, 2, [1, 3], [0.5], 1
    return args


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
