"""Two-role dialogues: both file formats, located errors, the shipped 804, role chats as the rollout renders them,
the protocol's text rules, and the cached parquet build."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from verl_rema.data.schema import BadRowPolicy
from verl_rema.embedded.dialogues import decomposition, make_dialogues
from verl_rema.embedded.task import make_split
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue
from verl_rema.sft.config import ReMASFTDataConfig
from verl_rema.sft.data import MAMRP_ASSET, build, cache_key, sft_data
from verl_rema.sft.dialogues import (
    BadDialogueError,
    Turn,
    TwoRoleDialogue,
    read_llama_factory,
    read_plain,
    write_plain,
)
from verl_rema.sft.views import ViewStats, role_chats, sft_rows

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PROMPTS = load_prompt_set("multiturn")
ERROR = BadRowPolicy("error")


def _dialogue(*texts: str, question: str = "What is 2+3?") -> TwoRoleDialogue:
    roles = [Role.META, Role.REASONING] * len(texts)
    return TwoRoleDialogue(question, tuple(Turn(r, t) for r, t in zip(roles, texts, strict=False)), "mem.jsonl", 7)


def _write_lines(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _llama_factory(dialogue: TwoRoleDialogue) -> tuple[dict, dict]:
    """The reference's two records of a dialogue (see verl_rema/sft/dialogues.py)."""
    ms = [t.text for t in dialogue.turns if t.role is Role.META]
    ys = [t.text for t in dialogue.turns if t.role is Role.REASONING]
    meta_users, ra_users = (
        [dialogue.question, *ys[:-1]],
        [f"Question:\n{dialogue.question}\n\nInstruction:\n{ms[0]}", *ms[1:]],
    )
    meta = {"system": "mta", "input": None, "history": [list(p) for p in zip(meta_users[:-1], ms[:-1], strict=True)]}
    meta.update(instruction=meta_users[-1], output=ms[-1])
    ra = {"system": "ra", "input": None, "history": [list(p) for p in zip(ra_users[:-1], ys[:-1], strict=True)]}
    ra.update(instruction=ra_users[-1], output=ys[-1] + " [FINISH]")
    return meta, ra


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


def test_plain_format_round_trips_and_reads_gzip(tmp_path):
    dialogues = make_dialogues(5, seed=1)
    for name in ("d.jsonl", "d.jsonl.gz"):
        path = write_plain(dialogues, tmp_path / name)
        back = read_plain(path, ERROR)
        assert [(d.question, d.turns) for d in back] == [(d.question, d.turns) for d in dialogues]
        assert [d.origin for d in back] == [f"{path}:{i}" for i in range(1, 6)]
    assert gzip.decompress((tmp_path / "d.jsonl.gz").read_bytes()) == (tmp_path / "d.jsonl").read_bytes()


BAD_PLAIN = [
    ("{not json", "<line>", "not UTF-8 JSON"),
    ('["a list"]', "<line>", "not a JSON object"),
    ({"turns": [{"role": "meta", "content": "m"}, {"role": "reasoning", "content": "r"}]}, "question", "non-empty"),
    ({"question": "q", "turns": "m r"}, "turns", "list of"),
    ({"question": "q", "turns": [{"role": "reasoning", "content": "r"}, {"role": "meta", "content": "m"}]},
     "turns[0].role", "meta expected"),
    ({"question": "q", "turns": [{"role": "meta", "content": "m"}, {"role": "critic", "content": "r"}]},
     "turns[1].role", "must be one of"),
    ({"question": "q", "turns": [{"role": "meta", "content": "m"}, {"role": "reasoning", "content": " "}]},
     "turns[1].content", "empty message"),
    ({"question": "q", "turns": [{"role": "meta", "content": "m"}]}, "turns", "at least one MTA and one RA"),
    ({"question": "q", "turns": [{"role": "meta", "content": "m"}, {"role": "reasoning", "content": "r"},
                                 {"role": "meta", "content": "m2"}]}, "turns", "last message"),
]  # fmt: skip


