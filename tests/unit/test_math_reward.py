"""The aligned math reward: correctness, masking, veRL's calling convention, and a verifier that never hangs."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from verl_rema.protocol import FINISH_REASONS
from verl_rema.rewards import math_reward
from verl_rema.rewards.math_reward import compute_score, score_many
from verl_rema.rewards.verifier_pool import STATUSES, VerifierPool, get_pool, shutdown_pool

KEYS = {"score", "acc", "finish_reason", "answer_extracted", "verify_status"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _pool():
    """One pool for the module, stopped afterwards so no worker outlives the tests."""
    yield get_pool()
    shutdown_pool()


# -- correctness ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        ("so the answer is \\boxed{42}", "42", True),
        ("so the answer is \\boxed{41}", "42", False),
        ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", True),
        ("The answer is 0.5", "\\frac{1}{2}", True),
        ("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\boxed{\\{1, 2\\}}", "\\{2,1\\}", True),
        ("\\boxed{x = 3}", "3", True),
        # math-verify reads several boxes as one set-valued answer, not as "the last box wins"
        ("first \\boxed{7}, finally \\boxed{8}", "8", False),
    ],
)
def test_scores_math_verify_correctness(prediction: str, gold: str, correct: bool) -> None:
    result = compute_score("MATH500", prediction, gold)
    assert set(result) == KEYS
    assert result == {
        "score": float(correct),
        "acc": float(correct),
        "finish_reason": "n/a",
        "answer_extracted": True,
        "verify_status": "ok",
    }


@pytest.mark.parametrize("prediction", ["", "I have no idea.", "\\boxed{"])
def test_no_answer_scores_zero(prediction: str) -> None:
    result = compute_score("x", prediction, "42")
    assert (result["score"], result["acc"], result["answer_extracted"], result["verify_status"]) == (
        0.0,
        0.0,
        False,
        "no_answer",
    )


@pytest.mark.parametrize(("gold", "expected"), [(27.0, ("27",)), (5, ("5",)), (["3", 4], ("3", "4")), (None, ())])
def test_gold_answers_normalised(gold, expected) -> None:
    assert math_reward.gold_answers(gold) == expected


def test_unusable_gold_scores_zero_with_error_status() -> None:
    result = compute_score("x", "\\boxed{5}", None)
    assert (result["score"], result["verify_status"]) == (0.0, "error")
    assert compute_score("x", "\\boxed{4}", ["3", "4"])["score"] == 1.0  # a list: any gold counts


# -- what is scored, and masking ------------------------------------------------------------------------------


def test_rema_final_answer_is_scored_instead_of_the_response() -> None:
    info = {"rema_finish_reason": "normal", "rema_final_answer": "so \\boxed{12}"}
    assert compute_score("x", "\\boxed{99}", "12", info)["score"] == 1.0
    assert compute_score("x", "\\boxed{12}", "12", {**info, "rema_final_answer": "\\boxed{99}"})["score"] == 0.0
    # not a string (no final message): the response is scored
    assert compute_score("x", "\\boxed{12}", "12", {**info, "rema_final_answer": None})["score"] == 1.0


@pytest.mark.parametrize("reason", FINISH_REASONS)
def test_mask_unfinished_reward_for_every_finish_reason(reason: str) -> None:
    info = {"rema_finish_reason": reason, "rema_final_answer": "\\boxed{12}"}
    masked = compute_score("x", "", "12", info)
    assert masked["acc"] == 1.0 and masked["finish_reason"] == reason
    assert masked["score"] == (1.0 if reason == "normal" else 0.0)
    unmasked = compute_score("x", "", "12", info, mask_unfinished_reward=False)
    assert unmasked["score"] == 1.0 and unmasked["finish_reason"] == reason
    # a wrong answer earns nothing whatever the finish reason
    assert compute_score("x", "", "13", {**info, "rema_final_answer": "\\boxed{13}"})["score"] == 1.0 * (
        reason == "normal"
    )
    assert compute_score("x", "", "12", {**info, "rema_final_answer": "\\boxed{13}"})["score"] == 0.0


def test_unknown_finish_reason_is_masked_and_absent_one_is_not() -> None:
    assert compute_score("x", "\\boxed{1}", "1", {"rema_finish_reason": "aborted"})["score"] == 0.0
    for info in (None, {}, {"rema_finish_reason": None}, {"index": 3}):
        result = compute_score("x", "\\boxed{1}", "1", info)
        assert (result["score"], result["finish_reason"]) == (1.0, "n/a")


def test_mask_flag_accepts_hydra_strings_and_rejects_nonsense() -> None:
    info = {"rema_finish_reason": "truncated"}
    assert compute_score("x", "\\boxed{1}", "1", info, mask_unfinished_reward="false")["score"] == 1.0
    with pytest.raises(ValueError, match="mask_unfinished_reward"):
        compute_score("x", "\\boxed{1}", "1", info, mask_unfinished_reward="maybe")


# -- veRL's calling convention --------------------------------------------------------------------------------


def _verl_config(**reward_kwargs):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://verl_rema.rewards.math_reward",
                    "name": "compute_score",
                    "reward_kwargs": reward_kwargs,
                },
                "reward_manager": {"name": "naive", "source": "register"},
            }
        }
    )


def test_verl_loads_it_by_pkg_path_and_passes_reward_kwargs() -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    fn = get_custom_reward_fn(_verl_config(timeout_s=5, mask_unfinished_reward=False))
    info = {"rema_finish_reason": "max_turns"}
    result = fn(data_source="MATH500", solution_str="\\boxed{3}", ground_truth="3", extra_info=info)
    assert result["score"] == 1.0  # mask_unfinished_reward=False reached the function


class _ByteTokenizer:
    """Decodes ids as bytes: enough for veRL's reward manager, without a real tokenizer."""

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return bytes(int(i) for i in ids if int(i) != 0).decode("utf-8")


