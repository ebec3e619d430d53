"""A model per role, the parts that need no Ray: schedule, per-role configs, row routing, client routing, the
renames of the second server set, and the start-up checks."""

from __future__ import annotations

import pickle

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import NonTensorData, NonTensorStack, TensorDict
from transfer_queue import KVBatchMeta

from tests.conftest import run_python
from verl_rema.protocol import Role
from verl_rema.separate import router as router_module
from verl_rema.separate.client import RoleRoutingClient
from verl_rema.separate.roles import check_same_tokenizer, role_configs
from verl_rema.separate.router import RoleRouter, role_metrics
from verl_rema.separate.schedule import ScheduleConfig
from verl_rema.separate.servers import role_zmq_handle, server_prefix

META, RA = Role.META, Role.REASONING


# -- schedule -------------------------------------------------------------------------------------------------------


def roles_over(schedule: ScheduleConfig, steps: int) -> list[str]:
    return ["+".join(r.value for r in schedule.roles_at(step)) for step in range(1, steps + 1)]


def test_reference_schedule_alternates_blocks_of_switch_freq_starting_with_the_mta():
    schedule = ScheduleConfig(switch_freq=10)
    assert roles_over(schedule, 30) == ["meta"] * 10 + ["reasoning"] * 10 + ["meta"] * 10
    assert [schedule.step_in_phase(s) for s in (1, 10, 11, 25)] == [0, 9, 0, 4]


def test_schedule_variants():
    assert roles_over(ScheduleConfig(switch_freq=1), 4) == ["meta", "reasoning", "meta", "reasoning"]
    assert roles_over(ScheduleConfig(first_role="reasoning", switch_freq=2), 5) == ["reasoning"] * 2 + ["meta"] * 2 + ["reasoning"]  # fmt: skip
    assert roles_over(ScheduleConfig(switch_freq=0), 2) == ["meta+reasoning"] * 2  # both, every step
    assert roles_over(ScheduleConfig(train_roles=["meta"], switch_freq=3), 4) == ["meta"] * 4  # the RA frozen
    assert ScheduleConfig(train_roles=["reasoning", "meta"]).order == (RA, META)  # first_role null: the first


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"train_roles": ["planner"]}, r"rema.schedule.train_roles must be distinct roles"),
        ({"train_roles": []}, r"rema.schedule.train_roles"),
        ({"train_roles": ["meta"], "first_role": "reasoning"}, r"rema.schedule.first_role='reasoning' must be one of"),
        ({"switch_freq": -1}, r"rema.schedule.switch_freq must be an integer >= 0"),
        ({"switch_every": 3}, r"unknown keys \['rema.schedule.switch_every'\]"),
    ],
)
def test_bad_schedules_are_refused_with_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        ScheduleConfig.from_config(values)


# -- per-role configs -----------------------------------------------------------------------------------------------


def composed(models):
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": "/m"}, "actor": {"optim": {"lr": 1e-6}}, "rollout": {"n": 4}},
            "rema": {"models": models},
        }
    )


def test_each_role_gets_actor_rollout_ref_merged_with_its_override():
    configs = role_configs(
        composed({"meta": {}, "reasoning": {"model": {"path": "/ra"}, "actor": {"optim": {"lr": 2e-6}}}})
    )
    assert configs[META].actor_rollout_ref.model.path == "/m" and configs[META].actor_rollout_ref.actor.optim.lr == 1e-6
    assert configs[RA].actor_rollout_ref.model.path == "/ra" and configs[RA].actor_rollout_ref.actor.optim.lr == 2e-6
    assert configs[RA].actor_rollout_ref.rollout.n == 4  # what the override does not name is shared


def test_role_overrides_name_their_key_when_wrong():
    config = composed({"meta": {}, "reasoning": {"actor": {"optm": {"lr": 1.0}}}})
    OmegaConf.set_struct(config, True)
    with pytest.raises(ValueError, match=r"rema.models.reasoning: .*optm"):
        role_configs(config)
    with pytest.raises(ValueError, match=r"rema.models must map each role"):
        role_configs(composed({"meta": {}}))


def test_the_two_models_must_share_a_tokenizer():
    class Tok:
        def __init__(self, vocab, template="t", eos="e"):
            self.vocab, self.chat_template, self.eos_token = vocab, template, eos

        def get_vocab(self):
            return self.vocab

    same = {"/a": Tok({"x": 0}), "/b": Tok({"x": 0})}
    check_same_tokenizer({META: "/a", RA: "/b"}, load=same.__getitem__)
    other = {"/a": Tok({"x": 0}), "/b": Tok({"x": 0}, template="other")}
    with pytest.raises(ValueError, match=r"different tokenizers \(chat template\)"):
        check_same_tokenizer({META: "/a", RA: "/b"}, load=other.__getitem__)


# -- routing rows ---------------------------------------------------------------------------------------------------


