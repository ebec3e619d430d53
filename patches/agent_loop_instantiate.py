"""Build registered agent loops without Hydra's per-episode config merge.

Upstream: veRL 0.9.1, ``AgentLoopWorker._run_agent_loop`` (``verl/experimental/agent_loop/agent_loop.py``) builds one
agent loop per episode with ``hydra.utils.instantiate(config=_agent_loop_registry[name], trainer_config=..., ...)``.
For an entry made by veRL's ``register`` decorator (``{"_target_": "pkg.mod.Class"}``) and the keyword arguments
the worker passes (wrapped configs, the server client, tokenizer, processor, a string, a class), Hydra's result is
``Class(**kwargs)`` with the very same objects; it gets there through an OmegaConf merge of every argument, ~2 ms of
the worker's event loop per episode (``benchmarks/bench_rema_rollout.py`` measures it), more than the ReMA loop's
own work for a whole episode.

The patch gives that module a ``hydra`` whose ``utils.instantiate`` calls the class directly in exactly that case:
the config is a plain ``dict`` holding only ``_target_``, which names an ``AgentLoopBase`` subclass, there are no
positional arguments and no keyword value Hydra would recurse into (a mapping, a sequence, an OmegaConf
container). Anything else (an agent-loop config file's entry, for instance) goes to Hydra unchanged. One
difference remains: an error raised by the constructor is not wrapped in Hydra's ``InstantiationException``.
Applied on every platform.
"""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Mapping
from typing import Any

from ._guard import APPLIED

NAME = "agent_loop_instantiate.direct"


@functools.lru_cache(maxsize=64)
def _locate(path: str) -> type | None:
    """The class a dotted path names, or None (Hydra then reports the problem as it would)."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return None


def direct_target(config: Any, args: tuple, kwargs: Mapping[str, Any]) -> type | None:
    """The agent-loop class to call directly for this ``instantiate`` call, or None to let Hydra do it."""
    from omegaconf import DictConfig, ListConfig
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase

    if args or type(config) is not dict or set(config) != {"_target_"} or not isinstance(config["_target_"], str):
        return None
    if any(isinstance(v, Mapping | list | tuple | set | DictConfig | ListConfig) for v in kwargs.values()):
        return None
    cls = _locate(config["_target_"])
    return cls if isinstance(cls, type) and issubclass(cls, AgentLoopBase) else None


def make_instantiate(hydra_instantiate: Any) -> Any:
    """``hydra.utils.instantiate`` with the direct path in front of it."""

    @functools.wraps(hydra_instantiate)
    def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
        cls = direct_target(config, args, kwargs)
        return cls(**kwargs) if cls is not None else hydra_instantiate(config, *args, **kwargs)

    return instantiate


class _Namespace(types.SimpleNamespace):
    """A stand-in for a module: the given attributes, everything else from the module."""

    def __init__(self, module: types.ModuleType, **overrides: Any):
        super().__init__(**overrides)
        object.__setattr__(self, "_module", module)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_module"), name)


def apply() -> None:
    if NAME in APPLIED:
        return
    import hydra
    from verl.experimental.agent_loop import agent_loop

    if getattr(agent_loop, "hydra", None) is not hydra:
        raise RuntimeError(
            "verl_rema_patches.agent_loop_instantiate: verl.experimental.agent_loop.agent_loop no longer imports "
            "`hydra` as a module global; this veRL differs from the 0.9.1 the patch was written for."
        )
    utils = _Namespace(hydra.utils, instantiate=make_instantiate(hydra.utils.instantiate))
    agent_loop.hydra = _Namespace(hydra, utils=utils)
    APPLIED.append(NAME)
