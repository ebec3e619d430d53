"""Per-subset accuracy with 95% confidence intervals, dialogue and collapse statistics, and their writers.

``python -m verl_rema.evaluate.report DUMP --out DIR [--data PARQUET] [--n N] [--name NAME]`` reports any veRL
validation dump (a file or a ``trainer.validation_data_dir`` folder); ``python -m verl_rema.evaluate`` calls
:func:`write_report` itself after its run.

Accuracy is the reward's ``acc`` (math-verify correctness of the final answer, not masked for unfinished
episodes; veRL's own ``val-core`` metric): greedy ``pass@1`` with one sample per question, ``avg@n`` (the mean
over questions of each question's mean over its n samples) otherwise. A sample veRL lost (fewer than n sessions
for a question) counts as wrong, as in veRL's validation metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from verl_rema.evaluate.samples import Episode, load_episodes
from verl_rema.evaluate.writers import bar_chart, md_table, pct, write_and_show, write_csv
from verl_rema.protocol import FINISH_REASONS, NO_FINISH_REASON

CONFIDENCE = 0.95
Z = statistics.NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
FINISH_ORDER: tuple[str, ...] = (*FINISH_REASONS, NO_FINISH_REASON)
COLLAPSE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rema/meta/repetition_rate", "MTA repetition"),
    ("rema/reasoning/repetition_rate", "RA repetition"),
    ("rema/meta/echo_overlap", "MTA echo"),
    ("rema/reasoning/echo_overlap", "RA echo"),
    ("rema/meta/empty_turn_rate", "MTA empty"),
    ("rema/reasoning/empty_turn_rate", "RA empty"),
    ("rema/meta/answer_leak_rate", "MTA leak"),
)
AVERAGE = "average"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    effective_n: float


def wilson(p: float, n: float, z: float = Z) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` observed over ``n`` (possibly effective) trials."""
    if n <= 0:
        raise ValueError(f"need at least one trial, got n={n}")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # the outer min/max: at p = 0 or 1 the bound can round to the wrong side of p (e.g. 2.8e-17 for p = 0)
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def accuracy_interval(per_question: Sequence[float], samples_per_question: int, z: float = Z) -> Interval:
    """95% interval for the mean of per-question accuracies (``pass@1`` or ``avg@n``).

    Why this interval: questions are the independent unit (n samples of one question are correlated), so the
    standard error is the spread of per-question means over sqrt(N). That error is turned into an effective
    number of trials, n_eff = p(1-p) / SE^2 (Kish's design effect, as in Korn and Graubard's interval for
    clustered proportions), clipped to [N, N*n] — it can be no fewer than the questions and no more than the
    samples — and put into the Wilson score interval. The result stays within [0, 1], keeps a non-zero width
    at 0% and 100% (frequent on AIME's 30 questions), needs no random resampling (unlike a bootstrap, which
    collapses to a point when every answer is wrong) and is exactly the Wilson interval for greedy pass@1
    (n = 1). When p is 0 or 1 the spread is uninformative and N trials are assumed (the conservative end).
    Simulated coverage (30-40 questions of Beta-distributed difficulty, n = 1, 4 or 8): 0.94-0.97.
    """
    count = len(per_question)
    if count == 0:
        raise ValueError("no questions")
    if samples_per_question < 1:
        raise ValueError(f"samples_per_question must be >= 1, got {samples_per_question}")
    p = sum(per_question) / count
    low_n, high_n = float(count), float(count * samples_per_question)
    if p <= 0.0 or p >= 1.0:
        n_eff = low_n
    else:
        variance = statistics.variance(per_question) if count > 1 else 0.0
        se2 = variance / count
        n_eff = high_n if se2 <= 0 else min(max(p * (1 - p) / se2, low_n), high_n)
    low, high = wilson(p, n_eff, z)
    return Interval(low, high, n_eff)


@dataclass
class SubsetResult:
    """Everything reported for one subset (also the JSON/CSV record)."""

    subset: str
    questions: int
    samples_per_question: int
    samples: int
    missing_samples: int
    accuracy: float
    ci_low: float
    ci_high: float
    effective_n: float
    score_mean: float | None
    rounds_mean: float | None
    num_turns_mean: float | None
    rows_per_episode: float
    finish: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    dataset_questions: int | None = None
    verl_accuracy: float | None = None


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return sum(defined) / len(defined) if defined else None


def _correct(episode: Episode) -> float:
    """``acc``; a reward without it (veRL then reports ``score`` as ``acc`` itself) falls back to ``score``."""
    value = episode.acc if episode.acc is not None else episode.score
    return value or 0.0