def test_verl_naive_reward_manager_consumes_the_result() -> None:
    """The path veRL 0.9.1 takes: NaiveRewardManager.run_single on a one-row DataProto from the agent loop."""
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = _verl_config(timeout_s=5)
    response = list(b"The RA said \\boxed{7}")
    prompt = [1, 2, 3]

    async def run() -> dict:
        manager = NaiveRewardManager(config, _ByteTokenizer(), get_custom_reward_fn(config))
        data = DataProto.from_dict(
            tensors={
                "prompts": torch.tensor([prompt]),
                "responses": torch.tensor([response]),
                "attention_mask": torch.ones(1, len(prompt) + len(response), dtype=torch.long),
            },
            non_tensors={
                "data_source": np.array(["MATH500"], dtype=object),
                "reward_model": np.array([{"ground_truth": "7", "style": "rule"}], dtype=object),
                "extra_info": np.array([{"index": 0, "split": "test"}], dtype=object),
                "tool_extra_fields": np.array([{"rema_finish_reason": "truncated"}], dtype=object),
            },
        )
        return await manager.run_single(data)

    out = asyncio.run(run())
    assert out["reward_score"] == 0.0  # truncated: masked
    info = out["reward_extra_info"]
    assert info["acc"] == 1.0 and info["finish_reason"] == "truncated" and info["verify_status"] == "ok"