class FakeTQ:
    """TransferQueue's kv_batch_get / kv_clear over an in-memory table."""

    def __init__(self, rows: dict[str, tuple[str, list[int]]]):
        self.rows, self.cleared = rows, []

    def kv_batch_get(self, keys, partition_id, select_fields):
        roles = NonTensorStack(*(NonTensorData(self.rows[k][0]) for k in keys))
        masks = torch.nested.nested_tensor([torch.tensor(self.rows[k][1]) for k in keys], layout=torch.jagged)
        return TensorDict({"rema_role": roles, "response_mask": masks}, batch_size=[len(keys)])

    def kv_clear(self, keys, partition_id):
        self.cleared += list(keys)


@pytest.fixture
def sampled(monkeypatch):
    rows = {f"u{p}_{s}_{i}": (("meta", "reasoning")[i], [1, 1, 0] if i == 0 else [0, 1]) for p in range(2) for s in range(2) for i in range(2)}  # fmt: skip
    fake = FakeTQ(rows)
    monkeypatch.setattr(router_module, "tq", fake)
    batch = KVBatchMeta(partition_id="train", keys=list(rows), tags=[{"k": k} for k in rows])
    calls = []

    def sample(global_steps, partition_id, batch_size):
        calls.append(partition_id)
        return batch, {"m": 1}

    return RoleRouter(sample), fake, calls


def test_a_trained_role_gets_only_its_rows_and_the_frozen_roles_rows_are_dropped(sampled):
    router, fake, calls = sampled
    router.plan([RA])
    batch, metrics = router.sample(global_steps=1, partition_id="train", batch_size=2)
    assert all(k.endswith("_1") for k in batch.keys) and len(batch.keys) == 4 and metrics == {"m": 1}
    assert [t["k"] for t in batch.tags] == batch.keys  # tags follow their keys
    assert sorted(fake.cleared) == sorted(k for k in fake.rows if k.endswith("_0"))  # the MTA's rows, untrained
    assert router.stats["training/rema/meta/rows"] == 4 and router.stats["training/rema/untrained_rows"] == 4
    assert router.stats["training/rema/meta/action_token_share"] == pytest.approx(8 / 12)  # both roles counted


def test_both_roles_training_sample_once_and_each_gets_its_rows(sampled):
    router, fake, calls = sampled
    router.plan([META, RA])
    first, _ = router.sample(global_steps=1, partition_id="train", batch_size=2)
    second, metrics = router.sample(global_steps=1, partition_id="train", batch_size=2)
    assert calls == ["train"] and fake.cleared == [] and metrics == {}
    assert {k[-1] for k in first.keys} == {"0"} and {k[-1] for k in second.keys} == {"1"}
    router.sample(global_steps=1, partition_id="val", batch_size=2)  # validation passes straight through
    assert calls == ["train", "val"]
    with pytest.raises(RuntimeError, match="no role planned"):
        router.sample(global_steps=2, partition_id="train", batch_size=2)


def test_per_model_metrics_are_prefixed_by_role():
    update = {"actor/pg_loss": 0.5, "training/rema/optimizer_steps": 1.0, "timing_s/gen": 2.0}
    one = role_metrics(update, RA, keep_plain=True)
    assert one["training/rema/reasoning/actor/pg_loss"] == 0.5 and one["actor/pg_loss"] == 0.5
    assert one["training/rema/reasoning/optimizer_steps"] == 1.0 and one["timing_s/gen"] == 2.0
    two = role_metrics(update, RA, keep_plain=False)
    assert "actor/pg_loss" not in two and two["timing_s/gen"] == 2.0


# -- client and server names ----------------------------------------------------------------------------------------


class Client:
    def __init__(self, name):
        self.name = name


def test_client_routes_by_role_and_travels_to_ray_actors():
    routed = RoleRoutingClient(OmegaConf.create({}), {"meta": Client("m"), "reasoning": Client("r")})
    assert routed.for_role(META).name == "m" and routed.for_role("reasoning").name == "r"
    assert pickle.loads(pickle.dumps(routed)).for_role(RA).name == "r"
    with pytest.raises(ValueError, match=r"missing \['reasoning'\]"):
        RoleRoutingClient(OmegaConf.create({}), {"meta": Client("m")})


def test_the_partner_servers_and_sockets_get_the_roles_name_at_both_ends():
    handle = "ipc:///tmp/rl-colocate-zmq-01000000-replica-0-rank-0.sock"
    assert role_zmq_handle(handle, RA) == "ipc:///tmp/rl-colocate-zmq-01000000-reasoning-replica-0-rank-0.sock"
    assert server_prefix(RA) == "vllm_reasoning_" != "vllm_"
    with pytest.raises(RuntimeError, match="socket path changed"):
        role_zmq_handle("ipc:///tmp/other.sock", RA)
    # The veRL code the renames rely on still has the expected shape (vLLM's modules import on the CPU platform).
    result = run_python(
        "import verl_rema.register; from verl_rema.separate.servers import check_upstream; check_upstream(); print('ok')",
        env={"VERL_PLATFORM": "cpu"},
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
