"""End to end on CPU: a model per role in one veRL run (``+recipe=rema_multiturn_separate``), through the real
trainer, Ray, two FSDP2 worker groups, two vLLM-CPU server sets and the reward loop.

The MTA is the embedded tiny model, the RA a one-layer model of the same tokenizer (two checkpoints of different
depth). The trained role switches every step: meta, reasoning, then (after a resume) meta again. The models are
random, so the reward is 0 and the advantages vanish; a negative entropy coefficient and a large learning rate make
every update move the weights measurably, which is what the checks below need.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.e2e.runner import Run, run_main
from verl_rema.embedded import embedded_paths

pytestmark = pytest.mark.slow

EPISODES = 16 * 4  # the CPU preset: 16 prompts x rollout.n 4
SYNC_MARGIN = 4.0  # as in test_vrp_grpo_cpu.py: a served-weights gap far below a stale engine's


def _ra_model(embedded_model: Path, out: Path) -> Path:
    """A one-layer model with the embedded tokenizer: a second checkpoint of another size."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(embedded_model))
    config.num_hidden_layers = 1
    if getattr(config, "layer_types", None):  # Qwen2-style configs list one attention type per layer
        config.layer_types = config.layer_types[:1]
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(embedded_model)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("separate")
    cache, ckpt = work / "cache", work / "ckpt"
    meta_model = embedded_paths(root=cache).model
    ra_model = _ra_model(meta_model, work / "ra_model")
    common = [
        "+recipe=rema_multiturn_separate",
        "rema.schedule.switch_freq=1",
        f"+rema.models.reasoning.model.path={ra_model}",
        "rema.rollout.max_turns=2",
        "rema.rollout.stop_when_truncated=false",
        "actor_rollout_ref.actor.optim.lr=5e-2",
        "actor_rollout_ref.actor.entropy_coeff=-0.1",
        "trainer.save_freq=1",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        f"trainer.default_local_dir={ckpt}",
    ]
    first = run_main([*common, "trainer.total_training_steps=2"], work, cache, "first")
    resumed = run_main([*common, "trainer.total_training_steps=3"], work, cache, "resumed")
    return {"first": first, "resumed": resumed, "ckpt": ckpt, "models": {"meta": meta_model, "reasoning": ra_model}}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {k: v.float() for k, v in load_file(str(path)).items()}
    state = torch.load(path, weights_only=False)
    return {k: (v.to_local() if hasattr(v, "to_local") else v).float() for k, v in state.items()}


def _checkpoint(ckpt: Path, step: int, role: str) -> dict[str, torch.Tensor]:
    folder = "actor" if role == "meta" else f"actor_{role}"
    return _weights(ckpt / f"global_step_{step}" / folder / "model_world_size_1_rank_0.pt")


def _moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a if k in b)


def test_both_runs_exit_zero_and_the_second_resumes_the_schedule(runs):
    first: Run = runs["first"]
    resumed: Run = runs["resumed"]
    assert first.returncode == 0, first.log[-6000:]
    assert resumed.returncode == 0, resumed.log[-6000:]
    assert first.steps() == [1, 2] and resumed.steps() == [3]
    assert "Resuming from" in resumed.log and "global_step_2" in resumed.log
    print(f"peak memory: first run {first.peak_memory_gb:.1f} GB, resumed {resumed.peak_memory_gb:.1f} GB")
    assert max(first.peak_memory_gb, resumed.peak_memory_gb) < 22  # CI machines have 24 GB


def test_each_step_trains_the_scheduled_role_on_its_own_rows_only(runs):
    steps = {1: "meta", 2: "reasoning", 3: "meta"}  # switch_freq=1, MTA first; step 3 after the resume
    for step, role in steps.items():
        run = runs["resumed"] if step == 3 else runs["first"]
        metrics = run.at(step)
        other = "reasoning" if role == "meta" else "meta"
        assert metrics[f"training/rema/{role}/trained"] == 1 and metrics[f"training/rema/{other}/trained"] == 0
        assert math.isfinite(metrics[f"training/rema/{role}/actor/pg_loss"])
        assert f"training/rema/{other}/actor/pg_loss" not in metrics
        assert metrics[f"training/rema/{role}/optimizer_steps"] == 1
        # both roles generated every episode; only the trained role's rows reached its model's update
        assert metrics["training/rema/meta/rows"] == metrics["training/rema/reasoning/rows"] == EPISODES
        assert metrics["training/rema/untrained_rows"] == EPISODES


def test_only_the_trained_roles_weights_change(runs):
    ckpt = runs["ckpt"]
    initial = {role: _weights(path / "model.safetensors") for role, path in runs["models"].items()}
    step1 = {role: _checkpoint(ckpt, 1, role) for role in ("meta", "reasoning")}
    step2 = {role: _checkpoint(ckpt, 2, role) for role in ("meta", "reasoning")}
    step3 = {role: _checkpoint(ckpt, 3, role) for role in ("meta", "reasoning")}
    assert _moved(step1["meta"], initial["meta"]) > 1e-3 and _moved(step1["reasoning"], initial["reasoning"]) == 0
    assert _moved(step2["meta"], step1["meta"]) == 0 and _moved(step2["reasoning"], step1["reasoning"]) > 1e-3
    assert _moved(step3["meta"], step2["meta"]) > 1e-3 and _moved(step3["reasoning"], step2["reasoning"]) == 0


def test_each_roles_servers_serve_that_models_current_weights(runs):
    """The trained role's rollout log-probs agree with its actor's (bf16 rounding only): at step 2 the RA's servers
    hold the RA's model (had they served the MTA's, which changed at step 1, they would disagree), and at step 3
    (after the resume) the MTA's servers hold the MTA's weights saved at step 2."""
    from tests.e2e.test_vrp_grpo_cpu import _token_probs

    ckpt, models = runs["ckpt"], runs["models"]
    meta_initial = _token_probs(models["meta"], None)
    stale = (_token_probs(models["meta"], _checkpoint(ckpt, 2, "meta")) - meta_initial).abs().max().item()
    step2 = runs["first"].at(2)["training/rema/reasoning/training/rollout_probs_diff_max"]
    step3 = runs["resumed"].at(3)["training/rema/meta/training/rollout_probs_diff_max"]
    assert step2 * SYNC_MARGIN < stale and step3 * SYNC_MARGIN < stale, (step2, step3, stale)
