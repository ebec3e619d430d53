"""The toy evaluator plays the rollout's dialogue protocol and scores it with the project's math reward: checked on
hand-made dialogues and on a scripted "model" that answers by a fixed plan, without training anything."""

from __future__ import annotations

import re

import pytest

from verl_rema.embedded.dialogues import decomposition
from verl_rema.embedded.task import make_split
from verl_rema.experiments.toy import evaluate
from verl_rema.experiments.toy.evaluate import EvalItem, play, rollout_config, score, summarise
from verl_rema.protocol import FinishReason, Role
from verl_rema.rollout.dialogue import Dialogue

PROBLEMS = make_split(12, seed=3)
ITEMS = [EvalItem(p.question, str(p.answer), p.form) for p in PROBLEMS]


def _played(problem, texts, config=None) -> Dialogue:
    dialogue = Dialogue(problem.question, config or rollout_config())
    for text in texts:
        dialogue.record(dialogue.next_role(), text)
    return dialogue


def test_a_finished_correct_dialogue_scores_one_and_a_wrong_or_unfinished_one_zero():
    problem = PROBLEMS[0]
    right = [turn.text for turn in decomposition(problem)]
    assert score(_played(problem, right), str(problem.answer)) == 1.0
    wrong = [turn.text for turn in decomposition(problem, wrong_plan=True)]
    if problem.form != 1:  # form 1's wrong plan may not exist (negative); the others always differ
        assert score(_played(problem, wrong), str(problem.answer)) == 0.0
    # The right answer, but the MTA never wrote [FINISH]: max_turns, masked like the reward does in training
    unfinished = _played(problem, [right[0], right[1], right[2].replace(" [FINISH]", ""), right[3]])
    assert unfinished.finish_reason is FinishReason.MAX_TURNS
    assert score(unfinished, str(problem.answer)) == 0.0


def test_summarise_gives_accuracy_per_form_and_finish_reasons():
    dialogues = [_played(p, [t.text for t in decomposition(p, wrong_plan=p.form == 0)]) for p in PROBLEMS]
    result = summarise(dialogues, ITEMS)
    forms = {str(p.form) for p in PROBLEMS}
    assert result.n == len(PROBLEMS) and result.finish == {FinishReason.NORMAL.value: len(PROBLEMS)}
    assert result.per_form == {f: (0.0 if f == "0" else 1.0) for f in sorted(forms)}
    assert result.accuracy == pytest.approx(sum(p.form != 0 for p in PROBLEMS) / len(PROBLEMS))
    assert result.samples[0][0]["role"] == Role.META.value


def _scripted(wrong_forms: set[int], finish: bool = True):
    """A stand-in for greedy generation: the teacher's next message for each chat's question, read off the chat."""

    def reply(model, tokenizer, chats, max_new_tokens):
        out = []
        for chat in chats:
            text = chat[1]["content"]
            question = re.search(r"Compute [^ ]+ Put the answer in \\boxed\{\}\.", text).group(0)
            problem = next(p for p in PROBLEMS if p.question == question)
            turns = [t.text for t in decomposition(problem, wrong_plan=problem.form in wrong_forms)]
            if not finish:
                turns[2] = turns[2].replace(" [FINISH]", "")
            said = sum(1 for m in chat[2:] if m["role"] == "assistant")
            meta = chat[0]["content"].startswith("You are a meta-think agent")
            out.append((turns[2 * said if meta else 2 * said + 1], False))
        return out

    return reply


def test_play_runs_the_protocol_turn_by_turn(monkeypatch):
    monkeypatch.setattr(evaluate, "greedy_messages", _scripted(wrong_forms={0}))
    dialogues = play(None, None, [item.question for item in ITEMS], rollout_config(), batch_size=5)
    assert all(d.finish_reason is FinishReason.NORMAL and d.rounds == 2 for d in dialogues)
    result = summarise(dialogues, ITEMS)
    assert result.per_form["0"] == 0.0 and all(v == 1.0 for f, v in result.per_form.items() if f != "0")

    monkeypatch.setattr(evaluate, "greedy_messages", _scripted(wrong_forms=set(), finish=False))
    dialogues = play(None, None, [item.question for item in ITEMS], rollout_config(max_turns=2))
    assert {d.finish_reason for d in dialogues} == {FinishReason.MAX_TURNS}
    assert summarise(dialogues, ITEMS).accuracy == 0.0


def test_greedy_messages_reports_a_reply_that_hit_its_budget(embedded):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.model))
    model = AutoModelForCausalLM.from_pretrained(str(embedded.model))
    chats = [[{"role": "user", "content": item.question}] for item in ITEMS[:2]]
    replies = evaluate.greedy_messages(model, tokenizer, chats, max_new_tokens=3)
    assert len(replies) == 2 and all(isinstance(text, str) for text, _ in replies)
    assert all(hit for _, hit in replies)  # the random model never ends a message within 3 tokens
    assert tokenizer.padding_side == "right" or tokenizer.padding_side == "left"


def test_plan_probabilities_are_probabilities_of_the_teachers_two_second_messages(embedded):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.model))
    model = AutoModelForCausalLM.from_pretrained(str(embedded.model)).eval()
    problems = [p for p in PROBLEMS if p.form == 0][:2] + [p for p in PROBLEMS if p.form == 2][:1]
    plans = evaluate.plan_probabilities(model, tokenizer, problems)
    assert set(plans) == {"0", "2"}
    for form in plans.values():
        assert 0 <= form["right"] and 0 <= form["wrong"] and form["right"] + form["wrong"] <= 1
    chat = [{"role": "user", "content": PROBLEMS[0].question}]
    whole = evaluate.message_logprob(model, tokenizer, chat, "First compute 1+2.")
    assert whole < evaluate.message_logprob(model, tokenizer, chat, "First") <= 0  # a longer text is less likely


def test_the_cli_scores_a_toy_checkpoint_on_the_toy_task_with_its_prompts(tmp_path, capsys):
    """`--toy rema`: the toy validation set and the prompts the warm start was taught (0.66 on all 256). Without the
    flag's effect (the default task's two-digit problems, the paper's prompts) this model would score near 0."""
    import json

    from verl_rema.experiments.toy.warm_start import warm_start_paths

    model = warm_start_paths("rema", root=tmp_path).model  # a copy of the shipped build
    evaluate.main([str(model), "--toy", "rema", "--n", "24"])
    toy = json.loads(capsys.readouterr().out)
    assert toy["n"] == 24 and toy["finish"] == {"normal": 24} and toy["accuracy"] >= 0.4, toy
    assert set(toy["per_form"]) == {"0", "1", "2"} and toy["per_form"]["1"] > 0.5
