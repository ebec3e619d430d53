"""Rollout faults (issue 16, item 6), against the real ``rema`` agent loop and a scripted engine that misbehaves
(tests/unit/rollout_harness.py): the engine aborting a request, returning fewer (or more, or no) log-probs than
tokens, replying with nothing in the middle of a dialogue, ignoring the token budget; and a row that comes out
misaligned. Each episode either ends with a named finish reason and token-exact rows, or raises an error that names
the dataset row (and the turn), so that no step trains on it.
"""

from __future__ import annotations

import pytest

from tests.unit.rollout_harness import (
    ROW,
    SAMPLING,
    TEMPLATES,
    Reply,
    ScriptedEngine,
    assert_token_exact,
    episode,
    make_tokenizer,
)
from verl_rema.protocol import FINISH_REASONS
from verl_rema.rollout.rema_agent_loop import ReMAAgentLoop

ROW_LABEL = r"row\(index=7, uid=uid-7, data_source=unit\)"
MTA_1, RA_1 = "Let us factor the quadratic first.", "The roots are 2 and 3."
MTA_2, RA_2 = "Then the smaller root is 2. [FINISH]", "So the answer is \\boxed{2}."
TURNS = [("meta", 0), ("reasoning", 0), ("meta", 1), ("reasoning", 1)]  # (role, its k-th message), in speaking order


@pytest.fixture(scope="module", params=["chatml", "llama3"])
def tokenizer(request):
    tok = make_tokenizer(TEMPLATES[request.param])
    tok.end_of_turn = TEMPLATES[request.param].end_of_turn
    return tok


def script(**replace: Reply) -> dict[str, list]:
    """The normal two-round dialogue, with ``{role}{k}=Reply(...)`` replacing the role's k-th message."""
    lines = {"meta": [MTA_1, MTA_2], "reasoning": [RA_1, RA_2]}
    for key, reply in replace.items():
        lines[key[:-1]][int(key[-1])] = reply
    return lines


def play(tokenizer, lines, **kwargs):
    return episode(tokenizer, lines, end_of_turn=tokenizer.end_of_turn, **kwargs)


class FaultyEngine(ScriptedEngine):
    """The scripted engine whose ``fault_at``-th reply is passed through ``fault`` (a TokenOutput -> TokenOutput)."""

    fault_at: int = -1
    fault = staticmethod(lambda output: output)

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        output = await super().generate(request_id, prompt_ids=prompt_ids, sampling_params=sampling_params, **kwargs)
        return type(self).fault(output) if len(self.calls) - 1 == type(self).fault_at else output


@pytest.fixture
def faulty(monkeypatch):
    """Swap the harness's engine for :class:`FaultyEngine`; returns a setter for (call index, fault)."""
    import tests.unit.rollout_harness as harness

    monkeypatch.setattr(harness, "ScriptedEngine", FaultyEngine)

    def set_fault(at: int, fault) -> None:
        monkeypatch.setattr(FaultyEngine, "fault_at", at)
        monkeypatch.setattr(FaultyEngine, "fault", staticmethod(fault))

    return set_fault


@pytest.mark.parametrize(("call", "turn"), enumerate(TURNS), ids=[f"{r}{k}" for r, k in TURNS])
@pytest.mark.parametrize("partial", [False, True], ids=["nothing", "partial"])
def test_an_engine_abort_is_an_error_naming_the_row_and_the_turn(tokenizer, call, turn, partial):
    role, k = turn
    reply = Reply("The roots are" if partial else "", tokens=None if partial else [], stop_reason="aborted")
    with pytest.raises(RuntimeError, match=rf"{ROW_LABEL}: the engine aborted the {role} turn"):
        play(tokenizer, script(**{f"{role}{k}": reply}))


LOGPROB_FAULTS = {
    "one fewer": (lambda lps: lps[:-1], lambda n: n - 1),
    "none": (lambda lps: None, lambda n: None),
    "one more": (lambda lps: [*lps, -0.5], lambda n: n + 1),
}


