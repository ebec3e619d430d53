"""LLM-as-a-judge evaluation: the paper's plain accuracy, JudgeBench's two-game score and position bias.

``python -m verl_rema.evaluate.judge DUMP --out DIR`` (``python -m verl_rema.evaluate`` calls it after its per-subset
report whenever the run's reward was the judge reward) reads veRL's validation dump, whose rows carry the judge
reward's keys (``verdict``, ``gold``, ``pair_id``, ``game``, ``acc``), and writes ``judge.{md,json,png}``. Per
benchmark (the ``pair_id`` prefix: ``rewardbench``, ``judgebench``):

- **accuracy** over all tuples: the paper's metric, k/970 on RewardBench970 (every Table 1b/2 cell is k/970) and
  k/N over the JudgeBench rows;
- **game-1 accuracy**: the tuples in the source order only (JudgeBench: one score per pair, k/620; which of this and
  the two-game score ReMA reported is not known: both are given);
- **two-game score** (JudgeBench's ``utils/metrics.py``): per pair with both orders judged, +1 for a correct
  verdict, -1 for a wrong one, 0 for none, summed over the two games; the pair counts as correct when the sum is > 0.
  With n samples per tuple the score is its expectation over independent draws of the two games' samples;
- **position-consistent**: both verdicts present and naming the same response across the swap;
- **position bias**: accuracy when the better response is shown as A vs as B, and the share of A verdicts.

Intervals: Wilson score intervals (clustered per tuple for n > 1, as :func:`report.accuracy_interval`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_rema.evaluate.report import accuracy_interval
from verl_rema.evaluate.samples import find_dump, read_jsonl, sidecar_of, split_row_key
from verl_rema.evaluate.writers import bar_chart, md_table, pct, write_and_show

JUDGE_KEYS = ("verdict", "gold", "pair_id", "game")
FLIP = {"A": "B", "B": "A"}


@dataclass(frozen=True)
class Judgement:
    """One sampled verdict on one ordered tuple (the last row of its episode)."""

    benchmark: str
    pair: str
    game: str
    subset: str
    gold: str
    verdict: str | None
    correct: float
    malformed: bool = False

    @property
    def outcome(self) -> int:
        """JudgeBench's count: +1 correct, -1 a wrong verdict, 0 no verdict."""
        if self.verdict is None:
            return 0
        return 1 if self.verdict == self.gold else -1


def judgements_from_rows(rows: Sequence[Mapping[str, Any]], sidecar: Mapping[str, Mapping[str, Any]] | None = None):
    """The final row of each episode as a :class:`Judgement`; ``[]`` when the rows lack the judge reward's keys."""
    finals: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for position, row in enumerate(rows):
        key = row.get("uid")
        if not isinstance(key, str):
            raise ValueError(f"dump row {position} has no 'uid' row key")
        _, episode, index = split_row_key(key)
        if episode not in finals or index > finals[episode][0]:
            finals[episode] = (index, row)
    judgements = []
    for _, row in finals.values():
        if any(key not in row for key in JUDGE_KEYS):
            return []
        pair = str(row["pair_id"]) or f"unpaired:{row['uid']}"
        record = (sidecar or {}).get(row["uid"]) or {}
        verdict = row["verdict"] if row["verdict"] in FLIP else None
        judgements.append(
            Judgement(
                benchmark=pair.split(":", 1)[0] if ":" in pair else "judge",
                pair=pair,
                game=str(row["game"] or "1"),
                subset=str(record.get("data_source") or row.get("data_source") or "all"),
                gold=str(row["gold"]),
                verdict=verdict,
                correct=float(row.get("acc") or 0.0),
                malformed=bool(row.get("verdict_malformed", False)),
            )
        )
    return judgements


