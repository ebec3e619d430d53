"""veRL's missing CPU platform.

veRL 0.9.1 routes every device call through ``verl.plugin.platform`` and ships cuda, npu
and rocm platforms only. This module registers ``cpu`` with veRL's own
``PlatformRegistry``. It is chosen only when ``VERL_PLATFORM=cpu`` (veRL's
``_detect_platform_name`` reads that variable first), so a GPU run never selects it.

Two choices differ from what a "device" platform would return, both because veRL code
outside the platform layer assumes an accelerator:

* ``current_device()`` returns ``torch.device("cpu")``, not ``0``: veRL passes
  ``get_device_id()`` straight to ``tensor.to(...)`` / ``model.to(device=...)``, where an
  int means "accelerator index" and fails without one (``fsdp2_load_full_state_dict``).
* ``ray_resource_name()`` is ``"GPU"``: veRL's resource-pool check counts only GPU/NPU
  resources, so Ray is started with one *logical* GPU (``ray_kwargs.ray_init.num_gpus`` in
  ``hydra_configs/preset/cpu.yaml``) that only reserves a slot; nothing touches CUDA.
"""

from __future__ import annotations

import types
from contextlib import contextmanager, nullcontext

import psutil
import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry


class _NoopStream:
    """Stand-in for a device stream/event: CPU work is synchronous."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> _NoopStream:
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def synchronize(self) -> None:
        pass

    def wait_stream(self, *args, **kwargs) -> None:
        pass

    def wait_event(self, *args, **kwargs) -> None:
        pass

    def record_event(self, *args, **kwargs) -> _NoopStream:
        return _NoopStream()

    def record(self, *args, **kwargs) -> None:
        pass

    def wait(self, *args, **kwargs) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, other) -> float:
        return 0.0


def _host_memory_info(*args, **kwargs) -> tuple[int, int]:
    """(free, total) bytes of host RAM: what veRL's memory logging asks a device for."""
    memory = psutil.virtual_memory()
    return memory.available, memory.total


def _zero(*args, **kwargs) -> int:
    return 0


def _noop(*args, **kwargs) -> None:
    return None


def _build_device_module() -> types.ModuleType:
    """A ``torch.cuda``-shaped namespace over the host, for ``get_torch_device()`` callers."""
    module = types.ModuleType("verl_rema_patches.cpu_device")
    module.__dict__.update(
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: 0,
        set_device=_noop,
        synchronize=_noop,
        empty_cache=_noop,
        ipc_collect=_noop,
        current_stream=lambda *a, **k: _NoopStream(),
        Stream=_NoopStream,
        Event=_NoopStream,
        stream=lambda *a, **k: nullcontext(),
        get_rng_state=lambda *a, **k: torch.get_rng_state(),
        set_rng_state=lambda state, *a, **k: torch.set_rng_state(state),
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        mem_get_info=_host_memory_info,
        memory_allocated=_zero,
        memory_reserved=_zero,
        max_memory_allocated=_zero,
        max_memory_reserved=_zero,
        reset_peak_memory_stats=_noop,
        set_per_process_memory_fraction=_noop,
        get_device_name=lambda *a, **k: "cpu",
        get_device_capability=lambda *a, **k: (None, None),
        memory=types.SimpleNamespace(_set_allocator_settings=_noop),
    )
    return module


CPU_DEVICE_MODULE = _build_device_module()


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """veRL platform for hosts without an accelerator (gloo collectives, sdpa attention)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: selection is explicit (VERL_PLATFORM=cpu, set by verl_rema.main_ppo).
        return False

    def current_device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray still writes the logical GPU ids here; harmless, nothing reads them on CPU.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False  # veRL's bucketed weight transfer then uses its shared-memory path

    def cudart(self):
        return None

    def rollout_env_vars(self) -> dict[str, str]:
        return {}
