"""A second hybrid rollout server set for the reasoning agent's model, beside veRL's own (the MTA's).

veRL 0.9.1 builds one hybrid actor-rollout worker group and one vLLM server set per run. A second set on the same
machine collides with the first in two names that both derive from ``replica_rank`` (0 for the first replica of
each set):

1. the vLLM server actor, ``vllm_server_{replica_rank}_{node_rank}``, which the FSDP worker's ``ServerAdapter``
   looks up by name (``vllm_rollout.py``, ``_ensure_server_handle``);
2. the weight-sync socket ``ipc:///tmp/rl-colocate-zmq-{job}-replica-{r}-rank-{k}.sock``: the worker side builds it
   in ``ServerAdapter.__init__``, the vLLM worker side from the environment variable ``VERL_RAY_JOB_ID`` that
   ``vLLMHttpServer.__init__`` sets before the engine starts (``vllm_rollout/utils.py``, ``_get_zmq_handle``).

For the partner role both ends are renamed together: its server actors are ``vllm_<role>_server_...``, and the
job id in its socket path becomes ``<job>-<role>``. These are subclasses and instance attributes, not patches of
veRL's classes; :func:`check_upstream` pins the upstream shapes they rely on (and a unit test runs it).
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

from verl_rema.protocol import Role

JOB_ID_ENV = "VERL_RAY_JOB_ID"
ZMQ_PATTERN = re.compile(r"^(ipc://.*/rl-colocate-zmq-)([^/]*?)(-replica-\d+-rank-\d+\.sock)$")


def server_prefix(role: Role) -> str:
    return f"vllm_{role.value}_"


def role_zmq_handle(handle: str, role: Role) -> str:
    """``...zmq-{job}-replica-...`` -> ``...zmq-{job}-{role}-replica-...`` (the receiver's job id is renamed alike)."""
    match = ZMQ_PATTERN.match(handle)
    if match is None:
        raise RuntimeError(f"veRL's weight-sync socket path changed ({handle!r}); verl_rema.separate needs updating")
    return f"{match.group(1)}{match.group(2)}-{role.value}{match.group(3)}"


def check_upstream() -> None:
    """Fail loudly if the veRL code the renames rely on no longer has the expected shape."""
    from verl.workers.rollout.vllm_rollout import utils as vllm_utils
    from verl.workers.rollout.vllm_rollout import vllm_async_server, vllm_rollout

    adapter = inspect.getsource(vllm_rollout.ServerAdapter)
    server = inspect.getsource(vllm_async_server.vLLMHttpServer.__init__)
    receiver = inspect.getsource(vllm_utils.vLLMColocateWorkerExtension._get_zmq_handle)
    checks = {
        "ServerAdapter.zmq_handle": "rl-colocate-zmq-{job_id}-replica-" in adapter,
        "ServerAdapter._get_server_name_prefix": "_get_server_name_prefix()" in adapter,
        "vLLMHttpServer sets VERL_RAY_JOB_ID": f'os.environ["{JOB_ID_ENV}"]' in server,
        "receiver reads VERL_RAY_JOB_ID": f'"{JOB_ID_ENV}"' in receiver and "rl-colocate-zmq-{job_id}" in receiver,
        "vLLMReplica names servers by prefix": "self._get_server_name_prefix()"
        in inspect.getsource(vllm_async_server.vLLMReplica.launch_servers),
    }
    broken = [name for name, ok in checks.items() if not ok]
    if broken:
        raise RuntimeError(f"verl_rema.separate: veRL's rollout code changed shape ({broken}); update servers.py")


def role_replica_class(role: Role) -> type:
    """A ``vLLMReplica`` whose servers carry the role in their actor name and socket job id."""
    import ray
    from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMHttpServer, vLLMReplica

    class RoleServer(vLLMHttpServer):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            os.environ[JOB_ID_ENV] = f"{os.environ[JOB_ID_ENV]}-{role.value}"  # before the engine starts

    RoleServer.__name__ = RoleServer.__qualname__ = f"vLLMHttpServer_{role.value}"

    class RoleReplica(vLLMReplica):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.server_class = ray.remote(RoleServer)

        def _get_server_name_prefix(self) -> str:
            return server_prefix(role)

    return RoleReplica


def rename_adapter(adapter: Any, role: Role) -> None:
    """Point a worker's ``ServerAdapter`` at its role's server actors and socket."""
    adapter._get_server_name_prefix = lambda: server_prefix(role)
    adapter.zmq_handle = role_zmq_handle(adapter.zmq_handle, role)


__all__ = ["check_upstream", "rename_adapter", "role_replica_class", "role_zmq_handle", "server_prefix"]