def _accuracy(judgements: Sequence[Judgement]) -> dict[str, Any] | None:
    """Mean over tuples of the per-tuple mean correctness, with its interval and the correct count (n = 1)."""
    if not judgements:
        return None
    tuples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for j in judgements:
        tuples[(j.pair, j.game)].append(j.correct)
    n = max(len(v) for v in tuples.values())
    per_tuple = [sum(v) / n for v in tuples.values()]  # a missing sample counts as wrong
    interval = accuracy_interval(per_tuple, n)
    accuracy = sum(per_tuple) / len(per_tuple)
    return {"accuracy": accuracy, "ci_low": interval.low, "ci_high": interval.high, "tuples": len(per_tuple),
            "samples_per_tuple": n, "correct": round(accuracy * len(per_tuple), 6)}  # fmt: skip


def _pairs(judgements: Sequence[Judgement]) -> dict[str, Any] | None:
    """JudgeBench's two-game score and position consistency over the pairs judged in both orders."""
    games: dict[str, dict[str, list[Judgement]]] = defaultdict(lambda: defaultdict(list))
    for j in judgements:
        games[j.pair][j.game].append(j)
    complete = [(g["1"], g["2"]) for g in games.values() if g.get("1") and g.get("2")]
    if not complete:
        return None
    scores, consistent = [], []
    for first, second in complete:
        combos = list(itertools.product(first, second))
        scores.append(sum(a.outcome + b.outcome > 0 for a, b in combos) / len(combos))
        consistent.append(sum(a.verdict is not None and b.verdict == FLIP[a.verdict] for a, b in combos) / len(combos))
    interval = accuracy_interval(scores, max(len(a) * len(b) for a, b in complete))
    return {"two_game": sum(scores) / len(scores), "two_game_ci_low": interval.low, "two_game_ci_high": interval.high,
            "pairs": len(complete), "position_consistent": sum(consistent) / len(consistent)}  # fmt: skip


def _position(judgements: Sequence[Judgement]) -> dict[str, Any]:
    found = [j for j in judgements if j.verdict is not None]
    by_gold = {letter: _accuracy([j for j in judgements if j.gold == letter]) for letter in FLIP}
    return {
        "gold_a": by_gold["A"],
        "gold_b": by_gold["B"],
        "gap": None if None in by_gold.values() else by_gold["A"]["accuracy"] - by_gold["B"]["accuracy"],
        "verdict_a_share": sum(j.verdict == "A" for j in found) / len(found) if found else None,
        "no_verdict": sum(j.verdict is None for j in judgements) / len(judgements),
        "malformed": sum(j.malformed for j in judgements) / len(judgements),
    }