@pytest.mark.parametrize("fault", list(LOGPROB_FAULTS))
@pytest.mark.parametrize("call", [0, 1, 3], ids=["first MTA", "first RA", "last RA"])
def test_log_probs_that_do_not_match_the_tokens_are_an_error_naming_the_row(tokenizer, faulty, fault, call):
    change, got = LOGPROB_FAULTS[fault]
    faulty(call, lambda out: out.model_copy(update={"log_probs": change(out.log_probs)}))
    with pytest.raises(RuntimeError, match=rf"{ROW_LABEL}: the engine returned (\d+|None) log-probs for (\d+) tokens") as error:  # fmt: skip
        play(tokenizer, script())
    returned, tokens = error.value.args[0].rsplit("returned ", 1)[1].split(" log-probs for ")
    assert returned == str(got(int(tokens.split()[0])))


def test_log_probs_are_not_checked_when_not_requested(tokenizer, faulty):
    """The same fault with ``logprobs`` off is no fault: the rows carry no log-probs and train on recomputed ones."""
    faulty(1, lambda out: out.model_copy(update={"log_probs": [-1.0]}))
    outputs, engine = play(tokenizer, script(), sampling={**SAMPLING, "logprobs": False})
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["normal", "normal"]
    assert all(o.response_logprobs is None for o in outputs)


@pytest.mark.parametrize(
    ("empty", "finish", "answer"),
    [
        ("meta1", "max_turns", RA_2),  # the MTA's [FINISH] message comes back empty: no finish, the rounds run out
        ("reasoning0", "normal", RA_2),
        ("reasoning1", "normal", ""),  # the final answer is empty (scored as no answer)
    ],
)
def test_an_empty_reply_mid_dialogue_ends_with_a_named_finish_reason_and_aligned_rows(tokenizer, empty, finish, answer):
    outputs, engine = play(tokenizer, script(**{empty: Reply(tokens=[])}), max_turns=2)
    reasons = {o.extra_fields["rema_finish_reason"] for o in outputs}
    assert reasons == {finish} and finish in FINISH_REASONS
    assert outputs[-1].extra_fields["rema_final_answer"] == answer
    for output, role in zip(outputs, ("meta", "reasoning"), strict=True):
        assert_token_exact(output, engine.of(role))  # an empty turn adds its context and no action token
    role = empty[:-1]
    assert outputs[0].extra_fields["rema_metrics"][f"rema/{role}/empty_turn_rate"] > 0


def test_an_engine_that_ignores_the_token_budget_ends_the_episode_truncated(tokenizer, faulty):
    """vLLM never exceeds max_tokens; if an engine did, the message counts as cut off: finish reason truncated."""
    faulty(0, lambda out: out.model_copy(update={"token_ids": [*out.token_ids, *out.token_ids], "log_probs": [*out.log_probs, *out.log_probs]}))  # fmt: skip
    outputs, engine = play(tokenizer, script(), max_tokens_per_message=12)
    assert {o.extra_fields["rema_finish_reason"] for o in outputs} == {"truncated"}
    assert len(engine.calls) == 1 and sum(outputs[0].response_mask) == 2 * len(engine.calls[0].token_ids)


def test_a_misaligned_row_never_leaves_the_loop(tokenizer, monkeypatch):
    """Whatever drifts (an upstream token builder, a merge dropping a token), the row is refused, naming the row."""
    append = ReMAAgentLoop._append_reply

    def drifting_append(self, track, ids, reply, want_logprobs, row):
        append(self, track, ids, reply, want_logprobs, row)
        if ids and len(track.logprobs or []) > 3:
            track.logprobs.pop(-2)  # one log-prob lost: every later position would be misattributed

    monkeypatch.setattr(ReMAAgentLoop, "_append_reply", drifting_append)
    with pytest.raises(RuntimeError, match=rf"{ROW_LABEL}: misaligned (meta|reasoning) row: \d+ response tokens, \d+ mask values, \d+ log-probs"):  # fmt: skip
        play(tokenizer, script())


def test_the_clean_dialogue_passes_the_same_harness(tokenizer, faulty):
    """The faults above are the only difference: the same script, unmodified, plays normally and token-exact."""
    faulty(-1, lambda out: out)
    outputs, engine = play(tokenizer, script())
    assert [o.extra_fields["rema_finish_reason"] for o in outputs] == ["normal", "normal"]
    assert_token_exact(outputs[0], engine.of("meta"))
    assert_token_exact(outputs[1], engine.of("reasoning"))
    assert ROW["index"] == 7
