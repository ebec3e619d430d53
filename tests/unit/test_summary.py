"""The end-of-run summary: per-episode reward column and the learning-curve PNG beside the metrics file."""

from __future__ import annotations

import json

from verl_rema.summary import format_summary, plot_curves, print_summary, read_metrics

VAL = "val-core/verl_rema/toy_arith/acc/mean@1"


def _write(path, rows):
    path.write_text("".join(json.dumps({"step": r.pop("step"), "data": r}) + "\n" for r in rows))
    return path


def test_summary_shows_the_episode_reward_and_validation(tmp_path):
    rows = [{"step": 0, VAL: 0.5}]
    rows += [{"step": s, "critic/score/mean": 0.1 * s, "training/rema/episode/reward": 0.2 * s, "timing_s/step": 2.0}
             for s in (1, 2)]  # fmt: skip
    text = format_summary(read_metrics(_write(tmp_path / "m.jsonl", rows)))
    assert "episode_reward" in text.splitlines()[2]
    assert text.splitlines()[4].split(" | ")[2] == "0.4"  # step 2's episode reward
    assert f"{VAL}: step 0: 0.5" in text


def test_learning_curve_png_is_written_beside_the_metrics(tmp_path, capsys):
    metrics = _write(tmp_path / "run000.jsonl", [{"step": 0, VAL: 0.5}, {"step": 1, "critic/score/mean": 0.3}])
    print_summary(metrics)
    png = tmp_path / "run000.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"learning curve: {png}" in capsys.readouterr().out
    assert plot_curves([{"step": 1, "actor/pg_loss": 0.0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
