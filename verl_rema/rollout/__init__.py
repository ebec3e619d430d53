"""The ReMA rollout: the ``rema`` agent loop (registered with veRL on import) and its pure protocol state.

``config.py`` is the ``rema.rollout`` block, ``dialogue.py`` the two-agent protocol as plain data, ``metrics.py``
the per-episode dialogue metrics, ``rema_agent_loop.py`` the veRL agent loop that plays episodes on the rollout
engine and builds token-exact training rows.
"""

# veRL first: importing it imports verl_rema.register, which imports this package's modules; they must not be
# half-initialised then (tests/unit/test_register.py::test_any_component_can_be_imported_first)
import verl  # noqa: F401

from verl_rema.rollout.rema_agent_loop import AGENT_NAME, ReMAAgentLoop

__all__ = ["AGENT_NAME", "ReMAAgentLoop"]
