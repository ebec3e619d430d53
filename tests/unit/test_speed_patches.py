"""The two speed patches (patches/agent_loop_instantiate.py, patches/replay_poll.py): they apply on every platform,
do what they claim, change nothing outside their case, and the upstream code they adapt still has its shape."""

from __future__ import annotations

import inspect
import json

import hydra
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from verl.experimental.agent_loop import agent_loop
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync
from verl.trainer.ppo.v1.trainer_base import PPOTrainer
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl_rema_patches import agent_loop_instantiate, replay_poll

from tests.conftest import run_python
from tests.unit.rollout_harness import TEMPLATES, make_tokenizer
from verl_rema.rollout.rema_agent_loop import AGENT_NAME, ReMAAgentLoop
from verl_rema.rollout.standalone import trainer_config


def test_both_apply_on_every_platform():
    code = (
        "import json, verl, verl_rema_patches as p; from verl.experimental.agent_loop import agent_loop as a; "
        "print(json.dumps({'applied': p.APPLIED, 'direct': a.hydra.utils.instantiate.__code__.co_filename}))"
    )
    result = run_python(code, env={"VERL_PLATFORM": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {agent_loop_instantiate.NAME, replay_poll.NAME} <= set(report["applied"])
    assert report["direct"] == agent_loop_instantiate.__file__


# --- agent_loop_instantiate ----------------------------------------------------------------------------------


def test_upstream_builds_each_episodes_loop_with_hydra_from_a_target_only_entry():
    source = inspect.getsource(agent_loop.AgentLoopWorker._run_agent_loop)
    assert "hydra.utils.instantiate(" in source and "config=agent_loop_config" in source
    assert 'agent_loop_registry[agent_name] = {"_target_": fqdn}' in inspect.getsource(agent_loop.register)
    assert _agent_loop_registry[AGENT_NAME] == {"_target_": f"{ReMAAgentLoop.__module__}.ReMAAgentLoop"}
    # In this process veRL's plugin loading applied the patch: the module's hydra is ours, Hydra's behind it.
    assert agent_loop.hydra.utils.instantiate.__wrapped__ is hydra.utils.instantiate
    assert agent_loop.hydra.utils.get_class is hydra.utils.get_class  # everything else is Hydra's


def _worker_kwargs(config, tokenizer):
    """The keyword arguments AgentLoopWorker._run_agent_loop passes."""
    return dict(
        trainer_config=DictConfigWrap(config=config),
        server_manager=object(),
        tokenizer=tokenizer,
        processor=None,
        hf_model_type="qwen2",
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )


def test_direct_path_builds_what_hydra_builds():
    tokenizer = make_tokenizer(TEMPLATES["chatml"])
    config = trainer_config({"max_turns": 2})
    kwargs = _worker_kwargs(config, tokenizer)
    entry = _agent_loop_registry[AGENT_NAME]
    assert agent_loop_instantiate.direct_target(entry, (), kwargs) is ReMAAgentLoop
    direct = agent_loop.hydra.utils.instantiate(config=entry, **kwargs)
    via_hydra = hydra.utils.instantiate(config=entry, **kwargs)
    assert type(direct) is type(via_hydra) is ReMAAgentLoop
    for name in ("config", "server_manager", "tokenizer", "processor", "dataset_cls", "data_config"):
        assert getattr(direct, name) is getattr(via_hydra, name), name
    assert direct.settings == via_hydra.settings and direct._stop_token_ids == via_hydra._stop_token_ids


@pytest.mark.parametrize(
    "case",
    ["extra key", "omegaconf entry", "not an agent loop", "unknown target", "positional", "mapping value"],
)
def test_anything_else_goes_to_hydra(case):
    kwargs = {"tokenizer": object(), "hf_model_type": "qwen2"}
    entry = {"_target_": f"{ReMAAgentLoop.__module__}.ReMAAgentLoop"}
    args: tuple = ()
    if case == "extra key":
        entry = {**entry, "name": "rema"}
    elif case == "omegaconf entry":
        entry = OmegaConf.create(entry)
    elif case == "not an agent loop":
        entry = {"_target_": "collections.OrderedDict"}
    elif case == "unknown target":
        entry = {"_target_": "verl_rema.no_such_module.Loop"}
    elif case == "positional":
        args = (1,)
    else:
        kwargs["tools"] = {"a": 1}
    assert agent_loop_instantiate.direct_target(entry, args, kwargs) is None


# --- replay_poll ---------------------------------------------------------------------------------------------


def test_upstream_polls_on_a_fixed_interval_the_trainer_never_sets():
    assert inspect.signature(ReplayBuffer.__init__.__wrapped__).parameters["poll_interval"].default == 2.0
    assert "time.sleep(self.poll_interval)" in inspect.getsource(ReplayBuffer._wait_for_next_poll)
    build = inspect.getsource(PPOTrainer._build_replay_buffer)
    assert "sampler_kwargs=sampler_config.sampler_kwargs" in build and "poll_interval" not in build
    sample = inspect.getsource(ReplayBuffer.sample)
    assert "self._wait_for_next_poll(" in sample and "self._sync_metadata_from_transfer_queue()" in sample


def _buffer(cls=ReplayBuffer, **kwargs):
    defaults = dict(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs=OmegaConf.create({}),
    )
    return cls(**{**defaults, **kwargs})


def test_poll_interval_comes_from_sampler_kwargs_when_set():
    assert _buffer().poll_interval == 2.0, "without the key: veRL's default"
    assert _buffer(sampler_kwargs=OmegaConf.create({"poll_interval": 0.1})).poll_interval == 0.1
    assert _buffer(ReplayBufferAsync, sampler_kwargs={"poll_interval": 0.25}).poll_interval == 0.25
    assert _buffer(sampler_kwargs={"poll_interval": 0.1}, poll_interval=3.0).poll_interval == 3.0, "explicit wins"
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        _buffer(sampler_kwargs={"poll_interval": 0})


def test_cpu_preset_sets_a_short_poll_interval():
    with initialize_config_module(config_module="verl_rema_configs", version_base=None):
        cfg = compose(config_name="verl_rema", overrides=["+recipe=rema_multiturn", "+preset=cpu"])
    interval = replay_poll.configured_interval(cfg.trainer.v1.sampler.sampler_kwargs)
    assert interval is not None and interval <= 0.25
