"""Single-agent baselines the paper compares ReMA against (VRP_RL: chain-of-thought + RL)."""

from .cot_agent_loop import CoTAgentLoop

__all__ = ["CoTAgentLoop"]