@pytest.mark.parametrize("record,field,reason", BAD_PLAIN, ids=[f for _, f, _ in BAD_PLAIN])
def test_a_bad_plain_line_is_named_by_file_line_and_field(tmp_path, record, field, reason):
    good = make_dialogues(1, seed=2)[0].to_json()
    path = _write_lines(tmp_path / "bad.jsonl", [good, "", record])
    with pytest.raises(BadDialogueError, match=reason) as caught:
        read_plain(path, ERROR)
    assert str(caught.value).startswith(f"{path}:3: field {field!r}")  # blank lines count
    skip = BadRowPolicy("skip")
    assert len(read_plain(path, skip)) == 1 and len(skip.skipped) == 1


def test_llama_factory_pairs_by_content_not_by_line(tmp_path):
    dialogues = make_dialogues(6, seed=3)
    metas, ras = zip(*(_llama_factory(d) for d in dialogues), strict=True)
    ras = list(ras)
    random.Random(0).shuffle(ras)
    meta_path, ra_path = _write_lines(tmp_path / "m.jsonl", list(metas)), _write_lines(tmp_path / "r.jsonl", ras)
    read = read_llama_factory(meta_path, ra_path, ERROR)
    # The RA's " [FINISH]" is data here (the reader keeps texts as they are; views.py decides).
    expected = [d.turns[:-1] + (Turn(Role.REASONING, d.turns[-1].text + " [FINISH]"),) for d in dialogues]
    assert [d.turns for d in read] == expected
    assert [d.question for d in read] == [d.question for d in dialogues]
    ra_line = ras.index(_llama_factory(dialogues[0])[1]) + 1
    assert read[0].origin == f"{meta_path}:1+{ra_path}:{ra_line}"


def test_llama_factory_problems_name_both_records(tmp_path):
    a, b, c = make_dialogues(3, seed=4)
    (ma, ra), (mb, rb), (mc, _) = _llama_factory(a), _llama_factory(b), _llama_factory(c)
    rb["history"][0][1] = "a different first reply"  # disagrees with the MTA record's view of round 1
    orphan = _llama_factory(make_dialogues(4, seed=4)[3])[1]
    meta_path = _write_lines(tmp_path / "m.jsonl", [ma, mb, mc])
    ra_path = _write_lines(tmp_path / "r.jsonl", [ra, rb, orphan, {"history": "x", "instruction": 1}])
    skip = BadRowPolicy("skip")
    read = read_llama_factory(meta_path, ra_path, skip)
    assert [d.question for d in read] == [a.question]
    messages = sorted(str(e) for e in skip.skipped)
    assert any(m.startswith(f"{ra_path}:4: field 'history'") for m in messages)  # malformed record
    assert any(m.startswith(f"{meta_path}:2: field 'history'") and f"{ra_path}:2" in m and "round 1" in m
               for m in messages)  # fmt: skip
    assert any(m.startswith(f"{meta_path}:3: field 'history[0]'") and "0 RA records" in m for m in messages)
    assert any(m.startswith(f"{ra_path}:3: field 'history[0]'") and "not paired" in m for m in messages)
    assert len(messages) == 4
    with pytest.raises(BadDialogueError):
        read_llama_factory(meta_path, ra_path, ERROR)


def test_the_shipped_dialogues_are_the_reference_files_converted(tmp_path):
    shipped = read_plain(MAMRP_ASSET, ERROR)
    assert len(shipped) == 804 and MAMRP_ASSET.stat().st_size < 1_200_000
    assert sum(d.rounds for d in shipped) == 6625
    if not SHARED.is_dir():
        pytest.skip("the reference files (../shared/data) are not here")
    converted = read_llama_factory(
        SHARED / "mamrp_sft_meta_thinking.jsonl", SHARED / "mamrp_sft_reasoning.jsonl", ERROR
    )
    assert write_plain(converted, tmp_path / "c.jsonl.gz").read_bytes() == MAMRP_ASSET.read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# Role chats
# ---------------------------------------------------------------------------------------------------------------


