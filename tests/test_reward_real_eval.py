"""The reward against the real 3,251-row evaluation set: gold answers score 1, a wrong answer scores 0.

Reads ``$REMA_SHARED_DIR/data/rema_math_eval_7bench.parquet`` (default: ``../shared`` next to the repository) and
skips when it is absent. ~35 s on 2 cores: both passes run in parallel over the verifier pool.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from verl_rema.rewards.math_reward import score_many
from verl_rema.rewards.verifier_pool import shutdown_pool

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REMA_SHARED_DIR", REPO.parent / "shared"))
EVAL = SHARED / "data" / "rema_math_eval_7bench.parquet"
WRONG = "After careful work, the final answer is \\boxed{-987654321}."


@pytest.fixture(scope="module")
def eval_set() -> pd.DataFrame:
    if not EVAL.is_file():
        pytest.skip(f"{EVAL} not found (set REMA_SHARED_DIR)")
    yield pd.read_parquet(EVAL, columns=["subset", "reward_model"])
    shutdown_pool()


def _report(name: str, frame: pd.DataFrame, scores: list[float], results: list[dict]) -> None:
    by_subset = pd.Series(scores, index=frame["subset"].values).groupby(level=0).agg(["sum", "count"])
    print(
        f"\n{name}: {int(sum(scores))}/{len(scores)} scored 1.0; statuses {dict(Counter(r['verify_status'] for r in results))}"
    )
    print(by_subset.astype(int).to_string())


def test_gold_answer_scores_one_and_wrong_answer_zero(eval_set: pd.DataFrame) -> None:
    golds = [rm["ground_truth"] for rm in eval_set["reward_model"]]
    right = score_many([f"Let me think step by step.\nThe final answer is \\boxed{{{g}}}." for g in golds], golds)
    wrong = score_many([WRONG] * len(golds), golds)
    right_scores = [r["score"] for r in right]
    wrong_scores = [r["score"] for r in wrong]
    _report("gold answer", eval_set, right_scores, right)
    _report("wrong answer", eval_set, wrong_scores, wrong)
    empty_gold = sum(1 for g in golds if not g.strip())
    print(f"rows with an empty gold answer in the reference file: {empty_gold}")
    n = len(golds)
    assert sum(s == 1.0 for s in right_scores) >= 0.99 * n
    assert sum(s == 0.0 for s in wrong_scores) >= 0.99 * n
    # Only the reference file's own defects (empty gold answers) may fail the gold pass.
    assert sum(s != 1.0 for s in right_scores) <= empty_gold
