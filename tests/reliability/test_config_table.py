"""Config validation drill (issue 16, item 3): every ``rema.*`` key and every ReMA-specific loss, estimator, reward
and trainer knob, given a wrong type, an out-of-range value, an unknown key or an incompatible combination, fails
before anything starts, at composition or in the entry point's start-up checks, with the full key path and what
is allowed.

How a case is composed. Hydra re-parses ~30 YAML files per composition (~1.5 s); the table has ~100 cases. Each
recipe is composed once (the command line's defaults: recipe, GPU node, the embedded model and data), and a case's
overrides are applied to a copy with Hydra's own override machinery (``ConfigLoaderImpl._apply_overrides_to_config``
on the struct-mode config: the step ``compose`` runs after the defaults list), then resolved as
``tests/unit/test_recipes.py::compose_config`` does. ``test_fast_path_agrees_with_a_real_composition`` runs a sample
of cases through a real composition and checks the same failure. A case that changes the defaults list
(``model_engine=megatron``, ``+preset=cpu``) gets a base composed for real with that choice.
"""

from __future__ import annotations

import copy
import re

import pytest
from hydra import compose, initialize_config_module
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config
from verl.workers.config import HFModelConfig, RolloutConfig

from verl_rema.checks import check_config
from verl_rema.knob_checks import check_override_keys

GPU_NODE = ["trainer.n_gpus_per_node=8", "trainer.nnodes=1", "trainer.device=cuda"]
KW = "reward.custom_reward_function.reward_kwargs"
PL = "actor_rollout_ref.actor.policy_loss"
RO = "rema.rollout"
COMPOSE, START = "compose", "start-up"
DEFAULTS_LIST_GROUPS = ("preset", "model_engine")  # overrides that choose configs rather than set values