def judge_results(judgements: Sequence[Judgement], run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole judge report as one JSON-able dict: per benchmark and per subset."""
    if not judgements:
        raise ValueError("no judge generations (rows without the judge reward's verdict/gold/pair_id/game keys)")

    def block(group: Sequence[Judgement]) -> dict[str, Any]:
        return {"overall": _accuracy(group), "game1": _accuracy([j for j in group if j.game == "1"]),
                "pairs": _pairs(group), "position": _position(group)}  # fmt: skip

    benchmarks = sorted({j.benchmark for j in judgements})
    subsets = sorted({j.subset for j in judgements})
    return {
        "run": dict(run or {}),
        "benchmarks": {b: block([j for j in judgements if j.benchmark == b]) for b in benchmarks},
        "subsets": {s: block([j for j in judgements if j.subset == s]) for s in subsets},
    }


def _count(acc: Mapping[str, Any] | None) -> str:
    if acc is None:
        return "-"
    correct = acc["correct"]
    shown = int(correct) if float(correct).is_integer() else f"{correct:.2f}"
    return f"{pct(acc['accuracy'])} ({shown}/{acc['tuples']})"


def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"[{pct(low)}, {pct(high)}]"


def markdown(results: Mapping[str, Any]) -> str:
    name = results["run"].get("name", "evaluation")
    lines = [f"# {name}: LLM-as-a-judge", "", "## Paper metrics", ""]
    rows = []
    for bench, r in results["benchmarks"].items():
        overall, pairs = r["overall"], r["pairs"] or {}
        rows.append([bench, _count(overall), _ci(overall["ci_low"], overall["ci_high"]), _count(r["game1"]),
                     f"{pct(pairs.get('two_game'))} ({pairs.get('pairs', 0)} pairs)",
                     _ci(pairs.get("two_game_ci_low"), pairs.get("two_game_ci_high")),
                     pct(pairs.get("position_consistent"))])  # fmt: skip
    lines += md_table(["benchmark", "accuracy % (k/N)", "95% CI %", "game-1 accuracy % (k/N)", "two-game score %",
                       "95% CI %", "position-consistent %"], rows)  # fmt: skip
    lines += ["", "## Position bias (accuracy by the better response's position)", ""]
    rows = []
    for label, group in (*results["benchmarks"].items(), *results["subsets"].items()):
        p = group["position"]
        rows.append([label, _count(p["gold_a"]), _count(p["gold_b"]), pct(p["gap"]), pct(p["verdict_a_share"]),
                     pct(p["no_verdict"]), pct(p["malformed"])])  # fmt: skip
    lines += md_table(["benchmark / subset", "better shown as A", "better shown as B", "gap (A - B) pts",
                       "A verdicts %", "no verdict %", "malformed %"], rows)  # fmt: skip
    lines += ["", "- accuracy: verdict == gold over every tuple (RewardBench970: the paper's k/970). game 1: the source "
              "order only (JudgeBench: one score per pair, k/620). two-game score: JudgeBench's own (+1 correct, -1 "
              "wrong, 0 no verdict, summed over both orders, > 0 counts). 95% CI: Wilson.", ""]  # fmt: skip
    return "\n".join(lines)


def write_judge_report(dump: str | Path, out_dir: str | Path, run: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``judge.{json,md,png}`` for a validation dump (file or folder); ``{}`` when it holds no judge generations."""
    dump = find_dump(dump)
    sidecar_path = sidecar_of(dump)
    sidecar = None
    if sidecar_path.is_file():
        sidecar = {r["key"]: r for r in read_jsonl(sidecar_path, "reading ReMA records")}
    judgements = judgements_from_rows(read_jsonl(dump, "reading generations"), sidecar)
    if not judgements:
        return {}
    results = judge_results(judgements, run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {f"judge.{ext}": out / f"judge.{ext}" for ext in ("json", "md", "png")}
    paths["judge.json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["judge.md"].write_text(markdown(results))
    groups = list(results["benchmarks"])
    series: dict[str, list[tuple[float, float, float] | None]] = {}
    for label, pick in (
        ("accuracy", lambda r: r["overall"]),
        ("game 1", lambda r: r["game1"]),
        ("better shown as A", lambda r: r["position"]["gold_a"]),
        ("better shown as B", lambda r: r["position"]["gold_b"]),
    ):
        series[label] = [(a["accuracy"], a["ci_low"], a["ci_high"]) if (a := pick(results["benchmarks"][g])) else None
                         for g in groups]  # fmt: skip
    series["two-game"] = [
        (p["two_game"], p["two_game_ci_low"], p["two_game_ci_high"])
        if (p := results["benchmarks"][g]["pairs"])
        else None
        for g in groups
    ]
    bar_chart(groups, series, f"{(run or {}).get('name', 'evaluation')}: judge accuracy", paths["judge.png"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.evaluate.judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", type=Path, help="<step>.jsonl validation dump, or the folder holding them (latest)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for judge.{md,json,png}")
    parser.add_argument("--name", default="evaluation", help="run label in tables and plots")
    args = parser.parse_args(argv)

    def write() -> dict[str, Path]:
        paths = write_judge_report(args.dump, args.out, {"name": args.name})
        if not paths:
            raise ValueError(f"{args.dump}: no judge generations (was the reward verl_rema.rewards.judge_reward?)")
        return paths

    return write_and_show(write, "judge.md")


if __name__ == "__main__":
    sys.exit(main())
