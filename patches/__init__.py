"""Version-guarded adaptations that let an unmodified veRL 0.9.1 run on a CPU-only machine.

Installed as ``verl_rema_patches`` (see setup.py). Importing the package itself does nothing
(vLLM imports it in its own processes for ``vllm_cpu.register``); importing
:mod:`verl_rema_patches.install`, the first component of :mod:`verl_rema.register`, registers
veRL's ``cpu`` platform and, only when that platform is selected (``VERL_PLATFORM=cpu``, which
:mod:`verl_rema.main_ppo` sets when no CUDA device is present or ``trainer.device=cpu``),
applies the CPU patches below. Two patches apply on every platform (GPU runs included): ``turn_count``
(the turn-level loss needs it) and ``agent_loop_instantiate`` (a driver-side speed-up).

One module per upstream obstacle (see each module's docstring for the upstream code it adapts):

=====================  ===================================================================
cpu_platform           veRL has no CPU platform: device ``cpu``, gloo, logical Ray GPU.
torch_distributed      veRL asks torch for backend ``cpu:gloo,cpu:gloo`` (duplicate device).
fsdp_engine            veRL registers its FSDP/FSDP2 engines for cuda/npu only.
vllm_cpu               vLLM's CPU build: distribution name ``vllm-cpu``; weight prepacking
                       that breaks veRL's in-place weight sync.
turn_count             (every platform) the global mini-batch turn count the turn-level
                       loss's ``turn`` aggregation needs, computed like veRL's token count.
agent_loop_instantiate (every platform) veRL's worker builds each episode's agent loop
                       through Hydra (~2 ms of OmegaConf merging); registered loops are
                       built by calling their class with the same arguments.
=====================  ===================================================================

Config-level workarounds (sdpa attention, sleep mode off, eager mode, one TransferQueue
storage unit, logical Ray resources) live in ``hydra_configs/preset/cpu.yaml``.
"""

from __future__ import annotations

from ._guard import APPLIED, cpu_selected, require_upstream_versions

__all__ = ["APPLIED", "cpu_selected", "require_upstream_versions"]