# (recipe, overrides, stage, the full key the message names, what the message says is allowed)
# fmt: off
CASES: list[tuple[str, list[str], str, str, str]] = [
    # rema.rollout: types (composition, the dataclass schema), ranges and combinations (the block's checks)
    ("rema_multiturn", [f"{RO}.max_turns=abc"], COMPOSE, f"{RO}.max_turns", "Integer"),
    ("rema_multiturn", [f"{RO}.max_turns=1.5"], COMPOSE, f"{RO}.max_turns", "Integer"),
    ("rema_multiturn", [f"{RO}.max_turns=0"], COMPOSE, f"{RO}.max_turns", "positive integer"),
    ("rema_multiturn", [f"{RO}.max_turns=-3"], COMPOSE, f"{RO}.max_turns", "positive integer"),
    ("rema_multiturn", [f"{RO}.max_turn=3"], COMPOSE, f"{RO}.max_turn", "ReMARolloutConfig"),
    ("rema_multiturn", [f"+{RO}.foo=1"], COMPOSE, f"{RO}.foo", r"allowed: \[.*'max_turns'"),
    ("rema_multiturn", [f"{RO}.prompt_set=nosuch"], COMPOSE, f"{RO}.prompt_set", r"shipped sets \['cot'"),
    ("rema_multiturn", [f"{RO}.prompt_set=3"], COMPOSE, f"{RO}.prompt_set", "a name, a YAML path or a mapping"),
    ("rema_multiturn", [f"{RO}.max_tokens_per_message=0"], COMPOSE, f"{RO}.max_tokens_per_message", "positive"),
    ("rema_multiturn", [f"{RO}.max_tokens_per_message=abc"], COMPOSE, f"{RO}.max_tokens_per_message", "positive"),
    ("rema_multiturn", [f"{RO}.max_tokens_per_message={{mta: 5}}"], COMPOSE, f"{RO}.max_tokens_per_message", r"\['meta', 'reasoning'\]"),
    ("rema_multiturn", [f"{RO}.max_tokens_per_message={{meta: 0}}"], COMPOSE, f"{RO}.max_tokens_per_message.meta", "positive"),
    ("rema_multiturn", [f"{RO}.max_context_tokens=-1"], COMPOSE, f"{RO}.max_context_tokens", "positive"),
    ("rema_multiturn", [f"{RO}.max_context_tokens={{reasoning: abc}}"], COMPOSE, f"{RO}.max_context_tokens.reasoning", "positive"),
    ("rema_multiturn", [f"{RO}.strict_context_cap=maybe"], COMPOSE, f"{RO}.strict_context_cap", "bool"),
    ("rema_multiturn", [f"{RO}.stop_when_truncated=maybe"], COMPOSE, f"{RO}.stop_when_truncated", "bool"),
    ("rema_multiturn", [f"{RO}.finish_token=[a]"], COMPOSE, f"{RO}.finish_token", "string"),
    ("vrp_grpo", [f"{RO}.finish_token=DONE"], COMPOSE, f"{RO}.finish_token", "meta role"),
    ("rema_multiturn", ["actor_rollout_ref.rollout.max_model_len=4096"], START, "actor_rollout_ref.rollout.max_model_len", "4608"),
    ("rema_multiturn", ["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=2048"], START, "ppo_max_token_len_per_gpu", ">= 4608"),
    # rema.schedule and rema.algorithm1: schema at composition, values at start-up whatever the mode
    ("rema_multiturn_separate", ["rema.schedule.switch_freq=abc"], COMPOSE, "rema.schedule.switch_freq", "Integer"),
    ("rema_multiturn_separate", ["rema.schedule.first_rol=meta"], COMPOSE, "rema.schedule.first_rol", "ScheduleConfig"),
    ("rema_multiturn_separate", ["rema.schedule.train_roles=meta"], COMPOSE, "rema.schedule.train_roles", "ListConfig"),
    ("rema_multiturn_separate", ["rema.schedule.switch_freq=-1"], START, "rema.schedule.switch_freq", ">= 0"),
    ("rema_multiturn_separate", ["rema.schedule.train_roles=[mta]"], START, "rema.schedule.train_roles", r"\['meta', 'reasoning'\]"),
    ("rema_multiturn_separate", ["rema.schedule.train_roles=[meta]", "rema.schedule.first_role=reasoning"], START, "rema.schedule.first_role", r"train_roles \['meta'\]"),
    ("rema_multiturn", ["rema.schedule.switch_freq=-1"], START, "rema.schedule.switch_freq", ">= 0"),
    ("rema_singleturn_paper", ["rema.algorithm1.epoch=2"], COMPOSE, "rema.algorithm1.epoch", "Algorithm1Config"),
    ("rema_singleturn_paper", ["rema.algorithm1.iterations=abc"], COMPOSE, "rema.algorithm1.iterations", "Integer"),
    ("rema_singleturn_paper", ["rema.algorithm1.band=abc"], COMPOSE, "rema.algorithm1.band", "ListConfig"),
    ("rema_singleturn_paper", ["rema.algorithm1.iterations=0"], START, "rema.algorithm1.iterations", "positive"),
    ("rema_singleturn_paper", ["rema.algorithm1.epochs=0"], START, "rema.algorithm1.epochs", "positive"),
    ("rema_singleturn_paper", ["rema.algorithm1.band=[0.9,0.1]"], START, "rema.algorithm1.band", "lo <= hi <= 1"),
    ("rema_singleturn_paper", ["rema.algorithm1.band=[0.2]"], START, "rema.algorithm1.band", r"\[lo, hi\]"),
    ("rema_singleturn_paper", ["rema.algorithm1.filter_questions=-1"], START, "rema.algorithm1.filter_questions", ">= 0"),
    ("rema_singleturn_paper", [f"{RO}.max_turns=2"], START, f"{RO}.max_turns", "must be 1"),
    ("rema_multiturn", ["rema.algorithm1.band=[0.9,0.1]"], START, "rema.algorithm1.band", "lo <= hi"),
    # rema.models: a model per role
    ("rema_multiturn", ["+rema.models.meta={}"], START, "rema.models", "rema_separate"),
    ("rema_multiturn_separate", ["+rema.models.mta={}"], START, "rema.models", r"\['meta', 'reasoning'\]"),
    ("rema_multiturn_separate", ["+rema.models.reasoning.model.pathx=1"], START, "rema.models.reasoning", "model.pathx"),
    ("rema_multiturn_separate", ["trainer.v1.trainer_mode=rema_sync"], START, "trainer.v1.trainer_mode", "rema_separate"),
    ("rema_multiturn", ["trainer.v1.trainer_mode=rema_separate"], START, "rema.models", "rema_sync"),
    ("rema_multiturn", ["trainer.v1.trainer_mode=rema_algorithm1"], START, "rema.models", "rema_sync"),
    # the turn-level policy loss
    ("rema_multiturn", [f"{PL}.turn_ratio_mode=foo"], START, f"{PL}.turn_ratio_mode", "geometric"),
    ("rema_multiturn", [f"{PL}.turn_aggregation=foo"], START, f"{PL}.turn_aggregation", "trajectory"),
    ("rema_multiturn", [f"{PL}.turn_log_ratio_clip=0"], START, f"{PL}.turn_log_ratio_clip", "> 0"),
    ("rema_multiturn", [f"{PL}.turn_log_ratio_clip=abc"], START, f"{PL}.turn_log_ratio_clip", "a number"),
    ("rema_multiturn", [f"+{PL}.turn_clip_ratio_low=1.5"], START, f"{PL}.turn_clip_ratio_low", "< 1"),
    ("rema_multiturn", [f"+{PL}.turn_clip_ratio_low=abc"], START, f"{PL}.turn_clip_ratio_low", "a number"),
    ("rema_multiturn", [f"+{PL}.turn_clip_ratio_high=-0.1"], START, f"{PL}.turn_clip_ratio_high", ">= 0"),
    ("rema_multiturn", [f"+{PL}.turn_clip_ratio_c=0.5"], START, f"{PL}.turn_clip_ratio_c", "> 1"),
    ("rema_multiturn", [f"{PL}.turn_foo=1"], COMPOSE, f"{PL}.turn_foo", "not in struct"),
    ("rema_multiturn", [f"+{PL}.turn_foo=1"], START, f"{PL}.turn_foo", r"allowed: \[.*'turn_aggregation'"),
    ("vrp_grpo", [f"+{PL}.turn_aggregation=turn"], START, f"{PL}.turn_aggregation", "RemaTurnLossConfig"),
    ("rema_multiturn", [f"{PL}._target_=verl_rema.losses.config.Nosuch"], START, f"{PL}._target_", "not a policy-loss config class"),
    ("rema_multiturn", [f"{PL}.loss_mode=nosuch"], START, f"{PL}.loss_mode", r"allowed: \[.*'rema_turn'.*'vanilla'"),
    ("vrp_grpo", [f"{PL}.loss_mode=rema_turn"], START, f"{PL}.loss_mode", "loss_mode=vanilla"),
    ("rema_multiturn", [f"{RO}.prompt_set=cot"], START, f"{PL}.loss_mode", "loss_mode=vanilla"),
    ("rema_multiturn", [f"{PL}.turn_aggregation=turn", "model_engine=megatron"], START, f"{PL}.turn_aggregation", r"\['fsdp', 'fsdp2'\]"),
    # advantage estimators
    ("rema_multiturn", ["algorithm.adv_estimator=nosuch"], START, "algorithm.adv_estimator", r"allowed: \[.*'rema_grpo'.*'softrank'"),
    ("rema_multiturn", ["algorithm.adv_estimator=softrank", "+algorithm.softrank_temperature=-1"], START, "algorithm.softrank_temperature", ">= 0"),
    ("rema_multiturn", ["algorithm.adv_estimator=softrank", "+algorithm.softrank_temperature=abc"], START, "algorithm.softrank_temperature", "number"),
    ("rema_multiturn", ["algorithm.adv_estimator=softrank", "+algorithm.softrank_offset=0.7"], START, "algorithm.softrank_offset", r"\[0, 0.5\]"),
    ("rema_multiturn", ["algorithm.adv_estimator=softrank", "+algorithm.softrank_temprature=0.3"], START, "algorithm.softrank_temprature", r"allowed: \[.*'softrank_temperature'"),
    ("rema_multiturn", ["+algorithm.softrank_temperature=0.3"], START, "algorithm.softrank_temperature", "adv_estimator=softrank"),
    ("rema_multiturn", ["algorithm.norm_adv_by_std_in_grpo=abc"], START, "algorithm.norm_adv_by_std_in_grpo", "true or false"),
    ("vrp_grpo", ["actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent", "trainer.v1.trainer_mode=sync"], START, "algorithm.adv_estimator", "rema_sync"),
    # trainer and agent loop: what every recipe requires of veRL
    ("rema_multiturn", ["trainer.use_v1=false"], START, "trainer.use_v1", "allowed: true"),
    ("vrp_grpo", ["trainer.v1.trainer_mode=nosuch"], START, "trainer.v1.trainer_mode", r"allowed: \[.*'rema_sync'"),
    ("rema_multiturn", ["trainer.v1.trainer_mode=sync"], START, "trainer.v1.trainer_mode", r"allowed: \['rema_sync'"),
    ("rema_multiturn", ["actor_rollout_ref.rollout.agent.default_agent_loop=nosuch"], START, "default_agent_loop", r"allowed: \['rema'"),
    ("rema_multiturn", ["actor_rollout_ref.rollout.n=0"], START, "actor_rollout_ref.rollout.n", "positive integer"),
    ("rema_multiturn", ["data.train_batch_size=0"], START, "data.train_batch_size", "positive integer"),
    ("rema_multiturn", ["data.train_batch_size=abc"], START, "data.train_batch_size", "positive integer"),
    ("rema_multiturn", ["actor_rollout_ref.actor.ppo_mini_batch_size=0"], START, "ppo_mini_batch_size", "positive"),
    ("rema_multiturn", ["actor_rollout_ref.actor.ppo_epochs=0"], START, "actor_rollout_ref.actor.ppo_epochs", "positive"),
    ("rema_multiturn", ["data.train_batch_size=100"], START, "ppo_mini_batch_size", "divisor of 100"),
    # the math reward's kwargs
    ("rema_multiturn", [f"{KW}.timeout_s=3"], COMPOSE, f"{KW}.timeout_s", r"\+reward"),
    ("rema_multiturn", [f"+{KW}.timeout_s=0"], START, f"{KW}.timeout_s", "> 0"),
    ("rema_multiturn", [f"+{KW}.timeout_s=abc"], START, f"{KW}.timeout_s", "number of seconds"),
    ("rema_multiturn", [f"+{KW}.num_procs=0"], START, f"{KW}.num_procs", "positive integer or null"),
    ("rema_multiturn", [f"+{KW}.num_procs=1.5"], START, f"{KW}.num_procs", "positive integer or null"),
    ("rema_multiturn", [f"{KW}.mask_unfinished_reward=maybe"], START, f"{KW}.mask_unfinished_reward", "boolean"),
    ("rema_multiturn", [f"+{KW}.reward_mode=foo"], START, f"{KW}.reward_mode", r"[\[(]'binary', 'role'[\])]"),
    ("rema_multiturn", [f"+{KW}.reward_mode=role"], START, f"{KW}.reward_mode", "reward_mode=binary"),
    ("rema_multiturn", [f"+{KW}.mta_penalty=foo"], START, f"{KW}.mta_penalty", r"[\[(]'add', 'set'[\])]"),
    ("rema_multiturn", [f"+{KW}.mta_reward=foo"], START, f"{KW}.mta_reward", "consistency"),
    ("rema_multiturn", [f"+{KW}.timeoutt=3"], START, f"{KW}: unknown keys ['timeoutt']", r"known: \['timeout_s'"),
    ("rema_multiturn", ["reward.custom_reward_function.path=pkg://verl_rema.rewards.nosuch"], START, "reward.custom_reward_function.path", "cannot be loaded"),
    ("rema_multiturn", ["reward.custom_reward_function.name=nosuch"], START, "reward.custom_reward_function.name", "nosuch"),
    ("rema_multiturn", ["reward.custom_reward_function.path=pkg://verl_rema.rewards.judge_reward"], START, "reward.custom_reward_function.path", "judge_"),
    # the judge reward's kwargs
    ("rema_judge", [f"+{KW}.foo=3"], START, f"{KW}: unknown keys ['foo']", r"known: \['reward_mode'"),
    ("rema_judge", [f"{KW}.reward_mode=foo"], START, f"{KW}.reward_mode", r"\['binary', 'role'\]"),
    ("rema_judge", [f"{KW}.verdict_pick=foo"], START, f"{KW}.verdict_pick", "last"),
    ("rema_judge", [f"{KW}.reward_mode=role"], START, f"{KW}.reward_mode", "reward_mode=binary"),
]
# A valid neighbour of the knobs above: each must pass, so the checks are not broader than the rule.
VALID: list[tuple[str, list[str]]] = [
    ("rema_multiturn", ["algorithm.adv_estimator=softrank", "+algorithm.softrank_temperature=0", "+algorithm.softrank_offset=0.5"]),
    ("rema_multiturn", [f"{PL}.turn_aggregation=turn", f"+{PL}.turn_clip_ratio_low=0.1", f"+{PL}.turn_clip_ratio_c=1.5"]),
    ("rema_multiturn", [f"{PL}.loss_mode=vanilla", f"{RO}.prompt_set=cot"]),
    ("rema_multiturn", [f"{RO}.max_tokens_per_message={{meta: 64, reasoning: 128}}", f"{RO}.finish_token=null"]),
    ("rema_multiturn_separate", ["rema.schedule.switch_freq=0", "rema.schedule.train_roles=[reasoning]", "rema.schedule.first_role=null"]),
    ("rema_multiturn", [f"+{KW}.timeout_s=2.5", f"+{KW}.num_procs=2"]),
    ("rema_judge", [f"{KW}.verdict_pick=unique"]),
    ("vrp_grpo", [ "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent", "trainer.v1.trainer_mode=sync", "algorithm.adv_estimator=grpo", ]),
]
# fmt: on
REAL_COMPOSITION_SAMPLE = (  # cases (by their first override) rechecked through a real hydra composition
    f"{RO}.max_turns=abc",
    f"{RO}.max_turn=3",
    f"{RO}.stop_when_truncated=maybe",
    "rema.schedule.switch_freq=abc",
    "rema.algorithm1.iterations=abc",
    f"{PL}.turn_aggregation=foo",
    f"+{KW}.timeout_s=abc",
    "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
)


