"""Every recipe, as written, for a GPU node and on the CPU preset: veRL's own validation, veRL's config dataclasses,
verl-rema's start-up checks; natural overrides work or are refused before Ray starts with the key named.

No GPU is needed: the configs are composed, resolved and validated, nothing is started.
"""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config
from verl.workers.config import HFModelConfig, RolloutConfig

from tests.conftest import REPO_ROOT
from verl_rema.checks import check_config, data_parallel_size, rows_per_episode
from verl_rema.rollout.config import ReMARolloutConfig, total_tokens

RECIPES = sorted(p.stem for p in (REPO_ROOT / "hydra_configs" / "recipe").glob("[!_]*.yaml"))
BACKENDS = {  # the backend combinations the README names: rollout x training engine
    "vllm-fsdp": ["actor_rollout_ref.rollout.name=vllm", "actor_rollout_ref.actor.strategy=fsdp"],
    "vllm-fsdp2": ["actor_rollout_ref.rollout.name=vllm", "actor_rollout_ref.actor.strategy=fsdp2"],
    "sglang-fsdp": ["actor_rollout_ref.rollout.name=sglang", "actor_rollout_ref.actor.strategy=fsdp"],
    "sglang-fsdp2": ["actor_rollout_ref.rollout.name=sglang", "actor_rollout_ref.actor.strategy=fsdp2"],
    "vllm-megatron": ["actor_rollout_ref.rollout.name=vllm", "model_engine=megatron"],
    "sglang-megatron": ["actor_rollout_ref.rollout.name=sglang", "model_engine=megatron"],
}
GPU_NODE = ["trainer.n_gpus_per_node=8", "trainer.nnodes=1", "trainer.device=cuda"]


def compose_config(overrides: list[str], embedded) -> OmegaConf:
    paths = [
        f"actor_rollout_ref.model.path={embedded.model}",
        f"data.train_files={embedded.train}",
        f"data.val_files={embedded.val}",
    ]
    with initialize_config_module(config_module="verl_rema_configs", version_base=None):
        config = compose(config_name="verl_rema", overrides=[*overrides, *paths])
    OmegaConf.resolve(config)
    return config


