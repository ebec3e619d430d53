"""Choose the device before anything imports veRL.

veRL resolves its platform once per process, on first use, from ``VERL_PLATFORM``; every
Ray worker inherits the driver's environment. So the choice has to be made from the
command line and the host, before Hydra composes (composition imports ``verl``).
"""

from __future__ import annotations

import os

CPU_PRESET = "+preset=cpu"


def wants_cpu(overrides: list[str], cuda_available: bool) -> bool:
    """CPU when asked for (``trainer.device=cpu`` or the cpu preset) or when there is no CUDA device."""
    explicit = {"trainer.device=cpu", "+trainer.device=cpu", "preset=cpu", CPU_PRESET, "++preset=cpu"}
    return bool(explicit.intersection(overrides)) or not cuda_available


def select_device(overrides: list[str], cuda_available: bool | None = None) -> list[str]:
    """Return the overrides to compose with; on CPU, add the cpu preset (unless a preset is
    named) and select veRL's CPU platform for this process and its Ray workers."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if not wants_cpu(overrides, cuda_available):
        return list(overrides)
    os.environ["VERL_PLATFORM"] = "cpu"
    if any(o.lstrip("+").startswith("preset=") for o in overrides):
        return list(overrides)
    # Right after the recipe: the preset resizes the recipe for a CPU, and any group named after the recipe
    # (e.g. `+toy=rema`, hydra_configs/toy/) overlays the preset in turn. Before any Hydra option such as
    # `--cfg job`, which argparse would not let it follow. Plain key=value overrides win wherever they stand.
    recipes_at = [i for i, o in enumerate(overrides) if o.lstrip("+").startswith("recipe=")]
    at = recipes_at[-1] + 1 if recipes_at else 0
    return [*overrides[:at], CPU_PRESET, *overrides[at:]]
