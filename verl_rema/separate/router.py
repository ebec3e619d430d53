"""Route a step's rows to the models that train on them.

With a model per role, each training step samples one batch of episodes (every episode leaves one row per role),
then each trained role's model is updated on its own rows only. veRL's ``_step_once`` samples from the replay
buffer and runs the whole update on what it got; the separate-models trainer runs it once per trained role, and
this router stands in for the replay buffer's ``sample``: the first call samples, records what both roles
generated, drops the rows of roles that do not train this step (their model keeps generating, unchanged) and hands
out the first role's rows; later calls in the same step hand out the other trained roles' rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import transfer_queue as tq
from transfer_queue import KVBatchMeta

from verl_rema.protocol import ROLE_FIELD, Role
from verl_rema.trainer.rema_trainer import as_list
from verl_rema.trainer.step_metrics import PREFIX, role_shares

SampleFn = Callable[..., tuple[KVBatchMeta, dict]]


def split_by_role(batch: KVBatchMeta, roles: Sequence[str]) -> dict[Role, KVBatchMeta]:
    """One KVBatchMeta per role, keys and tags in the batch's order."""
    parts: dict[Role, tuple[list[str], list[dict]]] = {}
    for key, tag, role in zip(batch.keys, batch.tags, roles, strict=True):
        keys, tags = parts.setdefault(Role(role), ([], []))
        keys.append(key)
        tags.append(tag)
    return {role: KVBatchMeta(partition_id=batch.partition_id, keys=k, tags=t) for role, (k, t) in parts.items()}


class RoleRouter:
    """Wraps a replay buffer's ``sample`` for the training partition (validation passes straight through)."""

    def __init__(self, sample: SampleFn):
        self._sample = sample
        self._plan: list[Role] = []
        self._pending: dict[Role, KVBatchMeta] = {}
        self.stats: dict[str, float] = {}

    def raw_sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[KVBatchMeta, dict]:
        """The replay buffer's own sample, unrouted (Algorithm 1's filter passes read whole episodes)."""
        return self._sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)

    def plan(self, roles: Sequence[Role]) -> None:
        """The roles to serve, in order, for the next training step."""
        self._plan = list(roles)
        self._pending = {}

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[KVBatchMeta, dict]:
        if partition_id != "train":
            return self._sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        if not self._plan:
            raise RuntimeError("RoleRouter: no role planned for this training step")
        role = self._plan.pop(0)
        if role in self._pending:
            return self._pending.pop(role), {}
        batch, metrics = self._sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[ROLE_FIELD, "response_mask"])  # fmt: skip
        roles = [str(r) for r in as_list(data[ROLE_FIELD])]
        self.stats = role_shares(roles, list(data["response_mask"].unbind(0)))  # both roles, before routing
        parts = split_by_role(batch, roles)
        trained = {role, *self._plan}
        dropped = [key for other, part in parts.items() if other not in trained for key in part.keys]
        if dropped:
            tq.kv_clear(keys=dropped, partition_id=batch.partition_id)
        self.stats[f"{PREFIX}untrained_rows"] = float(len(dropped))
        self._pending = {other: parts[other] for other in self._plan if other in parts}
        if role not in parts:
            raise RuntimeError(
                f"RoleRouter: the sampled batch has no {role.value} rows (roles seen: {sorted(set(roles))})"
            )
        return parts[role], metrics


PER_MODEL = (
    "actor/",
    "perf/mfu/actor",
    "training/rollout_probs_diff",
    f"{PREFIX}optimizer_steps",
    f"{PREFIX}padding_rows",
)


def role_metrics(metrics: dict[str, Any], role: Role, keep_plain: bool) -> dict[str, Any]:
    """A role's copy of one model update's metrics: ``actor/pg_loss`` -> ``training/rema/<role>/actor/pg_loss``,
    ``training/rema/optimizer_steps`` -> ``training/rema/<role>/optimizer_steps``. The unprefixed keys stay when
    one model trained this step; when two did, they would mix both models and are left out."""
    out = {}
    for key, value in metrics.items():
        if key.startswith(PER_MODEL):
            out[f"{PREFIX}{role.value}/{key.removeprefix(PREFIX)}"] = value
            if keep_plain:
                out[key] = value
        else:
            out[key] = value
    return out


__all__ = ["RoleRouter", "role_metrics", "split_by_role"]