def subset_result(subset: str, episodes: Sequence[Episode], samples_per_question: int) -> SubsetResult:
    """Statistics of one subset's episodes; missing samples of a question count as wrong."""
    by_question: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_question[episode.question].append(episode)
    over = {q: len(e) for q, e in by_question.items() if len(e) > samples_per_question}
    if over:
        raise ValueError(f"subset {subset}: questions with more than {samples_per_question} samples: {over}")
    per_question = [sum(_correct(e) for e in eps) / samples_per_question for eps in by_question.values()]
    interval = accuracy_interval(per_question, samples_per_question)
    reasons = Counter(e.finish_reason or NO_FINISH_REASON for e in episodes)
    metric_keys = sorted({k for e in episodes for k in e.metrics})
    metrics = {k: _mean([e.metrics.get(k) for e in episodes]) for k in metric_keys}
    return SubsetResult(
        subset=subset,
        questions=len(by_question),
        samples_per_question=samples_per_question,
        samples=len(episodes),
        missing_samples=len(by_question) * samples_per_question - len(episodes),
        accuracy=sum(per_question) / len(per_question),
        ci_low=interval.low,
        ci_high=interval.high,
        effective_n=interval.effective_n,
        score_mean=_mean([e.score for e in episodes]),
        rounds_mean=_mean([e.rounds for e in episodes]),
        num_turns_mean=_mean([e.num_turns for e in episodes]),
        rows_per_episode=sum(e.rows for e in episodes) / len(episodes),
        finish={reason: reasons[reason] / len(episodes) for reason in sorted(reasons, key=_finish_rank)},
        metrics={k: v for k, v in metrics.items() if v is not None},
    )


def _finish_rank(reason: str) -> tuple[int, str]:
    return (FINISH_ORDER.index(reason) if reason in FINISH_ORDER else len(FINISH_ORDER), reason)


def macro_average(results: Sequence[SubsetResult], z: float = Z) -> dict[str, float]:
    """Unweighted mean over subsets (the paper's "average" column) with an approximate 95% interval.

    Each subset's standard error is read off its interval (half-width / z), the errors are combined as for a
    mean of independent estimates, and the normal interval is clipped to [0, 1]."""
    if not results:
        raise ValueError("no subsets to average")
    k = len(results)
    mean = sum(r.accuracy for r in results) / k
    se = math.sqrt(sum(((r.ci_high - r.ci_low) / (2 * z)) ** 2 for r in results)) / k
    return {"accuracy": mean, "ci_low": max(0.0, mean - z * se), "ci_high": min(1.0, mean + z * se), "subsets": k}


def metric_name(samples_per_question: int, temperature: float | None = None) -> str:
    if samples_per_question == 1:
        return ("greedy " if temperature == 0 else "") + "pass@1"
    return f"avg@{samples_per_question}"


