"""The reward under load (issue 16, item 5): 20,480 episodes (10x the reference run's largest batch, 128 prompts x 16)
of normal and adversarial answers through the math reward's verifier pool, called as veRL's reward loop calls it
(``compute_score`` once per sample, from more threads than there are verifier processes).

Checked: no hang (the batch ends, bounded), every item within its deadline plus a margin, the pool never runs more
processes than it was given, no process left behind after shutdown, bounded memory; and a verifier process killed
from outside in the middle of a batch is replaced and its item scores 0 with status ``error``.

The deadline is 1 s here (10 s in the recipes): the rule "within timeout + kill grace + margin" is the same for any
deadline, and a shorter one keeps the drill to about a minute on 2 cores. Figures are printed (``-s``).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest

from tests.unit.test_math_reward import adversarial_predictions
from verl_rema.rewards import math_reward
from verl_rema.rewards.verifier_pool import VerifierPool

EPISODES = 20_480  # 10 x (128 prompts x 16 samples)
CALLER_THREADS = 16  # veRL's reward loop runs compute_score in its executor's threads
MARGIN_S = 1.0  # scheduling on a loaded 2-core machine, one worker restart
# Inputs that keep SymPy busy for seconds or more (each ends at the deadline).
HANGERS = ["\\boxed{1000000!}", "\\boxed{10^{10^{7}}}", "10**10**8", "\\boxed{(x+1)^{5000}}"]


def normal_answers(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Answers a trained or half-trained model writes: correct, wrong, fractions, prose, no answer, long CoT."""
    rng = random.Random(seed)
    preds, golds = [], []
    for i in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        s = a + b
        preds.append(
            [
                f"So the answer is \\boxed{{{s}}}.",
                f"We get $\\frac{{{2 * s}}}{{2}}$, i.e. \\boxed{{{s}}}",
                f"\\boxed{{{s + 1}}}",
                f"The sum is {a}+{b}={s}",
                "I am not sure.",
                f"Let me think. {a} plus {b}: " + "carry the one, " * 60 + f"hence \\boxed{{\\frac{{{s}}}{{1}}}}",
            ][i % 6]
        )
        golds.append(str(s))
    return preds, golds


