"""The ReMA rollout: the ``rema`` agent loop (registered with veRL on import) and its pure protocol state.

``config.py`` is the ``rema.rollout`` block, ``dialogue.py`` the two-agent protocol as plain data, ``metrics.py``
the per-episode dialogue metrics, ``rema_agent_loop.py`` the veRL agent loop that plays episodes on the rollout
engine and builds token-exact training rows.
"""

from verl_rema.rollout.rema_agent_loop import AGENT_NAME, ReMAAgentLoop

__all__ = ["AGENT_NAME", "ReMAAgentLoop"]