def test_role_chats_are_the_rollouts_views_cut_after_the_roles_last_message():
    dialogue = _dialogue("Plan: add.", "2+3=5.", "Confirm. [FINISH]", "So \\boxed{5}.")
    chats = role_chats(dialogue, PROMPTS, "append", ViewStats())
    played = Dialogue(dialogue.question, ReMARolloutConfig(prompt_set="multiturn", max_turns=2))
    for turn in dialogue.turns:
        played.record(turn.role, turn.text)
    assert chats[Role.REASONING] == played.view(Role.REASONING)  # ends with the RA's answer already
    assert chats[Role.META] == played.view(Role.META)[:-1]  # the RA's last answer is nothing the MTA learns from
    assert chats[Role.META][0] == {"role": "system", "content": PROMPTS.meta.system}
    assert chats[Role.REASONING][:2] == [
        {"role": "system", "content": PROMPTS.reasoning.system},
        {"role": "user", "content": f"Question:\n{dialogue.question}\n\nInstruction:\nPlan: add."},
    ]


def test_the_reasoning_agent_is_never_taught_the_finish_token():
    stats = ViewStats()
    rows = [
        row
        for dialogue in read_plain(MAMRP_ASSET, ERROR)
        for row in sft_rows(dialogue, PROMPTS, (Role.META, Role.REASONING), "append", stats)
    ]
    assert stats.ra_finish_removed == 804  # the reference's cleaning appended it to every last RA answer
    for row in rows:
        own = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        if row["rema_role"] == "reasoning":
            assert not any("[FINISH]" in text for text in own)
        else:  # the MTA ends every dialogue with it, and only its last message holds it
            assert own[-1].endswith("[FINISH]") and not any("[FINISH]" in text for text in own[:-1])
        assert row["stop"] == ["[FINISH]"]  # the rollout's stop string, for both roles
    assert stats.mta_finish_appended == 207 and stats.mta_cut_after_finish == 4
    assert stats.rows == {"meta": 804, "reasoning": 804}


def test_missing_finish_policies():
    dialogue = _dialogue("Plan.", "Work.", "Looks right.", "\\boxed{5} [FINISH]")
    for policy, last_meta in (("append", "Looks right. [FINISH]"), ("keep", "Looks right.")):
        stats = ViewStats()
        chats = role_chats(dialogue, PROMPTS, policy, stats)
        assert chats[Role.META][-1] == {"role": "assistant", "content": last_meta}
        assert chats[Role.REASONING][-1] == {"role": "assistant", "content": "\\boxed{5}"}
    stats = ViewStats()
    assert role_chats(dialogue, PROMPTS, "drop", stats) is None and stats.dropped_without_finish == 1


def test_protocol_breaking_texts_are_bad_rows():
    early = _dialogue("Plan. [FINISH]", "Work.", "More.", "Done.")
    with pytest.raises(BadDialogueError, match=r"mem.jsonl:7: field 'turns\[0\].content'.*round 1 of 2"):
        role_chats(early, PROMPTS, "append", ViewStats())
    leak = _dialogue("Plan. [FINISH]", "I think [FINISH] then \\boxed{5}.")
    with pytest.raises(BadDialogueError, match=r"turns\[1\].content.*mid-text"):
        role_chats(leak, PROMPTS, "append", ViewStats())
    with pytest.raises(ValueError, match="no meta role"):
        role_chats(leak, load_prompt_set("cot"), "append", ViewStats())


def test_embedded_dialogues_decompose_the_problem_exactly():
    problems = make_split(300, seed=9)
    for problem in problems:
        m1, y1, m2, y2 = (turn.text for turn in decomposition(problem))
        a, b, c = (int(x) for x in re.findall(r"\d+", problem.expression))
        first = a - b if problem.form == 1 else a + b
        assert m1 == f"First compute {a}{'-' if problem.form == 1 else '+'}{b}." and y1.endswith(f"={first}.")
        assert (
            m2.endswith(f" {c}. [FINISH]") and y2 == f"{y2.split('=')[0]}={problem.answer}. \\boxed{{{problem.answer}}}"
        )
        assert y2.startswith(str(first))
    excluded = {p.expression for p in problems[:100]}
    dialogues = make_dialogues(200, seed=9, exclude=excluded)
    assert not any(d.question in {p.question for p in problems[:100]} for d in dialogues)
    assert [d.to_json() for d in dialogues] == [d.to_json() for d in make_dialogues(200, seed=9, exclude=excluded)]


# ---------------------------------------------------------------------------------------------------------------
# Building the parquet files
# ---------------------------------------------------------------------------------------------------------------