def build_results(
    episodes: Sequence[Episode],
    run: Mapping[str, Any],
    samples_per_question: int | None = None,
    dataset_questions: Mapping[str, int] | None = None,
    verl_metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The whole report as one JSON-able dict: run description, per-subset results, macro average."""
    if not episodes:
        raise ValueError("no generations to report")
    per_question = Counter(e.question for e in episodes)
    n = samples_per_question or max(per_question.values())
    by_subset: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_subset[episode.subset].append(episode)
    results = [subset_result(subset, by_subset[subset], n) for subset in sorted(by_subset)]
    for result in results:
        if dataset_questions is not None:
            result.dataset_questions = dataset_questions.get(result.subset)
        if verl_metrics is not None:
            result.verl_accuracy = verl_metrics.get(f"val-core/{result.subset}/acc/mean@{n}")
    return {
        "run": dict(run),
        "metric": metric_name(n, run.get("temperature")),
        "confidence": CONFIDENCE,
        "samples_per_question": n,
        "subsets": [asdict(r) for r in results],
        AVERAGE: macro_average(results),
    }


def read_verl_validation(path: str | Path | None) -> dict[str, float] | None:
    """The last validation metrics veRL logged to its JSONL file logger (for the cross-check column)."""
    if path is None or not Path(path).is_file():
        return None
    merged: dict[str, float] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            data = json.loads(line).get("data", {})
            merged.update({k: v for k, v in data.items() if k.startswith("val-")})
    return merged or None


# -- this report's files (the formats all reports share: .writers) -----------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def markdown(results: Mapping[str, Any]) -> str:
    run, metric, subsets, average = results["run"], results["metric"], results["subsets"], results[AVERAGE]
    described = ", ".join(f"{k}={v}" for k, v in run.items() if v is not None and k != "generations")
    lines = [f"# {run.get('name', 'evaluation')}: {metric} per subset", "", f"Run: {described}", ""]
    rows = [
        [
            s["subset"],
            str(s["questions"]),
            str(s["samples"]),
            pct(s["accuracy"]),
            f"[{pct(s['ci_low'])}, {pct(s['ci_high'])}]",
            pct(s["score_mean"]),
            pct(s["verl_accuracy"]),
        ]
        for s in subsets
    ]
    masked = _mean([s["score_mean"] for s in subsets])
    rows.append(
        [f"**{AVERAGE}**", "", "", f"**{pct(average['accuracy'])}**", f"[{pct(average['ci_low'])}, "
         f"{pct(average['ci_high'])}]", pct(masked), ""]
    )  # fmt: skip
    header = ["subset", "questions", "samples", f"{metric} %", "95% CI %", "masked %", "veRL val-core %"]
    lines += md_table(header, rows)
    reasons = sorted({r for s in subsets for r in s["finish"]}, key=_finish_rank)
    lines += ["", "## Dialogue", ""]
    lines += md_table(
        ["subset", "rounds", "rows/episode", "reward (masked) %", *(f"finish {r} %" for r in reasons)],
        [
            [s["subset"], _num(s["rounds_mean"]), _num(s["rows_per_episode"]), pct(s["score_mean"])]
            + [pct(s["finish"].get(r, 0.0)) for r in reasons]
            for s in subsets
        ],
    )
    present = [(key, title) for key, title in COLLAPSE_COLUMNS if any(key in s["metrics"] for s in subsets)]
    if present:
        lines += ["", "## Collapse detectors (mean per episode)", ""]
        lines += md_table(
            ["subset", *(title for _, title in present)],
            [[s["subset"], *(_num(s["metrics"].get(key)) for key, _ in present)] for s in subsets],
        )
    lines += ["", _notes(results), ""]
    return "\n".join(lines)


def _notes(results: Mapping[str, Any]) -> str:
    notes = [
        f"{results['metric']}: the reward's `acc` (math-verify correctness of the final answer, whether or not the "
        "episode finished normally) averaged per question, then over questions; masked: the reward itself (0 for an "
        "episode that did not finish normally), as trained on. "
        "95% CI: Wilson score interval with the clustered effective sample size (see "
        "`verl_rema.evaluate.report.accuracy_interval`); the average is the unweighted mean over subsets."
    ]
    for s in results["subsets"]:
        if s["missing_samples"]:
            notes.append(f"{s['subset']}: {s['missing_samples']} samples missing from the dump, counted as wrong.")
        if s["dataset_questions"] is not None and s["dataset_questions"] != s["questions"]:
            notes.append(f"{s['subset']}: {s['questions']} of {s['dataset_questions']} questions were evaluated.")
        if s["verl_accuracy"] is not None and abs(s["verl_accuracy"] - s["accuracy"]) > 1e-6:
            notes.append(f"{s['subset']}: veRL's val-core metric differs from this report's accuracy.")
    return "\n".join(f"- {note}" for note in notes)


def csv_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per subset plus the average: finish reasons and metrics become columns."""
    rows = []
    for s in results["subsets"]:
        row = {k: v for k, v in s.items() if k not in ("finish", "metrics")}
        row.update({f"finish/{k}": v for k, v in s["finish"].items()})
        row.update(s["metrics"])
        rows.append(row)
    average = results[AVERAGE]
    rows.append({"subset": AVERAGE, **{k: average[k] for k in ("accuracy", "ci_low", "ci_high")}})
    return rows


def accuracy_points(results: Mapping[str, Any], groups: Sequence[str]) -> list[tuple[float, float, float] | None]:
    by_subset = {s["subset"]: s for s in results["subsets"]} | {AVERAGE: results[AVERAGE]}
    return [
        (by_subset[g]["accuracy"], by_subset[g]["ci_low"], by_subset[g]["ci_high"]) if g in by_subset else None
        for g in groups
    ]


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``results.{json,md,csv,png}`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"results.{ext}" for ext in ("json", "md", "csv", "png")}
    paths["json"].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    paths["md"].write_text(markdown(results))
    write_csv(csv_rows(results), paths["csv"])
    groups = [s["subset"] for s in results["subsets"]] + [AVERAGE]
    name = results["run"].get("name", "evaluation")
    bar_chart(groups, {name: accuracy_points(results, groups)}, f"{name}: {results['metric']}", paths["png"])
    return paths


def report_dump(
    dump: str | Path,
    out_dir: str | Path,
    run: Mapping[str, Any],
    *,
    data: str | Path | None = None,
    samples_per_question: int | None = None,
    dataset_questions: Mapping[str, int] | None = None,
    verl_metrics_file: str | Path | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read a dump, compute the report, write it."""
    dump_path, episodes = load_episodes(dump, data)
    results = build_results(
        episodes,
        {**run, "generations": str(dump_path)},
        samples_per_question,
        dataset_questions,
        read_verl_validation(verl_metrics_file),
    )
    return results, write_report(results, out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.evaluate.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", type=Path, help="<step>.jsonl validation dump, or the folder holding them (latest)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for results.{md,json,csv,png}")
    parser.add_argument("--data", type=Path, help="evaluation parquet, to find subsets when there is no record file")
    parser.add_argument("--n", type=int, help="samples per question (default: the most seen for one question)")
    parser.add_argument("--name", default="evaluation", help="run label in tables and plots")
    parser.add_argument("--metrics", type=Path, help="veRL JSONL metrics file, for the val-core cross-check")
    args = parser.parse_args(argv)

    def write() -> dict[str, Path]:
        _, paths = report_dump(
            args.dump, args.out, {"name": args.name}, data=args.data, samples_per_question=args.n,
            verl_metrics_file=args.metrics,
        )  # fmt: skip
        return paths

    return write_and_show(write, "md")


if __name__ == "__main__":
    sys.exit(main())
