"""patches/gc_freeze.py and its post-import hook: the vLLM server and the agent-loop worker freeze their start-up
heap once started, vLLM is not imported to patch it, and the upstream gap the patch fills is still there."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import sys
import types

import pytest
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
from verl_rema_patches import _post_import, gc_freeze

from tests.conftest import run_python

SERVER_REPORT = """
import json, sys, inspect, verl, verl_rema_patches as p
before = "{module}" in sys.modules
import {module} as server
run = server.vLLMHttpServer.run_server
print(json.dumps({{
    "applied": p.APPLIED, "imported_before": before,
    "patched": getattr(run, "__wrapped__", None) is not None,
    "upstream_freezes": "freeze_gc_heap" in inspect.getsource(run.__wrapped__),
    "upstream_starts_asyncllm": "AsyncLLM.from_vllm_config" in inspect.getsource(run.__wrapped__),
}}))
"""


def test_the_server_is_patched_when_imported_and_upstream_still_does_not_freeze():
    result = run_python(SERVER_REPORT.format(module=gc_freeze.SERVER_MODULE), env={"VERL_PLATFORM": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert gc_freeze.NAME in report["applied"]
    assert report["imported_before"] is False, "installing the patch must not import vLLM's server module"
    assert report["patched"] and report["upstream_starts_asyncllm"]
    # If this fails, veRL now freezes the heap itself: drop the server half of the patch.
    assert report["upstream_freezes"] is False


def test_vllms_own_server_freezes_after_start_up():
    """The behaviour the patch copies: vLLM's OpenAI server calls freeze_gc_heap once started."""
    from vllm.entrypoints.launchers.utils import server_utils
    from vllm.utils import gc_utils

    assert "gc.freeze()" in inspect.getsource(gc_utils.freeze_gc_heap)
    assert "freeze_gc_heap()" in inspect.getsource(server_utils)


def test_the_agent_loop_worker_is_patched_in_this_process():
    assert gc_freeze.NAME in sys.modules["verl_rema_patches"].APPLIED
    original = AgentLoopWorker.__init__.__wrapped__
    assert "self.tokenizer = self.model_config.tokenizer" in inspect.getsource(original)


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    gc_freeze.FROZEN.clear()
    yield
    gc.unfreeze()
    gc_freeze.FROZEN.clear()


def _fake_server_module():
    class vLLMHttpServer:  # noqa: N801  (upstream's name)
        async def run_server(self, args):
            self.started = args
            return "uvicorn-task"

    return types.SimpleNamespace(vLLMHttpServer=vLLMHttpServer)


@pytest.mark.parametrize(("env", "frozen"), [(None, True), ("1", True), ("0", False)])
def test_run_server_freezes_after_the_original_returns(monkeypatch, unfrozen, env, frozen):
    if env is None:
        monkeypatch.delenv(gc_freeze.ENV, raising=False)
    else:
        monkeypatch.setenv(gc_freeze.ENV, env)
    module = _fake_server_module()
    gc_freeze.patch_server(module)
    server = module.vLLMHttpServer()
    garbage = [object() for _ in range(100)]
    assert gc.get_freeze_count() == 0
    assert asyncio.run(server.run_server("args")) == "uvicorn-task" and server.started == "args"
    assert (gc.get_freeze_count() > len(garbage)) is frozen
    assert gc_freeze.FROZEN == (["server"] if frozen else [])


def test_a_server_without_run_server_is_refused():
    with pytest.raises(RuntimeError, match="run_server is gone"):
        gc_freeze.patch_server(types.SimpleNamespace(vLLMHttpServer=type("vLLMHttpServer", (), {})))


def test_post_import_hook_runs_after_the_module_body_and_once(tmp_path, monkeypatch):
    (tmp_path / "rema_probe_module.py").write_text("VALUE = 41\n\ndef f():\n    return VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    def bump(module):
        seen.append(module.VALUE)
        module.VALUE += 1

    _post_import.when_imported("rema_probe_module", bump)
    try:
        import rema_probe_module

        assert seen == [41] and rema_probe_module.f() == 42, "the callback saw the executed module"
        assert "return VALUE" in inspect.getsource(rema_probe_module.f), "the wrapped loader still serves source"
        _post_import.when_imported("rema_probe_module", bump)  # already imported: at once
        assert seen == [41, 42]
        del sys.modules["rema_probe_module"]
        import rema_probe_module  # noqa: F811  (a re-import is not a first import)

        assert seen == [41, 42] and rema_probe_module.VALUE == 41
    finally:
        sys.modules.pop("rema_probe_module", None)