class Watch:
    """Records every verifier process the pool starts and what each is serving; samples memory and liveness."""

    def __init__(self, pool: VerifierPool) -> None:
        self.pool, self.pids, self.serving, self.served = pool, [], {}, Counter()
        self.peak_live, self.peak_worker_rss_mb, self.peak_parent_rss_mb = 0, 0.0, 0.0
        self.start_parent_rss_mb = psutil.Process().memory_info().rss / 2**20
        self._stop = threading.Event()
        spawn = pool._spawn

        def tapped_spawn() -> Any:
            worker = spawn()
            pid, conn = worker.process.pid, worker.conn
            watch = self

            class Tap:  # forwards everything; notes which prediction each process is handed
                def send(self, obj: Any) -> None:
                    if obj is not None:
                        watch.serving[pid] = obj[1]
                        watch.served[pid] += 1
                    conn.send(obj)

                def __getattr__(self, name: str) -> Any:
                    return getattr(conn, name)

            worker.conn = Tap()
            self.pids.append(pid)
            return worker

        pool._spawn = tapped_spawn  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def live(self) -> list[int]:
        return [pid for pid in self.pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            live = self.live()
            self.peak_live = max(self.peak_live, len(live))
            for pid in live:
                try:
                    self.peak_worker_rss_mb = max(
                        self.peak_worker_rss_mb, psutil.Process(pid).memory_info().rss / 2**20
                    )
                except psutil.NoSuchProcess:
                    pass
            self.peak_parent_rss_mb = max(self.peak_parent_rss_mb, psutil.Process().memory_info().rss / 2**20)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def score_like_the_reward_loop(preds: list[str], golds: list[str], timeout_s: float) -> list[dict]:
    with ThreadPoolExecutor(CALLER_THREADS) as executor:
        return list(executor.map(lambda p, g: math_reward.compute_score("math", p, g, None, timeout_s=timeout_s), preds, golds))  # fmt: skip


@pytest.fixture
def pool(monkeypatch):
    """A private pool of 2 processes behind ``compute_score`` (the recipes' CPU preset uses 1, GPU nodes up to 4)."""
    pool = VerifierPool(2)
    monkeypatch.setattr(math_reward, "get_pool", lambda num_procs=None: pool)
    yield pool
    pool.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_20480_episodes_of_normal_and_adversarial_answers(pool, monkeypatch):
    timeout_s = 1.0
    adversarial = adversarial_predictions() + HANGERS * 6
    preds, golds = normal_answers(EPISODES - len(adversarial))
    order = random.Random(1).sample(range(EPISODES), EPISODES)  # hostile items spread through the batch
    items = [(preds[i], golds[i]) if i < len(preds) else (adversarial[i - len(preds)], "42") for i in order]
    elapsed: list[float] = []
    real_verify = VerifierPool.verify

    def timed_verify(self, g, p, t):
        result = real_verify(self, g, p, t)
        elapsed.append(result.elapsed_s)  # from hand-over to the answer: what the deadline bounds
        return result

    monkeypatch.setattr(VerifierPool, "verify", timed_verify)
    watch = Watch(pool)
    start = time.monotonic()
    results = score_like_the_reward_loop([p for p, _ in items], [g for _, g in items], timeout_s)
    wall = time.monotonic() - start
    watch.stop()
    stats, statuses = pool.stats(), Counter(r["verify_status"] for r in results)
    normal_correct = sum(r["acc"] for (p, g), r in zip(items, results, strict=True) if g != "42")
    print(
        f"\n{EPISODES} episodes ({len(adversarial)} adversarial) on {pool.num_procs} processes, {CALLER_THREADS} caller "
        f"threads: wall {wall:.1f}s, slowest item {max(elapsed):.2f}s (deadline {timeout_s}s + grace "
        f"{pool.kill_grace_s}s), statuses {dict(statuses)}, pool {stats}; peak live workers {watch.peak_live}, peak "
        f"worker RSS {watch.peak_worker_rss_mb:.0f} MiB, parent RSS {watch.start_parent_rss_mb:.0f} -> "
        f"{watch.peak_parent_rss_mb:.0f} MiB"
    )
    assert len(results) == len(elapsed) == EPISODES
    assert all(r["score"] in (0.0, 1.0) for r in results)
    assert max(elapsed) < timeout_s + pool.kill_grace_s + MARGIN_S
    assert statuses["timeout"] >= len(HANGERS)  # the deadline was exercised (hard kills: tests/unit/test_math_reward)
    # nothing lost: boxed, a fraction that equals it, the last equation's value (math-verify reads "a+b=s" as s)
    assert normal_correct == sum(1 for i in order if i < len(preds) and i % 6 in (0, 1, 3, 5))
    assert wall < sum(elapsed) / pool.num_procs + 60  # parallel, no stall beyond the items' own time
    assert watch.peak_live <= pool.num_procs
    assert watch.peak_worker_rss_mb < (pool.memory_limit_mb or 4096)
    assert watch.peak_parent_rss_mb - watch.start_parent_rss_mb < 500  # results for 20k items, not a leak
    pool.shutdown()
    time.sleep(0.2)
    assert watch.live() == [], "verifier processes left behind"
    assert stats["spawned"] == len(watch.pids) == pool.num_procs + stats.get("killed", 0) + stats.get("crashed", 0)


@pytest.mark.timeout(180)
def test_a_verifier_killed_mid_batch_is_replaced_and_its_item_scores_0_with_status_error(pool):
    """Kill (SIGKILL, from outside) the process serving a slow but legitimate item while the batch goes on."""
    marker = "\\boxed{1000000!}"  # ~8 s of SymPy work: finishes well inside the 30 s deadline unless killed
    preds, golds = normal_answers(3000, seed=2)
    preds.insert(50, marker)
    golds.insert(50, "42")
    watch = Watch(pool)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [pid for pid, pred in list(watch.serving.items()) if pred == marker]
            if busy:
                time.sleep(0.5)  # mid-item
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    results = score_like_the_reward_loop(preds, golds, timeout_s=30.0)
    thread.join()
    watch.stop()
    stats = pool.stats()
    print(f"\nkilled {killed} serving {marker!r}; pool {stats}; items per process {dict(watch.served)}")
    assert len(killed) == 1
    assert (results[50]["verify_status"], results[50]["score"], results[50]["acc"]) == ("error", 0.0, 0.0)
    others = results[:50] + results[51:]
    assert Counter(r["verify_status"] for r in others) == Counter({"ok": 2500, "no_answer": 500})
    assert stats["crashed"] == 1 and stats["spawned"] == 3  # two at start, one replacement
    replacement = watch.pids[-1]
    assert replacement not in killed and watch.served[replacement] > 0  # the replacement served the rest
    assert not psutil.pid_exists(killed[0]), "the killed worker was not reaped"
    pool.shutdown()
    time.sleep(0.2)
    assert watch.live() == []
