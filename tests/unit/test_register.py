"""Registration is loud: a component that fails to import stops the process with its name."""

from __future__ import annotations

import pytest

from tests.conftest import run_python


def test_register_all_reraises_and_names_the_component(monkeypatch, capsys):
    import verl_rema.register as register

    monkeypatch.setattr(register, "COMPONENTS", ("verl_rema.no_such_component",))
    with pytest.raises(ModuleNotFoundError):
        register.register_all()
    assert "FAILED to register component 'verl_rema.no_such_component'" in capsys.readouterr().err


def test_a_broken_component_stops_verl_import_when_named_in_external_modules():
    # veRL swallows entry-point errors, but not VERL_USE_EXTERNAL_MODULES ones: main_ppo sets both.
    result = run_python(
        "import sys; sys.modules['verl_rema.rollout'] = None; import verl",
        env={"VERL_USE_EXTERNAL_MODULES": "verl_rema.register"},
    )
    assert result.returncode != 0
    assert "FAILED to register component 'verl_rema.rollout'" in result.stderr


def test_plugin_is_loaded_by_verl_itself_through_its_entry_point():
    result = run_python(
        "import verl, sys, verl_rema.register as r; "
        "from verl.experimental.agent_loop.agent_loop import _agent_loop_registry as a; "
        "print('rema' in a, r.REGISTERED == list(r.COMPONENTS))",
        env={"VERL_USE_EXTERNAL_MODULES": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["True", "True"]


@pytest.mark.parametrize("module", ["verl_rema_configs", "verl_rema.evaluate.trainer"])  # the Hydra config, a leaf
def test_any_component_can_be_imported_first(module):
    """veRL imports verl_rema.register while the first verl_rema module is still half-imported; every component
    must still import and register (a circular import here stops `--cfg job` and every worker)."""
    result = run_python(
        f"import {module}, verl_rema.register as r; print(r.REGISTERED == list(r.COMPONENTS))",
        env={"VERL_USE_EXTERNAL_MODULES": "verl_rema.register"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "True"