# -- timeouts, crashes, batches -------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_timeout_scores_zero_is_counted_and_returns_on_time() -> None:
    pool = get_pool()
    before = pool.stats().get("timeout", 0)
    start = time.monotonic()
    result = compute_score("x", "\\boxed{10^{10^{10}}}", "42", timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert (result["score"], result["verify_status"]) == (0.0, "timeout")
    assert elapsed < 1.0 + pool.kill_grace_s + 1.0
    assert pool.stats()["timeout"] == before + 1
    assert compute_score("x", "\\boxed{42}", "42")["score"] == 1.0  # the pool still works


@pytest.mark.timeout(120)
def test_hard_hang_and_crash_kill_only_that_worker() -> None:
    """A worker the soft deadline cannot stop is SIGKILLed at the hard deadline; a dying worker scores 0."""
    pool = VerifierPool(1, kill_grace_s=0.5, worker_module="tests.unit._fake_verifier_worker")
    try:
        pid = int(pool.verify(("1",), "PID", 5).detail)
        start = time.monotonic()
        hung = pool.verify(("1",), "HANG", 1.0)
        assert hung.status == "timeout" and not hung.correct
        assert time.monotonic() - start < 1.0 + 0.5 + 1.0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped, not left burning a CPU
        assert pool.verify(("1",), "\\boxed{1}", 5).correct  # a fresh worker took over
        crashed = pool.verify(("1",), "CRASH", 5)
        assert crashed.status == "error" and "died" in crashed.detail
        assert pool.verify(("1",), "\\boxed{1}", 5).correct
        stats = pool.stats()
        assert (stats["killed"], stats["crashed"], stats["spawned"]) == (1, 1, 3)
        last = int(pool.verify(("1",), "PID", 5).detail)
    finally:
        pool.shutdown()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(last, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("shutdown left a worker process running")


def test_score_many_keeps_order_and_reuses_workers() -> None:
    golds = [str(i) for i in range(40)]
    preds = [f"\\boxed{{{i if i % 3 else i + 1}}}" for i in range(40)]
    infos = [{"rema_finish_reason": "normal" if i % 5 else "max_turns"} for i in range(40)]
    results = score_many(preds, golds, infos)
    assert [r["acc"] for r in results] == [0.0 if i % 3 == 0 else 1.0 for i in range(40)]
    assert [r["score"] for r in results] == [float(i % 3 != 0 and i % 5 != 0) for i in range(40)]
    # The batch's threads are gone; the workers they used must not have died with them.
    before = get_pool().stats()
    assert [r["acc"] for r in score_many(preds, golds, infos)] == [r["acc"] for r in results]
    after = get_pool().stats()
    assert after.get("spawned") == before.get("spawned") and after.get("crashed") == before.get("crashed")
    with pytest.raises(ValueError):
        score_many(preds, golds[:-1])


@pytest.mark.timeout(120)
def test_workers_die_with_their_process_even_mid_hang() -> None:
    """A worker stuck where no signal handler runs must still not outlive a SIGKILLed trainer process."""
    code = (
        "from verl_rema.rewards.verifier_pool import VerifierPool\n"
        "pool = VerifierPool(1, worker_module='tests.unit._fake_verifier_worker')\n"
        "print(pool.verify(('1',), 'PID', 5).detail, flush=True)\n"
        "pool.verify(('1',), 'HANG', 600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        time.sleep(0.5)  # let it enter the hang
        os.kill(worker, 0)  # alive while its parent is
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{worker}/stat").is_file() and Path(f"/proc/{worker}/stat").read_text().split()[2] == "Z":
            return  # dead, waiting for init to reap it
        time.sleep(0.05)
    pytest.fail(f"worker {worker} outlived its killed parent")


def adversarial_predictions() -> list[str]:
    """Over 1,000 hostile predictions: huge numbers, deep nesting, 100k-char strings, broken braces, unicode."""
    rng = random.Random(1234)
    preds: list[str] = []
    preds += [f"10**{100000 + i}" for i in range(10)]  # huge numbers as text
    preds += ["9" * 100000 + str(i) for i in range(5)]
    preds += [f"\\boxed{{10^{{{100000 + i}}}}}" for i in range(5)]
    preds += ["\\boxed{10^{10^{10}}}", "10**10**10", "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "\\boxed{1000000!}"]
    preds += ["\\boxed{" + "\\frac{" * d + "1" + "}{2}" * d + "}" for d in (2, 5, 10, 20, 50, 2000)]  # nesting
    preds += ["\\boxed{" + "\\sqrt{" * d + "2" + "}" * d + "}" for d in (3, 30)]
    preds += ["\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}"]
    alphabet = "abcxyz +-=*/^_{}()[]$\\0123456789"
    preds += ["".join(rng.choice(alphabet) for _ in range(100000)) for _ in range(3)]  # 100k-char strings
    preds += ["\\boxed{" * 14000, "$" * 100000, "{" * 100000, "}" * 100000, "\\boxed{1}" * 10000]
    preds += ["$x^2+\\frac{1}{2}$ and " * 5000, "a" * 100000 + "\\boxed{42}"]
    for i in range(300):  # unbalanced braces
        k = 1 + i % 40
        preds.append(rng.choice(["\\boxed{", "{", "}", "\\frac{", "\\boxed{\\frac{"]) * k + str(i) + "}" * (k // 2))
    planes = [(0x20, 0x7E), (0xA0, 0x2FFF), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0xDC80, 0xDCFF)]
    for i in range(300):  # unicode, lone surrogates included
        text = "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(1 + i % 120))
        preds.append(text if i % 2 else f"\\boxed{{{text}}}")
    fillers = ["", " ", "\n", "\x00", "\\boxed{}", "\\boxed{ }", "$$", "\\(\\)", "None", "nan", "-\\infty", "\ufeff"]
    preds += [fillers[i % len(fillers)] * (1 + i // len(fillers)) for i in range(130)]  # empty and near-empty
    tokens = ["\\frac{", "}{", "}", "{", "^", "_", "\\sqrt{", "\\left(", "\\right)", "\\begin{pmatrix}", "&", "\\\\"]
    tokens += ["\\end{pmatrix}", "x", "1", "2", "9", "+", "-", "\\cdot", "\\pi", "e", "\\boxed{", "=", ",", "[", "]"]
    preds += ["".join(rng.choice(tokens) for _ in range(rng.randint(1, 40))) for _ in range(230)]  # LaTeX soup
    return preds


@pytest.mark.timeout(300)
def test_adversarial_batch_finishes_in_bounded_time(monkeypatch) -> None:
    """Every hostile input returns within its deadline plus a margin; the whole batch runs in parallel."""
    timeout_s = 2.0
    preds = adversarial_predictions()
    assert len(preds) >= 1000
    durations: list[float] = []
    real_verify = VerifierPool.verify

    def timed_verify(self, golds, prediction, timeout):
        start = time.monotonic()
        try:
            return real_verify(self, golds, prediction, timeout)
        finally:
            durations.append(time.monotonic() - start)

    monkeypatch.setattr(VerifierPool, "verify", timed_verify)
    pool = get_pool()
    start = time.monotonic()
    results = score_many(preds, ["42"] * len(preds), timeout_s=timeout_s)
    wall = time.monotonic() - start
    statuses = Counter(r["verify_status"] for r in results)
    print(f"\n{len(preds)} adversarial predictions on {pool.num_procs} processes: {wall:.1f}s, {dict(statuses)}")
    print(f"slowest item {max(durations):.2f}s, sum of item times {sum(durations):.1f}s")
    assert len(results) == len(preds) == len(durations)
    assert set(statuses) <= set(STATUSES)
    assert all(set(r) == KEYS and r["score"] in (0.0, 1.0) for r in results)
    assert max(durations) < timeout_s + pool.kill_grace_s + 1.5  # margin: one worker restart
    assert statuses["timeout"] >= 1  # the batch did contain inputs that needed the deadline
    # Parallel: wall time is well under the sum of the items' times (and bounded outright).
    assert wall < sum(durations) / pool.num_procs + 10
    assert wall < 120


def test_dialogue_metrics_pass_through_for_validation():
    from verl_rema.rewards.episode import dialogue_metrics_of

    info = {"rema_metrics": {"rema/rounds": 2, "rema/meta/echo_overlap": None}}
    assert dialogue_metrics_of(info) == {"rema/rounds": 2.0, "rema/meta/echo_overlap": None}
    assert dialogue_metrics_of({"rema_finish_reason": "normal"}) == {}
    assert dialogue_metrics_of(None) == {}


# -- role rewards (single-turn ReMA with separate models, Algorithm 1) -------------------------------------------


def test_role_mode_scores_the_ra_row_by_the_papers_ra_reward():
    role = {"reward_mode": "role"}
    ra = {"rema_role": "reasoning", "rema_finish_reason": "normal"}
    right = compute_score("x", "", "12", {**ra, "rema_final_answer": "so \\boxed{12}"}, **role)
    wrong_boxed = compute_score("x", "", "12", {**ra, "rema_final_answer": "so \\boxed{13}"}, **role)
    no_box = compute_score("x", "", "12", {**ra, "rema_final_answer": "I think 13"}, **role)
    assert (right["score"], wrong_boxed["score"], no_box["score"]) == (1.0, -0.5, -1.0)
    assert (right["acc"], wrong_boxed["acc"]) == (1.0, 0.0)
    assert set(right) == set(no_box) == KEYS | {"plan_leak", "ra_answers"}  # the same keys on every call


def test_role_mode_scores_the_mta_row_by_its_plans_k_ra_answers():
    meta = {"rema_role": "meta", "rema_finish_reason": "normal", "rema_final_answer": "\\boxed{12}"}
    answers = ["\\boxed{12}", "\\boxed{11}", "no idea", "\\boxed{12}"]
    result = compute_score("x", "", "12", {**meta, "rema_ra_answers": answers}, reward_mode="role")
    assert result["score"] == 0.5 and result["acc"] == 0.5 and result["ra_answers"] == 4.0
    leaked = {**meta, "rema_ra_answers": answers, "rema_metrics": {"rema/meta/answer_leak_rate": 1.0}}
    assert compute_score("x", "", "12", leaked, reward_mode="role")["score"] == -0.5  # mean - 1
    assert compute_score("x", "", "12", leaked, reward_mode="role", mta_penalty="set")["score"] == -1.0
    consistent = compute_score("x", "", "12", {**meta, "rema_ra_answers": answers}, reward_mode="role", mta_reward="consistency")  # fmt: skip
    assert consistent["score"] == 0.5  # "12" twice of four, correct or not
    # the episode ended before the RA spoke: no answers, the plan earns what all-wrong answers earn
    silent = compute_score("x", "", "12", {**meta, "rema_ra_answers": []}, reward_mode="role")
    assert (silent["score"], silent["acc"], silent["ra_answers"]) == (0.0, 0.0, 0.0)
    silent_consistency = {**meta, "rema_ra_answers": []}
    assert (
        compute_score("x", "", "12", silent_consistency, reward_mode="role", mta_reward="consistency")["score"] == 0.0
    )
    own = compute_score("x", "", "12", meta, reward_mode="role")  # another loop's episode: its own final answer
    assert (own["score"], own["ra_answers"]) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"reward_kwargs.reward_mode must be one of"):
        compute_score("x", "", "12", meta, reward_mode="roles")
