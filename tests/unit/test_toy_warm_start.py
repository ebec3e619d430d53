"""The toy warm start: its recipes compose and pass the SFT entry's checks, its cache key follows what it depends
on, and (slow) a build through veRL's SFT trainer ends on a plateau in the target range with room for RL."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from verl_rema.experiments.toy import warm_start
from verl_rema.experiments.toy.warm_start import RECIPES, cache_key, recipe_file, sft_command, warm_start_paths
from verl_rema.sft.checks import check_sft_config
from verl_rema.sft.config import ReMASFTDataConfig

PLATEAU_MARGIN = 0.05  # |acc(N) - acc(2N/3)| on the same 256 prompts: about 1.5 SE of a paired difference
TARGET = (0.5, 0.75)  # forms 1 and 2 learned, form 0 held near 0 by the teacher's wrong plans


def _compose(overrides: list[str]):
    with initialize_config_module(config_module="verl_rema_configs.sft", version_base=None):
        return compose(config_name="verl_rema_sft", overrides=overrides)


@pytest.mark.parametrize("kind", sorted(RECIPES))
def test_the_recipes_compose_and_pass_the_sft_checks(kind):
    config = _compose([f"+recipe={RECIPES[kind]}", "+preset=cpu"])
    check_sft_config(config)
    data = ReMASFTDataConfig.from_config(config.rema.sft)
    assert data.sources == ["embedded"] and data.wrong_plan_share > 0.5 and data.drill_rows > 0
    assert config.optim.lr_scheduler_type == "constant"  # the plateau is the data's, not a decayed lr's
    assert recipe_file(kind).exists()


def test_both_kinds_share_the_teacher_the_drill_and_the_optimiser():
    rema, cot = (_compose([f"+recipe={RECIPES[kind]}"]) for kind in ("rema", "cot"))
    keys = ("embedded_task", "embedded_dialogues", "embedded_repeats", "wrong_plan_share", "wrong_plan_forms")
    for key in (*keys, "drill_rows", "seed"):
        assert rema.rema.sft[key] == cot.rema.sft[key], key
    assert rema.optim == cot.optim and rema.data == cot.data and rema.rema.sft.embedded_task == "toy"
    assert (Path(rema.rema.sft.prompt_set).name, cot.rema.sft.prompt_set) == ("toy_prompts.yaml", "cot")


def test_the_cache_key_follows_the_kind_and_the_overrides(embedded):
    key = cache_key("rema", embedded, ())
    assert key == cache_key("rema", embedded, ())
    assert len({key, cache_key("cot", embedded, ()), cache_key("rema", embedded, ("optim.lr=1e-3",))}) == 3


def test_the_sft_command_saves_each_evaluated_checkpoint(tmp_path):
    command = sft_command("rema", tmp_path / "model", tmp_path / "out", 1800, ("optim.lr=1e-3",))
    assert command[1:4] == ["-m", "verl_rema.sft", "+recipe=sft_toy"]
    assert f"trainer.save_freq={1800 // warm_start.CHECKPOINTS}" in command and command[-1] == "optim.lr=1e-3"
    assert warm_start.recipe_steps("rema", ("trainer.total_training_steps=60",)) == 60


@pytest.mark.slow
@pytest.mark.experiment  # ~25 min of SFT on 2 free cores: reproduces the shipped build (pytest -m experiment)
def test_the_warm_start_has_plateaued_in_the_target_range_with_room_for_rl(tmp_path_factory):
    """Rebuilds through veRL's SFT trainer (run it alone: it uses both cores) and checks the plateau."""
    paths = warm_start_paths("rema", root=tmp_path_factory.mktemp("toy_cache"), rebuild=True)
    report = paths.read_report()
    curve = {point["step"]: point for point in report["curve"]}
    last, two_thirds = curve[report["steps"]], curve[report["steps"] * 2 // 3]
    assert TARGET[0] <= last["accuracy"] <= TARGET[1], report["curve"]
    assert abs(last["accuracy"] - two_thirds["accuracy"]) <= PLATEAU_MARGIN, report["curve"]
    assert last["finish"].get("normal", 0) >= 0.95 * last["n"]  # the protocol is learned
    # The imperfect teacher's form: greedy follows its wrong plan, sampling still finds the right one
    assert last["per_form"]["0"] < 0.15 < min(last["per_form"]["1"], last["per_form"]["2"]) + 0.1
    plans = report["plan_probabilities"]["0"]
    assert plans["wrong"] > plans["right"] > 0.05, plans
    assert (paths.model / "model.safetensors").exists() and paths.val.exists()


def test_the_sft_entry_names_the_last_step_as_its_checkpoint(tmp_path, embedded):
    """Several saved steps (the warm start saves six): the last is the highest step, not the last in text order."""
    import shutil

    from verl_rema.sft.end_of_turn import register_in_checkpoints

    for step in (8, 12):
        shutil.copytree(embedded.model, tmp_path / f"global_step_{step}" / "huggingface")
    assert [f.parent.name for f in register_in_checkpoints(tmp_path)] == ["global_step_8", "global_step_12"]


@pytest.mark.parametrize("kind", ["rema", "cot"])
def test_the_package_ships_this_very_build_and_a_first_use_copies_it(kind, tmp_path):
    """The shipped warm start carries the key of today's embedded model, recipe text and (no) overrides: editing the
    recipe without rebuilding the asset fails here, not silently in a demo that would then build for 25 minutes."""
    import json

    paths = warm_start_paths(kind, root=tmp_path)  # seconds: a copy of warm_start.SHIPPED / <key>
    shipped = warm_start.SHIPPED / paths.root.name
    assert shipped.is_dir(), f"no shipped build named {paths.root.name}: rebuild with the README's command"
    assert (paths.model / "model.safetensors").read_bytes() == (shipped / "model" / "model.safetensors").read_bytes()
    report = paths.read_report()
    assert report == json.loads((shipped / "report.json").read_text()) and report["steps"] == 1200
    assert not list(paths.root.parent.glob("*.log"))  # nothing was trained
