"""The judge recipes as written: the paper's settings (arXiv 2503.09501 App. D.1, D.1.4), valid for an 8-GPU node
(veRL's validation and verl-rema's start-up checks), the judge reward's kwargs strictly typed, on the CPU preset too."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config

from tests.unit.test_judge_data import RB_SAMPLE
from verl_rema.checks import check_config, data_parallel_size, rows_per_episode
from verl_rema.data.judge import build_rewardbench970
from verl_rema.rewards.judge_reward import JudgeRewardKwargs
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import row_fields_of

JUDGE_RECIPES = {"rema_judge": "judge_singleturn", "vrp_judge": "judge_vrp", "mrp_judge": "judge_mrp"}
GPU_NODE = ["trainer.n_gpus_per_node=8", "trainer.nnodes=1", "trainer.device=cuda"]


@pytest.fixture(scope="module")
def judge_data(tmp_path_factory) -> dict[str, str]:
    result = build_rewardbench970(RB_SAMPLE, test_size=8)
    out = tmp_path_factory.mktemp("judge_data")
    paths = result.write(out)
    return {"train": str(paths[0]), "test": str(paths[1])}


def _compose(recipe: str, overrides: list[str], data: dict[str, str]):
    paths = ["actor_rollout_ref.model.path=/models/llama", f"data.train_files={data['train']}",
             f"data.val_files={data['test']}"]  # fmt: skip
    with initialize_config_module(config_module="verl_rema_configs", version_base=None):
        config = compose(config_name="verl_rema", overrides=[f"+recipe={recipe}", *overrides, *paths])
    OmegaConf.resolve(config)
    return config


def _reward_kwargs(config) -> JudgeRewardKwargs:
    """What verl_rema.checks should call for the judge reward at start-up (strict: a typo is an error)."""
    kwargs = OmegaConf.to_container(config.reward.custom_reward_function.reward_kwargs, resolve=True)
    return JudgeRewardKwargs.parse(kwargs, strict=True)


@pytest.mark.parametrize("recipe", sorted(JUDGE_RECIPES))
def test_judge_recipe_validates_for_an_8_gpu_node_with_the_papers_settings(recipe, judge_data):
    config = _compose(recipe, GPU_NODE, judge_data)
    check_config(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    settings = ReMARolloutConfig.from_config(config.rema.rollout)
    assert settings.prompts.name == JUDGE_RECIPES[recipe] and settings.max_turns == 1
    assert config.reward.custom_reward_function.path == "pkg://verl_rema.rewards.judge_reward"
    assert _reward_kwargs(config) == JudgeRewardKwargs(mask_unfinished_reward=False)
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    # App. D.1: REINFORCE++, rollout batch 1000 x 4 samples, T 1.0, top-p 1.0, lr 5e-7, clip 0.2, 2048 tokens,
    # KL 1e-2; D.1.4 (Llama3.1-8B-Instruct): ReMA 2 training episodes, VRP_RL / MRP_RL 4.
    assert config.algorithm.adv_estimator == "reinforce_plus_plus"
    assert (config.data.train_batch_size, rollout.n, rollout.temperature, rollout.top_p) == (1000, 4, 1.0, 1.0)
    assert actor.optim.lr == pytest.approx(5e-7) and actor.clip_ratio == 0.2
    assert actor.use_kl_loss and actor.kl_loss_coef == pytest.approx(0.01)
    assert settings.message_tokens(settings.roles[0]) == 2048 == config.data.max_response_length
    assert config.trainer.total_epochs == (2 if recipe == "rema_judge" else 4)
    assert config.trainer.total_training_steps is None
    # optimiser steps per rollout and rows per mini-batch on 8 GPUs
    steps = config.data.train_batch_size // actor.ppo_mini_batch_size
    rows = actor.ppo_mini_batch_size * rollout.n * rows_per_episode(config)
    assert rows % data_parallel_size(config) == 0
    if recipe == "rema_judge":
        assert (steps, actor.ppo_mini_batch_size * rollout.n, rows) == (8, 500, 1000)  # 500 samples per role
    else:
        assert (steps, rows) == (10, 400)  # named deviation: 500 rows do not split over 8 ranks


def test_judge_recipes_run_on_the_cpu_preset_and_read_the_builders_rows(judge_data):
    config = _compose("rema_judge", ["+preset=cpu"], judge_data)
    check_config(config)
    assert _reward_kwargs(config).num_procs == 1  # the preset sizes the math pool; the judge reward accepts it
    settings = ReMARolloutConfig.from_config(config.rema.rollout)
    row = pd.read_parquet(config.data.train_files).iloc[0].to_dict()  # as veRL's dataset reads the file
    fields = row_fields_of(row, settings.prompts.row_fields)
    assert fields == {"response_a": row["extra_info"]["response_a"], "response_b": row["extra_info"]["response_b"]}


def test_a_typo_in_the_judge_reward_kwargs_is_named(judge_data):
    config = _compose("rema_judge", ["+reward.custom_reward_function.reward_kwargs.verdict=last"], judge_data)
    with pytest.raises(ValueError, match=r"reward_kwargs: unknown keys \['verdict'\]"):
        _reward_kwargs(config)
