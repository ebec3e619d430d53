"""Table 1 printer: the paper's reference cells and our runs side by side."""

from __future__ import annotations

import json

import pytest

from verl_rema.evaluate import report, table1
from verl_rema.evaluate.samples import Episode


@pytest.mark.parametrize(
    ("model", "printed"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", 53.09),
        ("llama3.1-8b-instruct", 36.97),
        ("meta-llama/Meta-Llama-3-8B-Instruct", 26.73),
    ],
)
def test_rema_counts_reproduce_the_printed_average(model, printed):
    """Independent check of the stored counts: their unweighted mean is the average the paper prints."""
    cells = table1.paper_cells(model)["ReMA"]
    benchmarks = [cells[b] for b in table1.BENCHMARKS]
    assert round(100 * sum(benchmarks) / 7, 2) == printed
    assert cells[report.AVERAGE] == pytest.approx(printed / 100)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="qwen2.5-7b-instruct"):
        table1.paper_model("gpt2")


def _run(tmp_path, name: str, correct: dict[str, int]) -> dict:
    """A results.json of ``verl_rema.evaluate`` shape: 10 questions per benchmark, ``correct[b]`` right, greedy."""
    episodes = []
    for bench, right in correct.items():
        for q in range(10):
            episodes.append(Episode(f"{bench}-{q}", f"{bench}-{q}_0", bench, float(q < right), None, "finish"))
    results = report.build_results(episodes, {"name": name, "n": 1, "temperature": 0.0}, 1)
    report.write_report(results, tmp_path / name)
    return results


def test_table_prints_ours_beside_the_paper(tmp_path, capsys):
    shares = {b: i + 1 for i, b in enumerate(table1.BENCHMARKS)}  # 10% .. 70%
    _run(tmp_path, "vrp", shares)
    _run(tmp_path, "rema", {**shares, "aime24": 0})
    code = table1.main(
        [
            f"VRP={tmp_path / 'vrp'}",
            f"ReMA={tmp_path / 'rema'}",
            "--model",
            "Qwen/Qwen2.5-7B-Instruct",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    text = (tmp_path / "table1.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    lines = {line.split(" | ")[0].strip("| *"): line for line in text.splitlines() if line.startswith("|")}
    assert "| 10.00 (?) | 10.00 (74.40) |" in lines["MATH500"]  # ReMA's MATH500 cell = 372 / 500
    assert "| 30.00 (?) | 0.00 (20.00) |" in lines["aime24"]
    # unweighted mean of the seven benchmarks, from unrounded accuracies
    assert "| 40.00 (50.24) | 35.71 (53.09) |" in lines["average"]
    assert "VRP = greedy pass@1" in text


def test_missing_benchmark_leaves_the_average_empty(tmp_path):
    results = _run(tmp_path, "partial", {"MATH500": 5, "gsm8k": 5})
    assert table1.our_cells(results) == {"MATH500": 0.5, "gsm8k": 0.5}
    assert "| - (" in table1.table("qwen2.5-7b-instruct", {"VRP": results})


def test_bad_column_and_missing_run(tmp_path, capsys):
    assert table1.main(["CoT=x", "--model", "qwen2.5-7b-instruct"]) == 1
    assert "COLUMN one of VRP, VRP_RL, MRP_RL, ReMA" in capsys.readouterr().err
    assert table1.main([f"VRP={tmp_path}", "--model", "qwen2.5-7b-instruct"]) == 1
    assert "no results.json" in capsys.readouterr().err
    json.dumps(table1.paper_cells("llama3.1-8b-instruct"))  # JSON-able
