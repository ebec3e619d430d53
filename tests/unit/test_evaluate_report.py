"""Evaluation report, joins, intervals, writers and comparison on synthetic veRL dumps (no Ray, no model)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from verl_rema.evaluate import compare, report
from verl_rema.evaluate.__main__ import EvalSettings, apply, explicit_eval_overrides, settings_from
from verl_rema.evaluate.data import prepare_eval_data
from verl_rema.evaluate.samples import JoinError, QuestionIndex, episodes_from_rows, load_episodes, split_row_key

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "eval_7bench_sample.parquet"

# -- confidence intervals ----------------------------------------------------------------------------------------


def test_wilson_known_values():
    low, high = report.wilson(0.0, 30)
    assert low == 0.0 and high == pytest.approx(3.8415 / 33.8415, abs=1e-4)  # z^2 / (n + z^2)
    for n in (1, 3, 10, 40, 675):  # the interval always holds the observed share, also at 0 and 1
        assert report.wilson(0.0, n)[0] == 0.0 and report.wilson(1.0, n)[1] == 1.0
    low, high = report.wilson(0.5, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_greedy_interval_is_the_wilson_interval():
    per_question = [1.0] * 7 + [0.0] * 23
    interval = report.accuracy_interval(per_question, samples_per_question=1)
    assert (interval.low, interval.high) == pytest.approx(report.wilson(7 / 30, 30))
    assert interval.effective_n == 30


@pytest.mark.parametrize("seed", range(20))
def test_interval_properties(seed):
    rng = random.Random(seed)
    questions, samples = rng.randint(1, 60), rng.choice([1, 2, 4, 8])
    per_question = [rng.randint(0, samples) / samples for _ in range(questions)]
    interval = report.accuracy_interval(per_question, samples)
    mean = sum(per_question) / questions
    assert 0.0 <= interval.low <= mean <= interval.high <= 1.0
    assert questions <= interval.effective_n <= questions * samples
    assert interval.high > interval.low  # never a zero-width interval, even at 0% or 100%


def test_interval_at_the_edges_and_narrowing():
    zero = report.accuracy_interval([0.0] * 30, 4)
    assert zero.low == 0.0 and 0.0 < zero.high < 0.2 and zero.effective_n == 30  # conservative: questions only
    assert report.accuracy_interval([1.0] * 30, 4).high == 1.0
    small = report.accuracy_interval([1.0, 0.0] * 10, 1)
    large = report.accuracy_interval([1.0, 0.0] * 100, 1)
    assert large.high - large.low < small.high - small.low


def test_clustering_sets_the_effective_sample_size():
    # all-or-nothing questions: the n samples add nothing, n_eff is the number of questions
    all_or_nothing = report.accuracy_interval([1.0, 0.0] * 20, 4)
    assert all_or_nothing.effective_n == 40
    # every question half right: the samples carry the information, n_eff is the number of samples
    even = report.accuracy_interval([0.5] * 40, 4)
    assert even.effective_n == 160
    assert even.high - even.low < all_or_nothing.high - all_or_nothing.low


def test_interval_covers_the_population_mean():
    """Questions of varying difficulty, 4 samples each: the 95% interval covers the true mean ~95% of the time."""
    rng = random.Random(0)
    hits, trials = 0, 400
    for _ in range(trials):
        difficulties = [rng.betavariate(0.6, 1.2) for _ in range(30)]
        per_question = [sum(rng.random() < d for _ in range(4)) / 4 for d in difficulties]
        interval = report.accuracy_interval(per_question, 4)
        hits += interval.low <= 0.6 / 1.8 <= interval.high
    assert hits / trials >= 0.9


def test_interval_rejects_empty_input():
    with pytest.raises(ValueError, match="no questions"):
        report.accuracy_interval([], 1)
    with pytest.raises(ValueError, match="samples_per_question"):
        report.accuracy_interval([0.5], 0)


def test_macro_average():
    results = [_subset("a", 0.2, 0.1, 0.3), _subset("b", 0.6, 0.5, 0.7)]
    average = report.macro_average(results)
    assert average["accuracy"] == pytest.approx(0.4) and average["subsets"] == 2
    assert 0.0 <= average["ci_low"] < 0.4 < average["ci_high"] <= 1.0
    # two independent errors of 0.1/z each, averaged: half-width 0.1 * sqrt(2) / 2
    assert average["ci_high"] - 0.4 == pytest.approx(0.1 * 2**0.5 / 2)


def test_metric_names():
    assert report.metric_name(1, 0.0) == "greedy pass@1"
    assert report.metric_name(1, 0.6) == "pass@1"
    assert report.metric_name(8, 1.0) == "avg@8"


def _subset(name: str, accuracy: float, low: float, high: float) -> report.SubsetResult:
    return report.SubsetResult(name, 10, 1, 10, 0, accuracy, low, high, 10, None, None, None, 1.0, {})


# -- synthetic veRL dumps ------------------------------------------------------------------------------------------

QUESTIONS = {  # uid -> (subset, question, answer)
    "q1": ("MATH500", "What is 1+1?", "2"),
    "q2": ("MATH500", "What is 2+3?", "5"),
    "q3": ("aime24", "Find the sum of all primes below 10.", "17"),
}


def _episode_rows(uid: str, session: int, acc: float, reason: str, roles: int = 2) -> list[dict]:
    """What veRL's _write_generations writes for one ReMA episode: one row per role, the episode's reward on each."""
    subset, question, answer = QUESTIONS[uid]
    reward = acc if reason == "normal" else 0.0
    return [
        {
            "input": f"system: you are agent {index}\nuser: {question}",
            "output": "\\boxed{" + answer + "}",
            "gts": answer,
            "score": reward,
            "step": 0,
            "reward": reward,
            "acc": acc,
            "finish_reason": reason,
            "answer_extracted": True,
            "verify_status": "ok",
            "uid": f"{uid}_{session}_{index}",
        }
        for index in range(roles)
    ]


def _record(uid: str, session: int, index: int, rounds: int, repetition: float) -> dict:
    return {
        "key": f"{uid}_{session}_{index}",
        "data_source": QUESTIONS[uid][0],
        "num_turns": 2 * rounds,
        "rema_role": "meta" if index == 0 else "reasoning",
        "rema_num_rounds": rounds,
        "rema_metrics": {"rema/rounds": float(rounds), "rema/meta/repetition_rate": repetition, "rema/x": None},
    }


def _write_dump(directory: Path, sidecar: bool = True, step: int = 0) -> Path:
    """q1: 2/2 right; q2: 1/2 right (one episode hit max_turns); q3: one session lost, the other wrong."""
    episodes = [("q1", 0, 1.0, "normal"), ("q1", 1, 1.0, "normal"), ("q2", 0, 1.0, "normal")]
    episodes += [("q2", 1, 0.0, "max_turns"), ("q3", 0, 0.0, "normal")]
    rows = [row for uid, session, acc, reason in episodes for row in _episode_rows(uid, session, acc, reason)]
    random.Random(1).shuffle(rows)  # veRL sorts by key, but the reader must not depend on the order
    directory.mkdir(parents=True, exist_ok=True)
    dump = directory / f"{step}.jsonl"
    dump.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if sidecar:
        records = [
            _record(uid, session, index, rounds=1 + session, repetition=0.1 * (1 + session))
            for uid, session, _, _ in episodes
            for index in range(2)
        ]
        (directory / f"{step}.rema.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return dump


def _eval_parquet(path: Path) -> Path:
    rows = [
        {
            "data_source": subset,
            "prompt": [{"role": "user", "content": question}],
            "reward_model": {"style": "rule", "ground_truth": answer},
            "question": question,
            "subset": subset,
        }
        for subset, question, answer in QUESTIONS.values()
    ]
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_split_row_key():
    assert split_row_key("abc-1_3_1") == ("abc-1", "abc-1_3", 1)
    assert split_row_key("a_b_c_0_2") == ("a_b_c", "a_b_c_0", 2)
    assert split_row_key("legacy-uid") == ("legacy-uid", "legacy-uid", 0)


def test_episodes_join_on_the_record_file(tmp_path):
    _, episodes = load_episodes(_write_dump(tmp_path / "gen"))
    assert len(episodes) == 5 and all(e.rows == 2 for e in episodes)
    by_session = {e.session: e for e in episodes}
    assert by_session["q3_0"].subset == "aime24" and by_session["q2_1"].finish_reason == "max_turns"
    assert by_session["q1_1"].rounds == 2 and by_session["q1_1"].num_turns == 4
    assert by_session["q1_0"].metrics == {"rema/rounds": 1.0, "rema/meta/repetition_rate": 0.1, "rema/x": None}


def test_results_per_subset(tmp_path):
    _, episodes = load_episodes(_write_dump(tmp_path / "gen"))
    results = report.build_results(episodes, {"name": "run", "temperature": 1.0}, samples_per_question=2)
    assert results["metric"] == "avg@2"
    subsets = {s["subset"]: s for s in results["subsets"]}
    math500, aime = subsets["MATH500"], subsets["aime24"]
    assert (math500["questions"], math500["samples"], math500["missing_samples"]) == (2, 4, 0)
    assert math500["accuracy"] == pytest.approx(0.75)  # (2/2 + 1/2) / 2
    assert math500["score_mean"] == pytest.approx(0.75)  # 3 normal and right of 4; max_turns is masked to 0 anyway
    assert math500["finish"] == {"normal": 0.75, "max_turns": 0.25}
    assert math500["rounds_mean"] == pytest.approx(1.5)
    assert math500["metrics"]["rema/meta/repetition_rate"] == pytest.approx(0.15)
    assert "rema/x" not in math500["metrics"]  # undefined everywhere
    assert (aime["questions"], aime["samples"], aime["missing_samples"], aime["accuracy"]) == (1, 1, 1, 0.0)
    for s in results["subsets"]:
        assert 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0
    assert results["average"]["accuracy"] == pytest.approx((0.75 + 0.0) / 2)


def test_accuracy_and_masked_reward_side_by_side(tmp_path):
    """A right answer in an episode that did not finish counts for the accuracy (the answer's correctness) and not
    for the masked reward; the report shows both columns."""
    rows = _episode_rows("q1", 0, 1.0, "normal") + _episode_rows("q1", 1, 1.0, "max_turns")
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "0.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    _, episodes = load_episodes(tmp_path / "gen" / "0.jsonl", data=_eval_parquet(tmp_path / "eval.parquet"))
    results = report.build_results(episodes, {"name": "run"}, samples_per_question=2)
    (math500,) = results["subsets"]
    assert math500["accuracy"] == pytest.approx(1.0) and math500["score_mean"] == pytest.approx(0.5)
    table = report.markdown(results)
    header = next(line for line in table.splitlines() if line.startswith("| subset") and "masked %" in line)
    row = next(line for line in table.splitlines() if line.startswith("| MATH500"))
    cells = dict(zip(header.split("|"), row.split("|"), strict=True))
    assert float(cells[" avg@2 % "]) == pytest.approx(100.0) and float(cells[" masked % "]) == pytest.approx(50.0)


def test_lost_samples_count_as_wrong_like_verl(tmp_path):
    _, episodes = load_episodes(_write_dump(tmp_path / "gen"))
    inferred = report.build_results(episodes, {"name": "run"})  # n inferred: the most samples of one question
    assert inferred["samples_per_question"] == 2
    with pytest.raises(ValueError, match="more than 1 samples"):
        report.build_results(episodes, {"name": "run"}, samples_per_question=1)


def test_text_join_without_record_file(tmp_path):
    dump = _write_dump(tmp_path / "gen", sidecar=False)
    with pytest.raises(JoinError, match="no .rema.jsonl record"):
        load_episodes(dump)
    _, episodes = load_episodes(dump, data=_eval_parquet(tmp_path / "eval.parquet"))
    assert {e.session: e.subset for e in episodes} == {
        "q1_0": "MATH500",
        "q1_1": "MATH500",
        "q2_0": "MATH500",
        "q2_1": "MATH500",
        "q3_0": "aime24",
    }
    assert all(e.rounds is None and e.metrics == {} for e in episodes)  # only the record file has them


def test_text_join_prefers_the_longest_question_and_reports_problems():
    index = QuestionIndex([("A", "What is 1+1?", "2"), ("B", "What is 1+1? Then double it.", "2")])
    assert index.subset_of("user:  What is 1+1?\n Then double it.", "2", "k") == "B"  # whitespace-insensitive
    assert index.subset_of("user: What is 1+1?", "2", "k") == "A"
    assert index.subset_of("user: What is 1+1?", "2.0", "k") == "A"  # other gold spelling: search all questions
    with pytest.raises(JoinError, match="row k: no question"):
        index.subset_of("user: something else", "2", "k")
    tied = QuestionIndex([("A", "Same?", "1"), ("B", "Same?", "1")])
    with pytest.raises(JoinError, match=r"subsets \['A', 'B'\]"):
        tied.subset_of("Same?", "1", "k")


def test_episodes_need_row_keys():
    with pytest.raises(ValueError, match="row 0 has no 'uid'"):
        episodes_from_rows([{"input": "x"}], sidecar={})


def test_find_dump_picks_the_latest_step_and_names_missing_dumps(tmp_path):
    _write_dump(tmp_path / "gen", step=5)
    _write_dump(tmp_path / "gen", step=20)
    dump, _ = load_episodes(tmp_path / "gen")
    assert dump.name == "20.jsonl"
    with pytest.raises(FileNotFoundError, match="no <step>.jsonl"):
        load_episodes(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"uid": "a_0_0"}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl: line 2: not JSON"):
        load_episodes(tmp_path / "bad.jsonl")


# -- writers -------------------------------------------------------------------------------------------------------


def _report(tmp_path: Path, name: str, shift: float = 0.0) -> Path:
    _, episodes = load_episodes(_write_dump(tmp_path / f"{name}_gen"))
    if shift:
        episodes = [e.__class__(**{**e.__dict__, "acc": 1.0}) if e.subset == "aime24" else e for e in episodes]
    metrics = tmp_path / f"{name}_metrics.jsonl"
    metrics.write_text(json.dumps({"step": 0, "data": {"val-core/MATH500/acc/mean@2": 0.75}}) + "\n")
    results = report.build_results(
        episodes,
        {"name": name, "n": 2, "temperature": 1.0},
        2,
        {"MATH500": 2, "aime24": 30},
        report.read_verl_validation(metrics),
    )
    report.write_report(results, tmp_path / name)
    return tmp_path / name


def test_writers(tmp_path):
    out = _report(tmp_path, "rema")
    results = json.loads((out / "results.json").read_text())
    assert [s["subset"] for s in results["subsets"]] == ["MATH500", "aime24"]
    assert results["subsets"][0]["verl_accuracy"] == 0.75 and results["subsets"][1]["verl_accuracy"] is None
    text = (out / "results.md").read_text()
    assert "| MATH500 | 2 | 4 | 75.0 |" in text and "**average**" in text
    assert "| masked % |" in text  # the reward as trained on, beside the unmasked accuracy
    assert "aime24: 1 of 30 questions were evaluated." in text
    assert "aime24: 1 samples missing from the dump, counted as wrong." in text
    assert "MTA repetition" in text and "finish max_turns %" in text
    with open(out / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["subset"] for r in rows] == ["MATH500", "aime24", "average"]
    assert float(rows[0]["finish/max_turns"]) == 0.25 and float(rows[0]["rema/meta/repetition_rate"]) == 0.15
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli(tmp_path, capsys):
    dump = _write_dump(tmp_path / "gen")
    assert report.main([str(dump), "--out", str(tmp_path / "out"), "--n", "2", "--name", "cli"]) == 0
    assert "| MATH500 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "results.json").read_text())["run"]["name"] == "cli"
    assert report.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "no validation dump" in capsys.readouterr().err


# -- comparison ----------------------------------------------------------------------------------------------------


def test_comparison(tmp_path):
    cot, rema = _report(tmp_path, "cot"), _report(tmp_path, "rema", shift=1.0)
    files = compare.write_comparison([cot, rema / "results.json"], tmp_path / "cmp")
    result = json.loads(files["json"].read_text())
    assert result["groups"] == ["MATH500", "aime24", "average"]
    # aime24's one question: 0 of 2 samples right for cot, 1 of 2 for rema (the other sample was lost)
    assert result["table"]["aime24"]["rema"]["delta_vs_first"] == pytest.approx(0.5)
    assert "delta_vs_first" not in result["table"]["aime24"]["cot"]
    text = files["md"].read_text()
    assert "rema − cot" in text and "+50.0" in text and "| aime24 |" in text
    assert len(list(csv.DictReader(open(files["csv"])))) == 6
    assert files["png"].read_bytes()[:4] == b"\x89PNG"


def test_comparison_labels_and_errors(tmp_path):
    run = _report(tmp_path, "same")
    assert compare.run_labels([{"run": {"name": "a"}}, {"run": {"name": "a"}}], None) == ["a", "a (2)"]
    with pytest.raises(ValueError, match="1 names for 2 runs"):
        compare.run_labels([{"run": {}}, {"run": {}}], ["x"])
    with pytest.raises(ValueError, match="at least two runs"):
        compare.write_comparison([run], tmp_path / "cmp")
    with pytest.raises(FileNotFoundError, match="no results.json"):
        compare.write_comparison([run, tmp_path / "nothing"], tmp_path / "cmp")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="missing key 'run'"):
        compare.load_results(tmp_path / "other.json")
    assert compare.main([str(run), str(run), "--out", str(tmp_path / "cmp"), "--names", "turn,token"]) == 0
    assert "turn − token" not in (tmp_path / "cmp" / "comparison.md").read_text()
    assert "token − turn" in (tmp_path / "cmp" / "comparison.md").read_text()


# -- the eval block and its data -----------------------------------------------------------------------------------


def test_eval_settings():
    assert EvalSettings().temperature == 0.0 and EvalSettings(n=4).temperature == 1.0
    assert EvalSettings(files="a.parquet").files == ["a.parquet"]
    assert EvalSettings(checkpoint="ckpt/global_step_40").checkpoint_step == 40
    with pytest.raises(ValueError, match="repeat one greedy answer"):
        EvalSettings(n=4, temperature=0)
    with pytest.raises(ValueError, match="eval.n must be a positive integer"):
        EvalSettings(n=0)
    with pytest.raises(ValueError, match="global_step_N"):
        EvalSettings(checkpoint="ckpt/latest")
    with pytest.raises(ValueError, match=r"unknown eval key\(s\) \['temprature'\]"):
        settings_from(OmegaConf.create({"eval": {"temprature": 1.0}}))
    assert settings_from(OmegaConf.create({})).n == 1
    assert explicit_eval_overrides(["eval.n=2", "+eval.x=1", "data.eval=3"]) == [
        "+eval.n=2",
        "+eval.x=1",
        "data.eval=3",
    ]


def test_apply_makes_a_validation_only_run(tmp_path):
    config = OmegaConf.create(
        {
            "data": {"val_files": "toy.parquet"},
            "trainer": {"v1": {"trainer_mode": "rema_sync"}, "resume_mode": "auto"},
            "actor_rollout_ref": {"rollout": {"val_kwargs": {"n": 1, "temperature": 0, "do_sample": False}}},
        }
    )
    OmegaConf.set_struct(config, True)
    apply(config, EvalSettings(n=4, temperature=0.7, per_subset=2), "eval.parquet", tmp_path)
    assert config.data.val_files == "eval.parquet" and config.data.val_batch_size == 256
    assert config.trainer.val_only and config.trainer.val_before_train and config.trainer.resume_mode == "disable"
    assert config.trainer.validation_data_dir == str(tmp_path / "generations")
    assert config.trainer.v1.trainer_mode == "rema_eval"
    val_kwargs = config.actor_rollout_ref.rollout.val_kwargs
    assert (val_kwargs.n, val_kwargs.temperature, val_kwargs.do_sample, val_kwargs.top_p) == (4, 0.7, True, 1.0)
    apply(config, EvalSettings(checkpoint="ck/global_step_7"), "eval.parquet", tmp_path)
    assert config.trainer.resume_mode == "resume_path" and config.trainer.resume_from_path.endswith("global_step_7")
    with open_dict(config):
        config.rema = {"models": {"meta": {}, "reasoning": {}}}  # a model per role: both evaluated
    apply(config, EvalSettings(), "eval.parquet", tmp_path)
    assert config.trainer.v1.trainer_mode == "rema_separate_eval"


def test_eval_trainer_modes_are_registered():
    trainer = pytest.importorskip("verl_rema.evaluate.trainer")
    from verl.trainer.ppo.v1 import get_trainer_cls

    from verl_rema.separate.trainer import ReMASeparateTrainer

    assert get_trainer_cls(trainer.TRAINER_MODE) is trainer.ReMAEvalTrainer
    separate = get_trainer_cls(trainer.SEPARATE_TRAINER_MODE)
    assert issubclass(separate, ReMASeparateTrainer) and issubclass(separate, trainer.ValidationRecords)
    assert separate._restore_schedule(object(), {"any": "schedule"}, "ck") is None  # evaluation reads models only


def test_prepare_eval_data_sets_data_source_to_subset(tmp_path):
    path, counts = prepare_eval_data([FIXTURE], tmp_path / "eval.parquet", per_subset=2)
    frame = pd.read_parquet(path)
    assert (frame["data_source"] == frame["subset"]).all()
    assert counts == {s: 2 for s in frame["subset"].unique()} and len(counts) == 8
    _, only = prepare_eval_data([FIXTURE], tmp_path / "b.parquet", subsets=["aime24", "amc23"])
    assert only == {"aime24": 5, "amc23": 5}
    with pytest.raises(ValueError, match=r"eval.subsets \['aime99'\] not in"):
        prepare_eval_data([FIXTURE], tmp_path / "c.parquet", subsets=["aime99"])
    with pytest.raises(FileNotFoundError, match="missing.parquet does not exist"):
        prepare_eval_data([tmp_path / "missing.parquet"], tmp_path / "d.parquet")


def test_prepare_eval_data_defaults_to_the_cleaned_bundled_set(tmp_path):
    _, counts = prepare_eval_data(None, tmp_path / "eval.parquet")
    assert sum(counts.values()) == 3248 and counts["aime24"] == 30 and counts["MATH500"] == 500


# -- the rema_eval trainer's pure parts ----------------------------------------------------------------------------


def test_sidecar_records_and_progress():
    trainer = pytest.importorskip("verl_rema.evaluate.trainer")
    records = trainer.sidecar_records(
        ["u_0_0", "u_0_1"],
        {
            "data_source": ["MATH500", "MATH500"],
            "num_turns": [3, 4],
            "extra_fields": [{"rema_role": "meta", "other": 1}, {"rema_role": "reasoning", "rema_num_rounds": 2}],
        },
    )
    assert records[0] == {"key": "u_0_0", "data_source": "MATH500", "num_turns": 3, "rema_role": "meta"}
    assert records[1]["rema_num_rounds"] == 2
    assert trainer.sidecar_records(["k"], {"extra_fields": None})[0] == {
        "key": "k",
        "data_source": None,
        "num_turns": None,
    }
    assert trainer.as_list(["a", "b"]) == ["a", "b"]  # tensordict's plain-list string columns
    lines: list[str] = []
    progress = trainer.ValidationProgress(10, printer=lines.append)
    progress.update(4)
    assert "4/10" in lines[0] and "question" in lines[0]
