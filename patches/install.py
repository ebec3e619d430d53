"""Register veRL's CPU platform and, when it is selected, apply the CPU patches; on every
platform, give the turn-level loss its global turn count (:mod:`.turn_count`).

The first component :mod:`verl_rema.register` imports, so the ``cpu`` platform exists before any
later component (or veRL module it imports) resolves veRL's platform.
"""

from __future__ import annotations

from . import (
    cpu_platform,  # noqa: F401  (registration only; inert until selected)
    turn_count,
)
from ._guard import cpu_selected, require_upstream_versions

require_upstream_versions({"verl": "0.9.1"})
turn_count.apply()

if cpu_selected():
    require_upstream_versions()
    from . import fsdp_engine, torch_distributed, vllm_cpu

    torch_distributed.apply()
    fsdp_engine.apply()
    vllm_cpu.apply_distribution_alias()
