import os

import pytest

from verl_rema.device import CPU_PRESET, select_device, wants_cpu


@pytest.fixture(autouse=True)
def _restore_platform_env():
    saved = os.environ.get("VERL_PLATFORM")
    yield
    if saved is None:
        os.environ.pop("VERL_PLATFORM", None)
    else:
        os.environ["VERL_PLATFORM"] = saved


def test_gpu_host_is_left_alone():
    os.environ.pop("VERL_PLATFORM", None)
    overrides = ["+recipe=vrp_grpo", "data.train_batch_size=8"]
    assert select_device(overrides, cuda_available=True) == overrides
    assert "VERL_PLATFORM" not in os.environ


def test_no_cuda_selects_cpu_and_adds_preset_after_the_recipe():
    os.environ.pop("VERL_PLATFORM", None)
    assert select_device(["+recipe=vrp_grpo", "a.b=1"], cuda_available=False) == [
        "+recipe=vrp_grpo",
        CPU_PRESET,
        "a.b=1",
    ]
    assert os.environ["VERL_PLATFORM"] == "cpu"


def test_preset_goes_before_hydra_options():
    assert select_device(["+recipe=x", "--cfg", "job"], cuda_available=False) == [
        "+recipe=x",
        CPU_PRESET,
        "--cfg",
        "job",
    ]
    assert select_device(["--cfg", "job"], cuda_available=False) == [CPU_PRESET, "--cfg", "job"]


def test_explicit_cpu_on_a_gpu_host():
    assert wants_cpu(["trainer.device=cpu"], cuda_available=True)
    assert wants_cpu(["+preset=cpu"], cuda_available=True)
    assert not wants_cpu(["trainer.device=cuda"], cuda_available=True)


def test_named_preset_is_not_doubled():
    assert select_device(["+recipe=x", "+preset=cpu"], cuda_available=False) == ["+recipe=x", "+preset=cpu"]


def test_a_group_named_after_the_recipe_is_composed_after_the_cpu_preset():
    """``+toy=`` sets the toy experiment's sizes on any device: the preset must not override them."""
    overrides = ["+recipe=rema_multiturn", "+toy=rema", "trainer.total_training_steps=3"]
    assert select_device(overrides, cuda_available=False) == [
        "+recipe=rema_multiturn",
        CPU_PRESET,
        "+toy=rema",
        "trainer.total_training_steps=3",
    ]
