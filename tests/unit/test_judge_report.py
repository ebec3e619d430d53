"""The judge report: plain accuracy (k/N), game-1 accuracy, JudgeBench's two-game score, position bias, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_rema.evaluate.judge import judge_results, judgements_from_rows, main, write_judge_report
from verl_rema.rewards.judge_reward import compute_score


def _rows(cases, sessions=("s0",)) -> list[dict]:
    """Dump rows as veRL writes them: one per role (MTA index 0, RA index 1), the reward's keys on each row; the
    RA's text decides the verdict through the real reward function."""
    rows = []
    for number, (pair, game, gold, texts) in enumerate(cases):
        for session, text in zip(sessions, texts if isinstance(texts, tuple) else (texts,), strict=True):
            info = {"pair_id": pair, "game": game, "rema_final_answer": text, "rema_finish_reason": "normal"}
            reward = compute_score("x", "", gold, info)
            for index in (0, 1):
                rows.append({"uid": f"q{number}_{session}_{index}", "input": "...", "output": text, "gts": gold,
                             **reward})  # fmt: skip
    return rows


CASES = [
    # pair, game, gold, the RA's final message
    ("rewardbench:1", "1", "A", "A is better. [[A]]"),  # correct
    ("rewardbench:1", "2", "B", "A is better. [[A]]"),  # wrong: picks the position, not the response
    ("rewardbench:2", "1", "A", "[[A]]"),
    ("rewardbench:2", "2", "B", "[[B]]"),  # both right: consistent
    ("rewardbench:3", "1", "B", "I cannot decide."),  # no verdict (0) ...
    ("rewardbench:3", "2", "A", "[[A]]"),  # ... + correct (+1) = two-game correct
    ("judgebench:x", "1", "B", "[B]"),  # malformed: no verdict
    ("judgebench:x", "2", "A", "[[B]]"),  # wrong
]


def test_metrics_on_a_hand_made_dump():
    judgements = judgements_from_rows(_rows(CASES))
    assert len(judgements) == 8  # one per episode: the RA's (last) row
    results = judge_results(judgements, {"name": "t"})
    rb = results["benchmarks"]["rewardbench"]
    assert rb["overall"]["correct"] == 4 and rb["overall"]["tuples"] == 6
    assert rb["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert 0 <= rb["overall"]["ci_low"] < 4 / 6 < rb["overall"]["ci_high"] <= 1
    assert rb["game1"]["correct"] == 2 and rb["game1"]["tuples"] == 3
    assert rb["pairs"]["pairs"] == 3
    assert rb["pairs"]["two_game"] == pytest.approx(2 / 3)  # pair 1: +1-1 = 0 (not), pair 2: 2, pair 3: 0+1
    assert rb["pairs"]["position_consistent"] == pytest.approx(1 / 3)  # only pair 2 names the same response twice
    position = rb["position"]
    assert (position["gold_a"]["correct"], position["gold_a"]["tuples"]) == (3, 3)
    assert (position["gold_b"]["correct"], position["gold_b"]["tuples"]) == (1, 3)
    assert position["gap"] == pytest.approx(2 / 3)
    assert position["verdict_a_share"] == pytest.approx(4 / 5) and position["no_verdict"] == pytest.approx(1 / 6)
    jb = results["benchmarks"]["judgebench"]
    assert jb["overall"]["correct"] == 0 and jb["pairs"]["two_game"] == 0.0  # 0 + (-1)
    assert jb["position"]["malformed"] == pytest.approx(0.5)


def test_two_game_score_matches_judgebench_counting_for_every_outcome_pair():
    """JudgeBench (utils/metrics.py): counter +1 when a decision equals the label, -1 when it equals the flipped
    label, else 0; correct when > 0. Checked over all 3 x 3 outcomes of the two games."""
    texts = {"right": {"A": "[[A]]", "B": "[[B]]"}, "wrong": {"A": "[[B]]", "B": "[[A]]"}, "none": {"A": "", "B": ""}}
    value = {"right": 1, "wrong": -1, "none": 0}
    for first in texts:
        for second in texts:
            cases = [("jb:p", "1", "A", texts[first]["A"]), ("jb:p", "2", "B", texts[second]["B"])]
            pairs = judge_results(judgements_from_rows(_rows(cases)))["benchmarks"]["jb"]["pairs"]
            assert pairs["two_game"] == float(value[first] + value[second] > 0), (first, second)


def test_several_samples_per_tuple_give_expected_scores():
    cases = [
        ("rb:1", "1", "A", ("[[A]]", "[[B]]")),  # half right
        ("rb:1", "2", "B", ("[[B]]", "[[B]]")),  # always right
    ]
    results = judge_results(judgements_from_rows(_rows(cases, sessions=("s0", "s1"))))["benchmarks"]["rb"]
    assert results["overall"]["accuracy"] == pytest.approx(0.75) and results["overall"]["samples_per_tuple"] == 2
    # draws: (+1,+1) and (-1,+1) -> 1 and 0 -> expected 0.5
    assert results["pairs"]["two_game"] == pytest.approx(0.5)


def test_files_and_cli(tmp_path: Path, capsys):
    generations = tmp_path / "generations"
    generations.mkdir()
    rows = _rows(CASES)
    (generations / "0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sidecar = [{"key": r["uid"], "data_source": "judgebench-math" if "judgebench" in r["pair_id"] else "math-prm"}
               for r in rows]  # fmt: skip
    (generations / "0.rema.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sidecar))
    paths = write_judge_report(generations, tmp_path / "out", {"name": "ReMA"})
    assert set(paths) == {"judge.json", "judge.md", "judge.png"}
    assert paths["judge.png"].read_bytes()[:4] == b"\x89PNG"
    results = json.loads(paths["judge.json"].read_text())
    assert set(results["subsets"]) == {"judgebench-math", "math-prm"}  # subsets from the rema_eval record
    table = paths["judge.md"].read_text()
    assert "| rewardbench | 66.7 (4/6) |" in table and "| math-prm |" in table
    assert main([str(generations), "--out", str(tmp_path / "cli")]) == 0 and "two-game score" in capsys.readouterr().out
    plain = tmp_path / "math"
    plain.mkdir()
    (plain / "0.jsonl").write_text(json.dumps({"uid": "q_s_0", "acc": 1.0, "score": 1.0}) + "\n")
    assert write_judge_report(plain, tmp_path / "none") == {}  # a math run: no judge report
    assert main([str(plain), "--out", str(tmp_path / "none")]) == 1
