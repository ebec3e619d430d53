"""veRL's actor-rollout(-ref) worker for a role whose model has its own rollout server set (``servers.py``)."""

from __future__ import annotations

from typing import Any

from verl.single_controller.base.decorator import Dispatch, register
from verl.workers.engine_workers import ActorRolloutRefWorker

from verl_rema.protocol import Role
from verl_rema.separate.servers import rename_adapter


class RoleWorker(ActorRolloutRefWorker):
    """Builds the role's model like veRL's worker, then points its rollout adapter at the role's servers."""

    def __init__(self, config: Any, role: str, rema_role: str, **kwargs: Any):
        super().__init__(config, role, **kwargs)
        self.rema_role = Role(rema_role)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def init_model(self):
        super().init_model()
        rollout = getattr(self, "rollout", None)
        if rollout is not None:
            rename_adapter(rollout, self.rema_role)


__all__ = ["RoleWorker"]
