"""The entry config is veRL's own ppo_trainer plus verl-rema's groups, with no copy of veRL's YAML."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tests.conftest import REPO_ROOT, run_python
from verl_rema.rollout.config import ReMARolloutConfig


def _compose(name: str, overrides: list[str], module: str = "verl_rema_configs"):
    with initialize_config_module(config_module=module, version_base=None):
        return compose(config_name=name, overrides=overrides)


def test_no_copy_of_verls_yaml_ships_with_the_project():
    shipped = {p.name for p in (REPO_ROOT / "hydra_configs").rglob("*.yaml")}
    assert "ppo_trainer.yaml" not in shipped and not any(n.startswith("_generated") for n in shipped)


def test_entry_config_is_verls_ppo_trainer_plus_the_embedded_default():
    ours = OmegaConf.to_container(_compose("verl_rema", []), resolve=False)
    # plus ReMA's own block, whose defaults are its dataclass's (one source of defaults)
    rema = ours.pop("rema")
    assert rema["rollout"] == OmegaConf.to_container(OmegaConf.structured(ReMARolloutConfig))
    assert rema["models"] is None  # one model plays both roles unless a model per role is named
    verl = OmegaConf.to_container(_compose("ppo_trainer", [], module="verl.trainer.config"), resolve=False)
    assert ours["actor_rollout_ref"]["model"].pop("path") == "${rema_embedded:model}"
    assert ours["data"].pop("train_files") == "${rema_embedded:train}"
    assert ours["data"].pop("val_files") == "${rema_embedded:val}"
    verl["actor_rollout_ref"]["model"].pop("path")
    verl["data"].pop("train_files")
    verl["data"].pop("val_files")
    assert ours == verl


def test_recipe_then_preset_then_cli_overrides_win_in_that_order():
    cfg = _compose("verl_rema", ["+recipe=vrp_grpo", "+preset=cpu", "actor_rollout_ref.rollout.n=3"])
    assert cfg.algorithm.adv_estimator == "rema_grpo"  # recipe (common part)
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "rema"  # recipe
    assert cfg.rema.rollout.prompt_set == "cot"
    assert cfg.data.train_batch_size == 16  # preset shrinks the recipe's 128
    assert cfg.actor_rollout_ref.rollout.n == 3  # command line beats both
    assert cfg.trainer.device == "cpu"
    assert cfg.rema.rollout.max_tokens_per_message == 48  # preset shrinks the recipe's 2048


def test_cpu_preset_engine_settings_reach_veRLs_vllm_kwargs_and_stay_overridable():
    """The CPU preset's 32-token KV blocks sit where veRL's vLLM server reads its engine kwargs; a GPU run (no
    preset) keeps vLLM's own default; the command line still wins."""
    cfg = _compose("verl_rema", ["+recipe=rema_multiturn", "+preset=cpu"])
    assert cfg.actor_rollout_ref.rollout.engine_kwargs.vllm.block_size == 32
    assert cfg.trainer.v1.sampler.sampler_kwargs.poll_interval == 0.1
    assert "block_size" not in _compose("verl_rema", ["+recipe=rema_multiturn"]).actor_rollout_ref.rollout.engine_kwargs.vllm  # fmt: skip
    cfg = _compose("verl_rema", ["+recipe=rema_multiturn", "+preset=cpu", "actor_rollout_ref.rollout.engine_kwargs.vllm.block_size=128"])  # fmt: skip
    assert cfg.actor_rollout_ref.rollout.engine_kwargs.vllm.block_size == 128


def test_recipe_alone_keeps_reference_sizes():
    cfg = _compose("verl_rema", ["+recipe=vrp_grpo"])
    assert cfg.data.train_batch_size == 128 and cfg.actor_rollout_ref.rollout.n == 16
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(1e-6)


def test_unknown_veRL_key_is_rejected_like_in_veRL():
    with pytest.raises(Exception, match="no_such_key"):
        _compose("verl_rema", ["+recipe=vrp_grpo", "trainer.no_such_key=1"])


def test_cfg_job_prints_the_composition_without_building_anything(tmp_path):
    result = run_python(
        "import sys; sys.argv=['main_ppo','+recipe=vrp_grpo','--cfg','job']; from verl_rema.main_ppo import cli; cli()",
        env={"VERL_REMA_CACHE": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "default_agent_loop: rema" in result.stdout
    assert "${rema_embedded:model}" in result.stdout
    assert "device: cpu" in result.stdout  # no CUDA here: the cpu preset was added
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rema.rollout.max_turn=3", "rema.rollout.max_turn"),  # a typo
        ("rema.rollout.max_turns=abc", "rema.rollout.max_turns"),  # a wrong type
        ("rema.rollout.stop_when_truncated=maybe", "rema.rollout.stop_when_truncated"),
    ],
)
def test_rema_rollout_typos_and_bad_types_fail_at_composition_with_the_full_key(override, message):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as error:
        _compose("verl_rema", ["+recipe=rema_multiturn", override])
    assert message in str(error.value) + str(error.value.__cause__)


def test_rema_rollout_bad_values_fail_when_the_block_is_instantiated_with_the_full_key():
    for override, message in (
        ("rema.rollout.max_turns=0", "rema.rollout.max_turns must be a positive integer"),
        ("rema.rollout.max_tokens_per_message={meta: 0}", "rema.rollout.max_tokens_per_message.meta"),
        ("rema.rollout.prompt_set=nope", "unknown prompt set 'nope'"),
    ):
        config = _compose("verl_rema", ["+recipe=rema_multiturn", override])
        with pytest.raises(ValueError, match=message):
            ReMARolloutConfig.from_config(config.rema.rollout)


def test_start_up_check_names_bad_reward_kwargs_and_rollout_values():
    from verl_rema.checks import check_config

    check_config(_compose("verl_rema", ["+recipe=vrp_grpo"]))  # every recipe as written passes
    check_config(_compose("verl_rema", ["+recipe=rema_multiturn"]))
    for override, message in (
        ("+reward.custom_reward_function.reward_kwargs.timeout=3", r"reward_kwargs: unknown keys \['timeout'\]"),
        ("+reward.custom_reward_function.reward_kwargs.timeout_s=-1", "reward_kwargs.timeout_s must be > 0"),
        ("reward.custom_reward_function.reward_kwargs.mask_unfinished_reward=maybe", "mask_unfinished_reward"),
        ("rema.rollout.max_context_tokens={meta: -3}", "rema.rollout.max_context_tokens.meta"),
    ):
        with pytest.raises(ValueError, match=message):
            check_config(_compose("verl_rema", ["+recipe=rema_multiturn", override]))


@pytest.mark.parametrize("recipe, toy, batch, n", [("rema_multiturn", "rema", 32, 8), ("vrp_grpo", "cot", 32, 8)])
def test_the_toy_runs_keep_their_sizes_on_the_cpu_preset(recipe, toy, batch, n):
    from verl_rema.device import select_device

    config = _compose("verl_rema", select_device([f"+recipe={recipe}", f"+toy={toy}"], cuda_available=False))
    assert (config.data.train_batch_size, config.actor_rollout_ref.rollout.n) == (batch, n)
    raw = OmegaConf.to_container(config, resolve=False)  # unresolved: nothing is built
    assert raw["actor_rollout_ref"]["model"]["path"] == f"${{rema_toy:{toy}}}"
    assert raw["data"]["val_files"] == "${rema_embedded:val,0,toy}" and raw["trainer"]["device"] == "cpu"
