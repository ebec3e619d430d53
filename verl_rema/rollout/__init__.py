"""ReMA rollout: the two-agent dialogue protocol and its veRL agent loop.

Importing this package registers the ``rema`` agent loop in veRL's agent-loop registry
(``verl.experimental.agent_loop.agent_loop._agent_loop_registry``); :mod:`verl_rema.register` does so in
every process through the ``verl.plugins`` entry point.
"""

from verl_rema.rollout.dialogue import Dialogue, DialogueConfig, FinishReason, Role
from verl_rema.rollout.rema_agent_loop import AGENT_NAME, ReMAAgentLoop, ReMAAgentLoopOutput

__all__ = ["AGENT_NAME", "Dialogue", "DialogueConfig", "FinishReason", "ReMAAgentLoop", "ReMAAgentLoopOutput", "Role"]
