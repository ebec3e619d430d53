"""End to end on CPU: the ReMA recipes on the embedded default through the real veRL trainer,
vLLM-CPU rollout and reward loop. Multi-turn (turn-level loss, two rounds, an odd rollout.n), single-turn, and
multi-turn on a tiny Llama-architecture model with a Llama-3.1-style chat template under the token-level ablation
(one override).

Every run checks the batch semantics of the rema_sync trainer: one optimiser step per training step on the CPU
preset (ppo_mini_batch_size = train_batch_size), complete (prompt, role) groups (each role has train_batch_size
x n rows) and no synthetic padding rows."""

from __future__ import annotations

import math

import pytest

from tests.e2e.runner import Run, run_main

pytestmark = pytest.mark.slow

FAST = ["trainer.val_before_train=False", "trainer.save_freq=-1", "data.val_max_samples=16"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("rema")


def _run(work, name: str, overrides: list[str]) -> Run:
    run = run_main([*FAST, *overrides, f"trainer.default_local_dir={work / name}"], work, work / "cache", name)
    assert run.returncode == 0, run.log[-6000:]
    return run


def assert_episode_batches(run: Run, roles: tuple[str, ...], episodes: int) -> None:
    """Complete role groups, no padding, and ppo_epochs x train_batch_size / ppo_mini_batch_size = 1 optimiser step."""
    assert "synthetic padding" not in run.log
    for step in run.steps():
        metrics = run.at(step)
        assert metrics["training/rema/optimizer_steps"] == 1, step
        assert metrics["training/rema/padding_rows"] == 0, step
        assert metrics["training/rema/episodes"] == episodes, step
        for role in roles:
            assert metrics[f"training/rema/{role}/rows"] == episodes, (step, role)


@pytest.fixture(scope="module")
def multiturn(work) -> Run:
    # The random tiny model never stops on its own, so every message hits its token limit; letting truncated
    # messages continue (instead of ending the episode) makes both agents speak for several rounds.
    return _run(
        work,
        "multiturn",
        ["+recipe=rema_multiturn", "rema.rollout.max_turns=2", "rema.rollout.stop_when_truncated=false",
         "actor_rollout_ref.rollout.n=3", "trainer.total_training_steps=2", "trainer.test_freq=2"],
    )  # fmt: skip


def test_multiturn_trains_both_roles_with_the_turn_level_loss(multiturn: Run):
    assert multiturn.steps() == [1, 2]
    assert_episode_batches(multiturn, ("meta", "reasoning"), episodes=16 * 3)  # an odd rollout.n=3
    for step in multiturn.steps():
        metrics = multiturn.at(step)
        for role in ("meta", "reasoning"):
            assert metrics[f"training/rema/{role}/rows"] > 0, (step, role)
            assert metrics[f"training/rema/{role}/action_tokens"] > 0, (step, role)
        assert "actor/rema_turn/turns_per_row" in metrics  # the registered loss ran in the actor worker
        # The worker counted the turns of the whole mini-batch (96 rows, each with at least one turn) for the
        # loss's normaliser (patches/turn_count.py); -1 would mean the loss fell back to per-micro-batch counts.
        assert metrics["actor/rema_turn/global_turns"] >= 96
        assert math.isfinite(metrics["actor/pg_loss"])


def test_multiturn_logs_dialogue_and_collapse_metrics_in_training_and_validation(multiturn: Run):
    train = multiturn.at(1)
    for name in (
        "rounds",
        "finish/normal",
        "finish/max_turns",
        "finish/context_overflow",
        "finish/truncated",
        "meta/tokens_per_turn",
        "reasoning/tokens_per_turn",
        "meta/empty_turn_rate",
        "reasoning/repetition_rate",
        "meta/answer_leak_rate",
    ):
        assert f"training/rema/{name}" in train, name
    assert sum(
        train[f"training/rema/finish/{r}"] for r in ("normal", "max_turns", "context_overflow", "truncated")
    ) == (pytest.approx(1.0))
    assert train["training/rema/rounds"] > 1  # multi-turn dialogues really happened
    assert train["training/rema/reasoning/turns"] > 1
    validation = multiturn.at(2)
    for name in ("rounds", "finish/max_turns", "meta/repetition_rate", "meta/answer_leak_rate"):
        assert f"val-aux/verl_rema/toy_arith/rema/{name}/mean@1" in validation, name


def test_singleturn_runs(work):
    run = _run(
        work, "singleturn", ["+recipe=rema_singleturn", "trainer.total_training_steps=1", "trainer.test_freq=-1"]
    )
    metrics = run.at(1)
    assert metrics["training/rema/rounds"] == 1
    assert_episode_batches(run, ("meta", "reasoning"), episodes=16 * 4)


def test_multiturn_on_a_llama_architecture_model_with_a_llama_31_template_and_the_token_level_ablation(work):
    """The rows of a template that is not ChatML, on a model veRL gives its generic token builder; its eos is not
    its end-of-turn token, so messages end only on the stop token id the rollout passes to vLLM. The same run is
    the token-level ablation (one override: veRL's vanilla loss instead of the turn-level ratio); one launch
    checks both to keep the suite's time down."""
    from tests.e2e.tiny_llama import build_tiny_llama

    model = build_tiny_llama(work / "tiny_llama")
    run = _run(
        work,
        "llama",
        [f"actor_rollout_ref.model.path={model}", "+recipe=rema_multiturn", "rema.rollout.max_turns=2",
         "rema.rollout.stop_when_truncated=false", "trainer.total_training_steps=1", "trainer.test_freq=-1",
         "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"],
    )  # fmt: skip
    assert_episode_batches(run, ("meta", "reasoning"), episodes=16 * 4)
    metrics = run.at(1)
    assert "actor/rema_turn/turns_per_row" not in metrics  # the turn-level loss's own metric: not this loss
    assert metrics["training/rema/rounds"] > 1 and math.isfinite(metrics["actor/pg_loss"])
    assert metrics["training/rema/meta/action_tokens"] > 0 and metrics["training/rema/reasoning/action_tokens"] > 0