def _case_id(case: tuple) -> str:
    return f"{case[0]}:{' '.join(case[1])}"


def error_text(error: BaseException) -> str:
    """The message a user sees: the error and its causes (Hydra wraps the schema's message)."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def start_up(config) -> None:
    """What ``main_ppo.run`` checks before Ray starts, plus the dataclasses veRL's workers build first."""
    check_config(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    omega_conf_to_dataclass(config.actor_rollout_ref.rollout, RolloutConfig)
    omega_conf_to_dataclass(config.actor_rollout_ref.model, HFModelConfig)


class Composer:
    """Each recipe composed once (unresolved); a case = a copy with Hydra's override step applied, then resolved."""

    def __init__(self, embedded) -> None:
        self.paths = [
            f"actor_rollout_ref.model.path={embedded.model}",
            f"data.train_files={embedded.train}",
            f"data.val_files={embedded.val}",
        ]
        self.bases: dict[tuple, object] = {}
        self.parser = OverridesParser.create()

    def real(self, recipe: str, overrides: list[str]):
        with initialize_config_module(config_module="verl_rema_configs", version_base=None):
            config = compose(
                config_name="verl_rema", overrides=[f"+recipe={recipe}", *GPU_NODE, *self.paths, *overrides]
            )
        OmegaConf.resolve(config)
        return config

    def fast(self, recipe: str, overrides: list[str]):
        groups = tuple(o for o in overrides if o.split("=")[0].lstrip("+~") in DEFAULTS_LIST_GROUPS)
        rest = [o for o in overrides if o not in groups]
        if (recipe, groups) not in self.bases:  # a defaults-list choice is composed for real, once
            with initialize_config_module(config_module="verl_rema_configs", version_base=None):
                self.bases[recipe, groups] = compose(config_name="verl_rema", overrides=[f"+recipe={recipe}", *GPU_NODE, *self.paths, *groups])  # fmt: skip
        config = copy.deepcopy(self.bases[recipe, groups])
        ConfigLoaderImpl._apply_overrides_to_config(self.parser.parse_overrides(rest), config)
        OmegaConf.resolve(config)
        return config


@pytest.fixture(scope="module")
def composer(embedded) -> Composer:
    return Composer(embedded)


def outcome(compose_fn, recipe: str, overrides: list[str]) -> tuple[str, str]:
    """(stage that failed, message) or ("ok", "")."""
    try:
        config = compose_fn(recipe, overrides)
    except Exception as error:  # noqa: BLE001
        return COMPOSE, error_text(error)
    try:
        start_up(config)
    except Exception as error:  # noqa: BLE001
        return START, error_text(error)
    return "ok", ""


@pytest.mark.parametrize("recipe", sorted({case[0] for case in CASES}))
def test_each_recipe_of_the_table_passes_as_written(recipe, composer):
    assert outcome(composer.fast, recipe, []) == ("ok", "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_a_bad_setting_fails_before_start_naming_the_key_and_what_is_allowed(case, composer):
    recipe, overrides, stage, key, allowed = case
    got_stage, message = outcome(composer.fast, recipe, overrides)
    assert got_stage == stage, f"{overrides}: expected to fail at {stage}, got {got_stage}: {message[:400]}"
    assert key in message, f"the message does not name {key!r}:\n{message}"
    assert re.search(allowed, message), f"the message does not say what is allowed ({allowed!r}):\n{message}"


@pytest.mark.parametrize("case", VALID, ids=_case_id)
def test_a_valid_neighbour_of_each_knob_passes(case, composer):
    assert outcome(composer.fast, *case) == ("ok", "")


@pytest.mark.parametrize("first", REAL_COMPOSITION_SAMPLE)
def test_fast_path_agrees_with_a_real_composition(first, composer):
    recipe, overrides, *_ = next(case for case in CASES if case[1][0] == first)
    real = outcome(composer.real, recipe, overrides)
    fast = outcome(composer.fast, recipe, overrides)
    assert real[0] == fast[0]
    assert real[1].splitlines()[-1] == fast[1].splitlines()[-1]  # the root cause, word for word


@pytest.mark.parametrize(
    ("override", "allowed"),
    [
        (f"{RO}.max_turn=3", "'max_turns'"),
        (f"+{RO}.foo=1", "'prompt_set'"),
        ("rema.schedule.first_rol=meta", "'first_role'"),
        ("++rema.algorithm1.epoch=2", "'epochs'"),
    ],
)
def test_the_command_line_names_the_fields_of_a_typed_block_for_an_unknown_key(override, allowed):
    """Hydra's own message for an unknown key names the schema class but not its fields; the entry points say them."""
    with pytest.raises(ValueError, match=rf"unknown key {re.escape(override.split('=')[0].lstrip('+'))};.*{allowed}"):
        check_override_keys(["+recipe=rema_multiturn", override])
    check_override_keys([f"{RO}.max_turns=3", f"{RO}.max_tokens_per_message.meta=5", "--cfg", "job"])  # known keys
