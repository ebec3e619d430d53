"""Freeze the start-up heap out of Python's garbage collector in veRL's vLLM server and agent-loop workers.

Upstream: veRL 0.9.1. ``vLLMHttpServer.run_server`` (``verl/workers/rollout/vllm_rollout/vllm_async_server.py``)
starts vLLM's ``AsyncLLM`` front end in the server actor as vLLM's own OpenAI server does, but leaves out the
``freeze_gc_heap()`` (``vllm/utils/gc_utils.py``) that vLLM's server calls once started
(``vllm/entrypoints/launchers/utils/server_utils.py``): every full (generation 2)
collection then walks the whole start-up heap (torch, vLLM, transformers, Ray: millions of objects) while the
front end, which turns engine outputs into tokens for every request, stands still. ``AgentLoopWorker`` (the
episodes' process, ``verl/experimental/agent_loop/agent_loop.py``) carries a heap of the same kind.

Measured on the 2-core CPU box (``benchmarks/bench_rema_rollout.py``, which counts collections per phase): a 5-s
rollout phase of 768 requests met one full collection costing 0.56-0.96 s; frozen, full collections cost
0.04-0.16 s.

The patch freezes, once each process has finished starting: the server after ``run_server`` (vLLM's own call), the
worker after ``AgentLoopWorker.__init__`` (``gc.collect()`` then ``gc.freeze()``, as vLLM's helper does). Objects
made later are collected as before; frozen ones are never freed, which is what vLLM's server accepts for its own
start-up state. ``VERL_REMA_GC_FREEZE=0`` (set before Ray starts, so every worker inherits it) leaves both alone.
Applied on every platform. The server module imports vLLM, so it is patched when something imports it, not here.
"""

from __future__ import annotations

import functools
import gc
import os
from typing import Any

from ._guard import APPLIED
from ._post_import import when_imported

NAME = "gc_freeze.after_startup"
ENV = "VERL_REMA_GC_FREEZE"
SERVER_MODULE = "verl.workers.rollout.vllm_rollout.vllm_async_server"
FROZEN: list[str] = []  # what this process froze ("server", "agent_loop_worker"), for tests and logs


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip() != "0"


def freeze(who: str) -> None:
    """vLLM's ``freeze_gc_heap``: collect every generation, then move what survives out of the collector's scans."""
    gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    gc.freeze()
    FROZEN.append(who)


def patch_server(module: Any) -> None:
    server = getattr(module, "vLLMHttpServer", None)
    original = getattr(server, "run_server", None)
    if original is None:
        raise RuntimeError(
            f"verl_rema_patches.gc_freeze: {SERVER_MODULE}.vLLMHttpServer.run_server is gone; this veRL differs "
            "from the 0.9.1 the patch was written for."
        )

    @functools.wraps(original)
    async def run_server(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        if enabled():
            freeze("server")
        return result

    server.run_server = run_server


def patch_worker() -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    original = AgentLoopWorker.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if enabled():
            freeze("agent_loop_worker")

    AgentLoopWorker.__init__ = __init__


def apply() -> None:
    if NAME in APPLIED:
        return
    patch_worker()
    when_imported(SERVER_MODULE, patch_server)
    APPLIED.append(NAME)
