"""The ``rema`` agent loop outside veRL's workers, built exactly as veRL builds it, for tests and benchmarks.

veRL's ``AgentLoopWorker`` instantiates one agent loop per episode from the registry entry with
``hydra.utils.instantiate`` (as looked up in veRL's module, where a patch may have replaced it) and hands it a server
manager (anything with ``LLMServerClient.generate``'s signature).
:func:`make_agent_loop` does the same with a server of the caller's (a scripted engine in the unit tests, an
in-process vLLM engine in ``benchmarks/bench_rema_rollout.py``), so both drive the very code that trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def trainer_config(
    rollout: Mapping[str, Any] | None = None,
    *,
    prompt_length: int = 512,
    response_length: int = 1024,
    max_model_len: int | None = None,
    use_v1: bool = True,
) -> DictConfig:
    """The parts of a trainer config the agent loop reads; ``rollout`` is the ``rema.rollout`` block."""
    engine = {"prompt_length": prompt_length, "response_length": response_length, "max_model_len": max_model_len}
    return OmegaConf.create(
        {
            "trainer": {"use_v1": use_v1},
            "actor_rollout_ref": {"rollout": engine},
            "data": {},
            "rema": {"rollout": dict(rollout or {})},
        }
    )


def make_agent_loop(
    config: DictConfig, server_manager: Any, tokenizer: Any, hf_model_type: str | None = None, name: str | None = None
) -> Any:  # a ReMAAgentLoop
    """One agent loop, as ``AgentLoopWorker._run_agent_loop`` makes it: registry entry + the ``instantiate`` that
    veRL's module calls (Hydra's, or the direct path of ``verl_rema_patches.agent_loop_instantiate`` once applied)."""
    from verl.experimental.agent_loop import agent_loop
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_rema.rollout.rema_agent_loop import AGENT_NAME

    return agent_loop.hydra.utils.instantiate(
        config=_agent_loop_registry[name or AGENT_NAME],
        trainer_config=DictConfigWrap(config=config),
        server_manager=server_manager,
        tokenizer=tokenizer,
        processor=None,
        hf_model_type=hf_model_type,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )


__all__ = ["make_agent_loop", "trainer_config"]
