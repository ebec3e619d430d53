"""The LLM client handed to the agent loop when each role has its own model: one veRL client per role's server set.

veRL's trainer hands ``get_llm_client()`` to every agent-loop worker, which gives it to each agent loop as
``server_manager``. The ``rema`` agent loop asks for its role's client through ``for_role`` (its
``_server_for(role)`` seam); anything else calling ``generate`` reaches the primary role's (the MTA's) servers.
"""

from __future__ import annotations

from typing import Any

from verl.workers.rollout.llm_server import LLMServerClient
from verl.workers.rollout.replica import TokenOutput

from verl_rema.protocol import Role


class RoleRoutingClient(LLMServerClient):
    """``{role: LLMServerClient}``; picklable like the clients it holds (it travels to Ray actors)."""

    def __init__(self, config: Any, clients: dict[str, LLMServerClient], default_role: str = Role.META.value):
        super().__init__(config, load_balancer_handle=None)
        missing = sorted({role.value for role in Role} - set(clients))
        if missing:
            raise ValueError(f"a client per role is needed; missing {missing}")
        self.clients = dict(clients)
        self.default_role = default_role

    def for_role(self, role: Role | str) -> LLMServerClient:
        return self.clients[Role(role).value]

    async def generate(self, request_id: str, **kwargs: Any) -> TokenOutput:
        return await self.clients[self.default_role].generate(request_id, **kwargs)


__all__ = ["RoleRoutingClient"]
