"""End to end on CPU: the two-role SFT warm-up through veRL's own SFT trainer, then multi-turn RL from its checkpoint.

The model is the embedded tiny Qwen2 made "base-like" (its tokenizer ends text with <|endoftext|>, as Qwen2.5-7B
base does), so the run also proves that the checkpoint learns, and is told, to stop after each message: the RL
rollout's messages end on their own and dialogues finish normally, which the random model never does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.runner import Run, run_main
from tests.unit.test_sft_end_of_turn import base_like_model
from verl_rema.embedded import embedded_paths

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sft")


@pytest.fixture(scope="module")
def sft(work) -> tuple[Run, Path]:
    base = base_like_model(embedded_paths(root=work / "cache").model, work / "base_model")
    run = run_main(
        ["+recipe=sft_embedded", f"model.path={base}", f"trainer.default_local_dir={work / 'sft'}"],
        work, work / "cache", "sft", module="verl_rema.sft",
    )  # fmt: skip
    assert run.returncode == 0, run.log[-6000:]
    return run, work / "sft"


def test_sft_loss_decreases_on_train_and_validation(sft):
    run, _ = sft
    losses = [row["train/loss"] for row in run.metrics if "train/loss" in row]
    validation = [row["val/loss"] for row in run.metrics if "val/loss" in row]
    assert len(losses) == 60 and len(validation) == 2  # 1920 rows / 64 a step, 2 epochs; validated after each
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.4 * first, (first, last)
    assert validation[1] < validation[0] < first
    assert "verl-rema SFT: 60 steps, train/loss" in run.log  # the entry point's summary line


def test_checkpoint_is_a_hf_model_that_stops_after_each_message(sft):
    run, out = sft
    folder = out / "global_step_60" / "huggingface"
    assert f"HF checkpoint {folder}" in run.log
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer["eos_token"] == "<|im_end|>"  # the base-like tokenizer's <|endoftext|> replaced for SFT
    vocab = json.loads((folder / "tokenizer.json").read_text())["added_tokens"]
    im_end = next(t["id"] for t in vocab if t["content"] == "<|im_end|>")
    assert json.loads((folder / "config.json").read_text())["eos_token_id"] == im_end
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"][0] == im_end
    assert (folder / "model.safetensors").exists() and (folder / "chat_template.jinja").exists()


def test_multiturn_rl_runs_a_step_from_the_checkpoint(sft, work):
    _, out = sft
    run = run_main(
        ["+recipe=rema_multiturn", f"actor_rollout_ref.model.path={out / 'global_step_60' / 'huggingface'}",
         "rema.rollout.max_turns=2", "trainer.total_training_steps=1", "trainer.val_before_train=False",
         "trainer.test_freq=-1", "trainer.save_freq=-1", f"trainer.default_local_dir={work / 'rl'}"],
        work, work / "cache", "rl",
    )  # fmt: skip
    assert run.returncode == 0, run.log[-6000:]
    assert run.steps() == [1]
    metrics = run.at(1)
    for role in ("meta", "reasoning"):
        assert metrics[f"training/rema/{role}/action_tokens"] > 0
    # The warm-started roles follow the protocol: messages stop on <|im_end|>, the MTA writes [FINISH].
    assert metrics["training/rema/finish/normal"] > 0.5, {k: v for k, v in metrics.items() if "finish" in k}
