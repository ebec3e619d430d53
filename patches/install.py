"""Register veRL's CPU platform and, when it is selected, apply the CPU patches; on every
platform, give the turn-level loss its global turn count (:mod:`.turn_count`), build
registered agent loops without Hydra's per-episode merge (:mod:`.agent_loop_instantiate`),
let the config set the replay buffer's poll interval (:mod:`.replay_poll`, inert unless set) and
freeze the start-up heap out of the garbage collector in the vLLM server and agent-loop workers
(:mod:`.gc_freeze`).

The first component :mod:`verl_rema.register` imports, so the ``cpu`` platform exists before any
later component (or veRL module it imports) resolves veRL's platform.
"""

from __future__ import annotations

from . import (
    agent_loop_instantiate,
    cpu_platform,  # noqa: F401  (registration only; inert until selected)
    gc_freeze,
    replay_poll,
    turn_count,
)
from ._guard import cpu_selected, require_upstream_versions

require_upstream_versions({"verl": "0.9.1"})
turn_count.apply()
agent_loop_instantiate.apply()
replay_poll.apply()
gc_freeze.apply()

if cpu_selected():
    require_upstream_versions()
    from . import fsdp_engine, torch_distributed, vllm_cpu

    torch_distributed.apply()
    fsdp_engine.apply()
    vllm_cpu.apply_distribution_alias()