def test_build_holds_out_whole_dialogues_and_writes_veRL_rows(tmp_path):
    source = write_plain(make_dialogues(20, seed=6), tmp_path / "d.jsonl")
    report = build(ReMASFTDataConfig(source=str(source), val_dialogues=4), tmp_path / "out")
    train, val = pd.read_parquet(tmp_path / "out" / "train.parquet"), pd.read_parquet(tmp_path / "out" / "val.parquet")
    assert (len(train), len(val)) == (32, 8) and report["train_rows"] == 32 and report["val_rows"] == 8
    assert set(train["origin"]).isdisjoint(val["origin"])  # both views of a held-out dialogue are held out
    assert sorted(train["rema_role"].value_counts().tolist()) == [16, 16]
    message = train.iloc[0]["messages"][0]
    assert set(message) == {"role", "content"}
    only_ra = build(ReMASFTDataConfig(source=str(source), roles=["reasoning"]), tmp_path / "ra")
    assert only_ra["rows"] == {"reasoning": 20} and not (tmp_path / "ra" / "val.parquet").exists()


def test_build_reports_skipped_rows_or_stops_at_the_first(tmp_path):
    source = _write_lines(tmp_path / "d.jsonl", [make_dialogues(1, seed=7)[0].to_json(), "{oops"])
    with pytest.raises(BadDialogueError, match=f"{source}:2"):
        build(ReMASFTDataConfig(source=str(source)), tmp_path / "a")
    report = build(ReMASFTDataConfig(source=str(source), on_bad_row="skip"), tmp_path / "b")
    assert report["train_rows"] == 2 and report["skipped_bad_rows"][0].startswith(f"{source}:2")


def test_cache_key_follows_settings_and_source_bytes(tmp_path):
    source = write_plain(make_dialogues(3, seed=8), tmp_path / "d.jsonl")
    base = ReMASFTDataConfig(source=str(source))
    assert cache_key(base) == cache_key(ReMASFTDataConfig(source=str(source)))
    assert cache_key(base) != cache_key(ReMASFTDataConfig(source=str(source), roles=["meta"]))
    assert cache_key(base) != cache_key(ReMASFTDataConfig(source=str(source), missing_finish="keep"))
    inline = {"base": "multiturn", "reasoning": {"system": "Reason carefully."}}
    assert cache_key(base) != cache_key(ReMASFTDataConfig(source=str(source), prompt_set=inline))
    paths = sft_data(base, root=tmp_path / "cache")
    stamp = paths.train.stat().st_mtime_ns
    assert sft_data(base, root=tmp_path / "cache").train.stat().st_mtime_ns == stamp  # reused
    write_plain(make_dialogues(4, seed=8), source)
    assert sft_data(base, root=tmp_path / "cache").root != paths.root  # new bytes, new build


@pytest.mark.parametrize(
    "values,message",
    [
        ({"roles": ["critic"]}, "rema.sft.roles"),
        ({"roles": []}, "rema.sft.roles"),
        ({"missing_finish": "fix"}, "rema.sft.missing_finish"),
        ({"on_bad_row": "ignore"}, "rema.sft.on_bad_row"),
        ({"val_dialogues": -1}, "rema.sft.val_dialogues"),
        ({"source": {"meta": "a.jsonl"}}, "rema.sft.source"),
        ({"source": []}, "rema.sft.source"),
        ({"sorce": "mamrp"}, "rema.sft.sorce"),
    ],
)
def test_config_errors_name_the_key(values, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        ReMASFTDataConfig.from_config(values)
    assert ReMASFTDataConfig.from_config({"roles": "both"}).role_views == (Role.META, Role.REASONING)


def test_embedded_source_builds_into_the_cache_without_the_validation_questions(embedded, monkeypatch):
    from verl_rema.build_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(embedded.root.parent.parent))  # the session's embedded build
    paths = sft_data(ReMASFTDataConfig(source="embedded", embedded_dialogues=64, val_dialogues=8))
    assert paths.root.parent == embedded.root.parent.parent / "sft"
    train, val = pd.read_parquet(paths.train), pd.read_parquet(paths.val)
    assert (len(train), len(val)) == (112, 16)
    rl_val = set(pd.read_parquet(embedded.val)["question"])
    assert rl_val.isdisjoint(train["question"]) and rl_val.isdisjoint(val["question"])
    assert json.loads(paths.report.read_text())["dialogues"] == 64
