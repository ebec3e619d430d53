"""Make veRL's FSDP/FSDP2 training engines usable on the CPU platform.

Upstream: veRL 0.9.1, ``verl/workers/engine/fsdp/transformer_impl.py``.

1. It registers ``FSDPEngineWithLMHead`` / ``FSDPEngineWithValueHead`` in ``EngineRegistry``
   for devices ``["cuda", "npu"]`` only, so ``EngineRegistry.get_engine_cls`` raises "No engine
   registered for device='cpu'". The same classes work on CPU (gloo process group, sdpa
   attention): :func:`apply` registers them for device ``cpu`` with the registry's own decorator.
2. For forward-only engines (the reference policy) it always shards with
   ``CPUOffloadPolicy(pin_memory=True)``; pinning host memory needs an accelerator and fails
   with "Cannot access accelerator device when none is available". On CPU the parameters are
   in host memory anyway: the module's ``CPUOffloadPolicy`` becomes a subclass that never pins.
"""

from __future__ import annotations

from ._guard import APPLIED

NAME = "fsdp_engine.register_cpu"
UNPINNED = "fsdp_engine.unpinned_offload"


def apply() -> None:
    if NAME in APPLIED:
        return
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    for model_type, engine_cls in (("language_model", FSDPEngineWithLMHead), ("value_model", FSDPEngineWithValueHead)):
        for backend in ("fsdp", "fsdp2"):
            if EngineRegistry._engines.get(model_type, {}).get(backend, {}).get("cpu") is None:
                EngineRegistry.register(model_type=model_type, backend=backend, device="cpu")(engine_cls)
    APPLIED.append(NAME)
    _unpin_offload_policy()


def _unpin_offload_policy() -> None:
    from verl.workers.engine.fsdp import transformer_impl

    upstream = transformer_impl.CPUOffloadPolicy

    class UnpinnedCPUOffloadPolicy(upstream):
        """``CPUOffloadPolicy`` that never pins host memory (there is no device to pin it for)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.pin_memory = False

    transformer_impl.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy
    APPLIED.append(UNPINNED)
