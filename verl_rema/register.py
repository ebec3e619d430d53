"""Wire every verl-rema component into veRL's registries.

veRL imports this module in every process that imports ``verl`` (driver, TaskRunner, FSDP
workers, agent-loop and reward-loop workers, vLLM workers) through the ``verl.plugins``
entry point declared in ``setup.py``; :mod:`verl_rema.main_ppo` also names it in
``VERL_USE_EXTERNAL_MODULES``, whose import errors veRL does not swallow.

Each component registers itself at import time with veRL's own decorators
(``register_policy_loss``, ``register_adv_est``, ``register`` for agent loops, ...).
A failure is printed to stderr and re-raised: a half-registered plug-in must never train.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

# Modules whose import performs a registration. Order matters only for readability.
COMPONENTS: tuple[str, ...] = (
    "verl_rema_patches.install",  # CPU platform + upstream adaptations (inert unless the CPU platform is selected)
    "verl_rema.embedded.resolvers",  # ${rema_embedded:...} OmegaConf resolvers for the embedded default
    "verl_rema.experiments.toy.resolvers",  # ${rema_toy:...}: the toy warm start (+toy=rema / +toy=cot)
    "verl_rema.losses",  # rema_turn policy loss (register_policy_loss)
    "verl_rema.advantages",  # rema_grpo and softrank advantage estimators (register_adv_est)
    "verl_rema.rollout",  # rema agent loop (two-agent ReMA rollout; the CoT baseline is its one-agent case)
    "verl_rema.rollout.phased_loop",  # rema_algorithm1 agent loop (Algorithm 1's phases, hierarchical sampling)
    "verl_rema.trainer",  # rema_sync trainer mode (roles to the estimators, ReMA step metrics)
    "verl_rema.evaluate.trainer",  # rema_eval trainer mode (validation dumps with subsets and dialogue metrics)
    "verl_rema.separate",  # rema_separate and rema_algorithm1 trainer modes (a model per role)
)

REGISTERED: list[str] = []


def register_all() -> list[str]:
    """Import every component once; return the names registered in this process."""
    for name in COMPONENTS:
        if name in REGISTERED:
            continue
        try:
            importlib.import_module(name)
        except Exception:
            print(
                f"[verl_rema pid={os.getpid()}] FAILED to register component {name!r}:\n{traceback.format_exc()}",
                file=sys.stderr,
                flush=True,
            )
            raise
        REGISTERED.append(name)
    return list(REGISTERED)


register_all()
