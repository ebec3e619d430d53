"""Make veRL's FSDP/FSDP2 training engines selectable on the CPU platform.

Upstream (veRL 0.9.1, ``verl/workers/engine/fsdp/transformer_impl.py``) registers
``FSDPEngineWithLMHead`` / ``FSDPEngineWithValueHead`` in ``EngineRegistry`` for devices
``["cuda", "npu"]`` only, so ``EngineRegistry.get_engine_cls`` raises "No engine registered
for device='cpu'". The same classes work on CPU (gloo process group, sdpa attention), so
the patch registers them for device ``cpu`` through the registry's own decorator.
"""

from __future__ import annotations

from ._guard import APPLIED

NAME = "fsdp_engine.register_cpu"


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
