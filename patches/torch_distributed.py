"""Adapt ``verl.utils.distributed`` to a CPU-only process group.

Upstream (veRL 0.9.1, ``verl/utils/distributed.py``) builds the backend string
``f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``. With the CPU platform that is
``"cpu:gloo,cpu:gloo"``, which torch rejects ("Duplicate device type cpu in backend string").
The patch wraps ``torch.distributed.init_process_group`` and drops repeated device entries;
any backend string without a repeated device passes through unchanged.
"""

from __future__ import annotations

import functools

import torch.distributed as dist

from ._guard import APPLIED

NAME = "torch_distributed.dedupe_backend"


def dedupe_backend(backend: str) -> str:
    """``"cpu:gloo,cpu:gloo"`` -> ``"cpu:gloo"``; strings without a repeated device are returned as is."""
    if "," not in backend:
        return backend
    kept: dict[str, str] = {}
    for part in backend.split(","):
        kept.setdefault(part.split(":")[0], part)
    return backend if len(kept) == len(backend.split(",")) else ",".join(kept.values())


def apply() -> None:
    if NAME in APPLIED:
        return
    original = dist.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        if isinstance(kwargs.get("backend"), str):
            kwargs["backend"] = dedupe_backend(kwargs["backend"])
        elif args and isinstance(args[0], str):
            args = (dedupe_backend(args[0]), *args[1:])
        return original(*args, **kwargs)

    dist.init_process_group = init_process_group
    APPLIED.append(NAME)
