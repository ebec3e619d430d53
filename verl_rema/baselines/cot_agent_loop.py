"""The chain-of-thought RL baseline (the paper's VRP_RL): one agent, one response, with the
CoT system prompt in front of the dataset's messages.

It is veRL's own single-turn agent loop; the only difference is the system message, which
comes from configuration (``rema.cot.system_prompt``) so the dataset stays prompt-free.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

AGENT_NAME = "rema_cot"


def with_system_prompt(messages: list[dict], system_prompt: str) -> list[dict]:
    """Replace (or insert) the leading system message."""
    rest = [m for i, m in enumerate(messages) if not (i == 0 and m.get("role") == "system")]
    return [{"role": "system", "content": system_prompt}, *rest] if system_prompt else rest


@register(AGENT_NAME)
class CoTAgentLoop(SingleTurnAgentLoop):
    """veRL's single-turn loop with a configured system prompt."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.system_prompt: str = self.config.get("rema", {}).get("cot", {}).get("system_prompt", "")

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        kwargs["raw_prompt"] = with_system_prompt(list(kwargs["raw_prompt"]), self.system_prompt)
        return await super().run(sampling_params, **kwargs)
