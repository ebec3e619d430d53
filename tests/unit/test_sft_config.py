"""The SFT entry config is veRL's own sft_trainer_engine plus verl-rema's keys; recipes compose and pass veRL's SFT
validation (the GPU recipe for an 8-GPU node, on a machine without one); the entry point picks the CPU preset and
starts torchrun for several GPUs."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tests.conftest import REPO_ROOT, run_python
from verl_rema.sft.checks import SFTConfigError, check_sft_config, check_validation_data, world_size
from verl_rema.sft.config import ReMASFTDataConfig

OURS = {  # every key the entry config sets on top of veRL's sft_trainer_engine
    ("model", "path"): "${rema_embedded:model}",
    ("model", "tokenizer_path"): "${rema_sft:tokenizer}",
    ("data", "train_files"): "${rema_sft:train}",
    ("data", "val_files"): "${rema_sft:val}",
    ("data", "custom_cls", "path"): "pkg://verl_rema.sft.dataset",
    ("data", "custom_cls", "name"): "ReMASFTDataset",
    ("checkpoint", "save_contents"): ["model", "optimizer", "extra", "hf_model"],
    ("trainer", "project_name"): "verl_rema_sft",
    ("trainer", "experiment_name"): "sft",
    ("trainer", "logger"): ["console", "file"],
}


def _compose(overrides: list[str], name: str = "verl_rema_sft", module: str = "verl_rema_configs.sft"):
    with initialize_config_module(config_module=module, version_base=None):
        return compose(config_name=name, overrides=overrides)


def test_no_copy_of_veRLs_sft_yaml_ships_with_the_project():
    shipped = {p.name for p in (REPO_ROOT / "hydra_configs").rglob("*.yaml")}
    assert not shipped & {"sft_trainer_engine.yaml", "sft_trainer.yaml", "hf_model.yaml", "fsdp.yaml"}


def test_entry_config_is_veRLs_sft_trainer_plus_the_rema_keys():
    ours = OmegaConf.to_container(_compose([]), resolve=False)
    assert ours.pop("rema") == {"sft": OmegaConf.to_container(OmegaConf.structured(ReMASFTDataConfig))}
    verl = OmegaConf.to_container(_compose([], name="sft_trainer_engine", module="verl.trainer.config"), resolve=False)
    for keys, value in OURS.items():
        *parents, last = keys
        mine, theirs = ours, verl
        for key in parents:
            mine, theirs = mine[key], theirs[key]
        assert mine.pop(last) == value
        theirs.pop(last)
    assert ours == verl


def test_gpu_recipe_passes_veRLs_sft_validation_for_an_8_gpu_node():
    config = _compose(["+recipe=sft_mamrp"])  # as written: no preset, no override
    check_sft_config(config)
    assert world_size(config) == 8 and config.trainer.device == "cuda"
    assert config.data.train_batch_size // world_size(config) == 1  # batch 8: one chat per GPU a step
    assert (config.optim.lr, config.optim.lr_scheduler_type, config.trainer.total_epochs) == (1e-5, "cosine", 3)
    assert (config.data.max_length, config.model.path, config.engine.strategy) == (4096, "Qwen/Qwen2.5-7B", "fsdp")
    assert ReMASFTDataConfig.from_config(config.rema.sft).sources == ["mamrp"]
    # the composed interpolations are still there: validating touched neither the model nor the data
    assert OmegaConf.to_container(config.data)["train_files"] == "${rema_sft:train}"


def test_cpu_recipe_and_preset_validate():
    config = _compose(["+recipe=sft_embedded", "+preset=cpu"])
    check_sft_config(config)
    assert (config.trainer.device, config.engine.strategy, world_size(config)) == ("cpu", "fsdp2", 1)
    assert config.model.override_config.attn_implementation == "sdpa"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["data.train_batch_size=12"], "data.train_batch_size=12 must be a multiple of the 8"),
        (["checkpoint.save_contents=[model]"], "must include hf_model"),
        (["optim.lr_scheduler_type=linear"], "optim: veRL's optim config rejects"),  # veRL's own dataclass check
        (["trainer.profile_interval=[5,2]"], ""),  # veRL's own interval check (an assert)
        (["rema.sft.roles=[critic]"], "rema.sft.roles"),
    ],
)
def test_unusable_keys_fail_before_anything_starts(overrides, message):
    config = _compose(["+recipe=sft_mamrp", *overrides])
    with pytest.raises((SFTConfigError, ValueError, AssertionError), match=message):
        check_sft_config(config)


def test_a_typo_fails_at_composition_with_the_full_key():
    with pytest.raises(Exception, match=r"rema\.sft\.val_dialogue"):
        _compose(["rema.sft.val_dialogue=3"])


def test_validation_steps_need_validation_data():
    config = _compose(["+recipe=sft_mamrp", "trainer.test_freq=10", "data.val_files=null"])
    with pytest.raises(SFTConfigError, match="val_dialogues"):
        check_validation_data(config)
    check_validation_data(_compose(["+recipe=sft_mamrp", "data.val_files=null"]))  # test_freq=-1: fine


def test_entry_point_on_a_machine_without_cuda_composes_the_cpu_preset():
    result = run_python(
        "import sys; sys.argv=['sft','+recipe=sft_mamrp','--cfg','job']; from verl_rema.sft.__main__ import cli; cli()",
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job = OmegaConf.create(result.stdout[result.stdout.index("model:") :])
    assert (job.trainer.device, job.engine.strategy, job.trainer.n_gpus_per_node) == ("cpu", "fsdp2", 1)
    assert job.optim.lr == 1e-5  # the recipe's, under the preset


def test_several_gpus_start_torchrun_with_one_process_each(monkeypatch):
    import verl_rema.sft.__main__ as entry

    calls = []
    monkeypatch.setattr(entry, "prepare", lambda config: calls.append("prepare"))
    monkeypatch.setattr(entry.subprocess, "call", lambda command: calls.append(command) or 0)
    assert entry.launch(_compose(["+recipe=sft_mamrp"]), ["+recipe=sft_mamrp", "x=1"]) == 0
    prepare, command = calls
    assert command[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8", "-m", "verl_rema.sft",
        "+recipe=sft_mamrp", "x=1",
    ]  # fmt: skip
    with pytest.raises(SFTConfigError, match="start torchrun on every node"):
        entry.launch(_compose(["+recipe=sft_mamrp", "trainer.nnodes=2"]), [])