def validate_like_the_entry_point(config) -> None:
    """What ``main_ppo.run`` does before Ray starts, plus the dataclasses veRL's workers build from the config."""
    check_config(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    omega_conf_to_dataclass(config.actor_rollout_ref.rollout, RolloutConfig)
    omega_conf_to_dataclass(config.actor_rollout_ref.model, HFModelConfig)
    omega_conf_to_dataclass(config.algorithm)
    if need_reference_policy(config):  # as veRL's ActorRolloutRefWorker.init_model renames the ref's keys
        ref = OmegaConf.to_container(config.actor_rollout_ref.ref)
        ref["ppo_mini_batch_size"] = config.actor_rollout_ref.actor.ppo_mini_batch_size
        for old, new in (
            ("log_prob_micro_batch_size", "ppo_micro_batch_size"),
            ("log_prob_micro_batch_size_per_gpu", "ppo_micro_batch_size_per_gpu"),
            ("log_prob_use_dynamic_bsz", "use_dynamic_bsz"),
            ("log_prob_max_token_len_per_gpu", "ppo_max_token_len_per_gpu"),
        ):
            ref[new] = ref.pop(old, None)
        omega_conf_to_dataclass(OmegaConf.create(ref))


@pytest.mark.parametrize(("recipe", "backend"), itertools.product(RECIPES, BACKENDS))
def test_recipe_as_written_validates_for_an_8_gpu_node(recipe, backend, embedded):
    config = compose_config([f"+recipe={recipe}", *BACKENDS[backend], *GPU_NODE], embedded)
    validate_like_the_entry_point(config)
    settings = ReMARolloutConfig.from_config(config.rema.rollout)
    assert config.actor_rollout_ref.rollout.max_model_len == settings.row_tokens(total_tokens(config))
    assert config.actor_rollout_ref.actor.use_dynamic_bsz  # micro-batches by token budget: any batch fits


def test_two_nodes_validate_on_veRLs_own_multi_node_support(embedded):
    two_nodes = ["trainer.n_gpus_per_node=8", "trainer.nnodes=2", "+ray_kwargs.ray_init.address=auto"]
    config = compose_config(["+recipe=rema_multiturn", *two_nodes], embedded)
    validate_like_the_entry_point(config)
    assert data_parallel_size(config) == 16


def test_reference_multiturn_run_makes_four_optimiser_steps_per_step(embedded):
    config = compose_config(["+recipe=rema_multiturn", *GPU_NODE], embedded)
    actor = config.actor_rollout_ref.actor
    assert rows_per_episode(config) == 2
    assert actor.ppo_epochs * config.data.train_batch_size // actor.ppo_mini_batch_size == 4  # 128 / 32
    assert config.actor_rollout_ref.rollout.max_model_len == 4096 + 512  # the reference's cap + one message


@pytest.mark.parametrize(
    ("recipe", "n", "batch"), itertools.product(RECIPES, (1, 3, 16), (1, 6, 128)), ids=lambda v: str(v)
)
def test_rollout_n_and_batch_size_overrides_work_on_the_cpu_preset(recipe, n, batch, embedded):
    overrides = [
        f"+recipe={recipe}",
        "+preset=cpu",
        f"actor_rollout_ref.rollout.n={n}",
        f"data.train_batch_size={batch}",
    ]
    validate_like_the_entry_point(compose_config(overrides, embedded))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.train_batch_size=100"], r"train_batch_size=100 is not a multiple of .*ppo_mini_batch_size=32"),
        (["actor_rollout_ref.rollout.max_model_len=4096"], r"max_model_len=4096 is shorter than .* \(4608 tokens"),
        (["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=2048"], r"ppo_max_token_len_per_gpu=2048 is smaller"),
        (
            ["actor_rollout_ref.actor.use_dynamic_bsz=false", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3"],
            r"ppo_micro_batch_size_per_gpu=3 does not divide the 128 rows .*use_dynamic_bsz=true",
        ),
        (
            [
                "actor_rollout_ref.actor.ppo_mini_batch_size=3",
                "data.train_batch_size=6",
                "actor_rollout_ref.rollout.n=3",
            ],
            r"3 prompts x rollout.n=3 x 2 row\(s\) per episode = 18 rows does not split over 8",
        ),
    ],
)
def test_invalid_combinations_are_refused_with_the_keys_named(overrides, message, embedded):
    config = compose_config(["+recipe=rema_multiturn", *GPU_NODE, *overrides], embedded)
    with pytest.raises(ValueError, match=message):
        check_config(config)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_evaluates_as_written(recipe, embedded, tmp_path):
    """``python -m verl_rema.evaluate +recipe=NAME``: the validation-only run it makes passes the same checks (a
    separate-models recipe evaluates both role models, an Algorithm 1 recipe plays plain episodes)."""
    from verl_rema.evaluate.__main__ import EvalSettings, apply

    config = compose_config([f"+recipe={recipe}", *GPU_NODE], embedded)
    apply(config, EvalSettings(checkpoint="ck/global_step_4"), str(embedded.val), tmp_path)
    validate_like_the_entry_point(config)
    separate = OmegaConf.select(config, "rema.models") is not None
    assert config.trainer.v1.trainer_mode == ("rema_separate_eval" if separate else "rema_eval")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+reward.custom_reward_function.reward_kwargs.verdict_pik=last"], r"unknown keys \['verdict_pik'\]"),
        (["rema.rollout.prompt_set=singleturn"], r"the judge reward .* goes with a judge_\* prompt set"),
    ],
)
def test_judge_reward_kwargs_and_prompt_set_are_checked(overrides, message, embedded):
    config = compose_config(["+recipe=rema_judge", *GPU_NODE, *overrides], embedded)
    with pytest.raises(ValueError, match=message):
        check_config(config)


def test_math_reward_with_a_judge_prompt_set_is_refused(embedded):
    config = compose_config(
        ["+recipe=rema_singleturn", *GPU_NODE, "rema.rollout.prompt_set=judge_singleturn"], embedded
    )
    with pytest.raises(ValueError, match="the math reward with the others"):
        check_config(config)


@pytest.mark.parametrize(("recipe", "toy"), [("rema_multiturn", "rema"), ("vrp_grpo", "cot")])
def test_the_demo_runs_validate_for_an_8_gpu_node(recipe, toy, embedded):
    """`make demo` (`+toy=`) on a GPU node: the toy sizes (32 prompts x n=8) pass veRL's validation as written."""
    config = compose_config(
        [f"+recipe={recipe}", f"+toy={toy}", *GPU_NODE, "trainer.total_training_steps=10"], embedded
    )
    validate_like_the_entry_point(config)
    assert (config.data.train_batch_size, config.actor_rollout_ref.rollout.n) == (32, 8)


@pytest.mark.parametrize(("recipe", "toy"), [("rema_multiturn", "rema"), ("vrp_grpo", "cot")])
def test_the_demo_runs_take_another_batch_and_n_on_a_gpu_node(recipe, toy, embedded):
    overrides = [
        f"+recipe={recipe}",
        f"+toy={toy}",
        *GPU_NODE,
        "actor_rollout_ref.rollout.n=6",
        "data.train_batch_size=24",
    ]
    config = compose_config(overrides, embedded)
    validate_like_the_entry_point(config)
    assert config.actor_rollout_ref.actor.ppo_mini_batch_size == 24  # one optimiser step per step
