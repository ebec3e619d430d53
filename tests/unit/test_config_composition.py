"""The entry config is veRL's own ppo_trainer plus verl-rema's groups, with no copy of veRL's YAML."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tests.conftest import REPO_ROOT, run_python


def _compose(name: str, overrides: list[str], module: str = "verl_rema_configs"):
    with initialize_config_module(config_module=module, version_base=None):
        return compose(config_name=name, overrides=overrides)


def test_no_copy_of_verls_yaml_ships_with_the_project():
    shipped = {p.name for p in (REPO_ROOT / "hydra_configs").rglob("*.yaml")}
    assert "ppo_trainer.yaml" not in shipped and not any(n.startswith("_generated") for n in shipped)


def test_entry_config_is_verls_ppo_trainer_plus_the_embedded_default():
    ours = OmegaConf.to_container(_compose("verl_rema", []), resolve=False)
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
