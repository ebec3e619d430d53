"""The plug-in's registrations exist inside real Ray worker processes, not only in the driver."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _registries() -> dict:
    import os

    import verl  # noqa: F401  (veRL's own plugin loading must bring verl_rema in)
    import verl_rema_patches
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.plugin.platform import get_platform
    from verl.trainer.ppo import core_algos

    import verl_rema.register as register

    return {
        "pid": os.getpid(),
        "registered": list(register.REGISTERED),
        "agent_loops": sorted(_agent_loop_registry),
        "policy_losses": sorted(core_algos.POLICY_LOSS_REGISTRY),
        "adv_estimators": sorted(core_algos.ADV_ESTIMATOR_REGISTRY),
        "platform": get_platform().device_name,
        "patches": list(verl_rema_patches.APPLIED),
    }


def test_registrations_reach_ray_tasks_and_actors():
    import os

    import ray

    import verl_rema.register as register

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"VERL_PLATFORM": "cpu"}},
        ignore_reinit_error=False,
    )
    try:
        task = ray.get(ray.remote(_registries).remote())

        @ray.remote
        class Probe:
            def report(self) -> dict:
                return _registries()

        actor = ray.get(Probe.remote().report.remote())
    finally:
        ray.shutdown()
    for report in (task, actor):
        assert report["pid"] != os.getpid()
        assert report["registered"] == list(register.COMPONENTS)
        assert "rema" in report["agent_loops"]
        assert report["platform"] == "cpu"
        assert "fsdp_engine.register_cpu" in report["patches"]
        if "verl_rema.losses" in register.COMPONENTS:
            assert "rema_turn" in report["policy_losses"]
        if "verl_rema.advantages" in register.COMPONENTS:
            assert {"rema_grpo", "softrank"} <= set(report["adv_estimators"])
