"""Greedy two-role (or CoT) accuracy of an HF checkpoint with plain transformers: no Ray, no vLLM, seconds on a CPU.

The dialogue is played by the rollout's own protocol (:class:`verl_rema.rollout.dialogue.Dialogue`: its views, its
cut after ``[FINISH]``, its finish reasons), one greedy message per turn of at most ``max_tokens_per_message``
tokens, and scored by the project's math reward (:func:`verl_rema.rewards.math_reward.compute_score`, unfinished
episodes masked), so its accuracy is the one veRL's greedy validation reports up to engine numerics (the spike saw
0.336 here against 0.320 with vLLM bf16). Used to find where SFT plateaus and to check a built warm start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from verl_rema.protocol import FINAL_ANSWER_FIELD, FINISH_REASON_FIELD, Role
from verl_rema.rollout.config import ReMARolloutConfig
from verl_rema.rollout.dialogue import Dialogue

END_OF_TURN = "<|im_end|>"


@dataclass(frozen=True)
class EvalItem:
    """One validation prompt: its question, gold answer and form (the per-form breakdown's key)."""

    question: str
    ground_truth: str
    form: int | str = 0


@dataclass
class EvalResult:
    """Accuracy (masked reward mean), per form, finish reasons and a few played dialogues to look at."""

    accuracy: float
    per_form: dict[str, float]
    finish: dict[str, int]
    n: int
    samples: list[list[dict[str, str]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "per_form": self.per_form, "finish": self.finish, "n": self.n}


def load_items(val_parquet: str | Path, n: int | None = None) -> list[EvalItem]:
    """The first ``n`` prompts of an embedded RL parquet file (``embedded_paths().val``)."""
    import pandas as pd

    frame = pd.read_parquet(val_parquet)
    if n is not None:
        frame = frame.iloc[:n]
    return [
        EvalItem(str(q), str(rm["ground_truth"]), int(extra["form"]))
        for q, rm, extra in zip(frame["question"], frame["reward_model"], frame["extra_info"], strict=True)
    ]


def rollout_config(prompt_set: str = "multiturn", max_turns: int = 2, max_tokens: int = 32) -> ReMARolloutConfig:
    """The agent loop's settings of the toy runs: 2 rounds, 32-token messages, stop on a truncated message."""
    return ReMARolloutConfig(prompt_set=prompt_set, max_turns=max_turns, max_tokens_per_message=max_tokens)


@torch.no_grad()
def greedy_messages(
    model: Any, tokenizer: Any, chats: Sequence[list[dict[str, str]]], max_new_tokens: int
) -> list[tuple[str, bool]]:
    """One greedy reply per chat: ``(text, hit_limit)``; the reply stops at the end-of-turn token."""
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    texts = [tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) for chat in chats]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    out = model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end, pad_token_id=tokenizer.pad_token_id
    )
    replies = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        stopped = end in row
        row = row[: row.index(end)] if stopped else [t for t in row if t != tokenizer.pad_token_id]
        replies.append((tokenizer.decode(row, skip_special_tokens=True), not stopped and len(row) >= max_new_tokens))
    return replies


def play(
    model: Any, tokenizer: Any, questions: Sequence[str], config: ReMARolloutConfig, batch_size: int = 256
) -> list[Dialogue]:
    """Greedy episodes of ``questions``, all advanced one turn at a time in batches."""
    dialogues = [Dialogue(q, config) for q in questions]
    while live := [d for d in dialogues if not d.done]:
        for start in range(0, len(live), batch_size):
            group = live[start : start + batch_size]
            by_role: dict[Role, list[Dialogue]] = {}
            for dialogue in group:
                by_role.setdefault(dialogue.next_role(), []).append(dialogue)
            for role, members in by_role.items():
                budget = config.message_tokens(role)
                replies = greedy_messages(model, tokenizer, [d.view(role) for d in members], budget)
                for dialogue, (text, hit) in zip(members, replies, strict=True):
                    dialogue.record(role, text, hit_limit=hit)
    return dialogues


def score(dialogue: Dialogue, ground_truth: str) -> float:
    """The math reward of the episode: the RA's last message, masked unless the episode finished normally."""
    from verl_rema.rewards.math_reward import compute_score

    info = {FINAL_ANSWER_FIELD: dialogue.final_answer, FINISH_REASON_FIELD: dialogue.finish_reason.value}
    return float(compute_score(solution_str=dialogue.final_answer, ground_truth=ground_truth, extra_info=info,
                               num_procs=1)["score"])  # fmt: skip


def summarise(dialogues: Sequence[Dialogue], items: Sequence[EvalItem], samples: int = 3) -> EvalResult:
    """Accuracy, per-form accuracy and finish reasons of played episodes."""
    scores = [score(d, item.ground_truth) for d, item in zip(dialogues, items, strict=True)]
    forms: dict[str, list[float]] = {}
    for item, value in zip(items, scores, strict=True):
        forms.setdefault(str(item.form), []).append(value)
    return EvalResult(
        accuracy=sum(scores) / max(len(scores), 1),
        per_form={form: sum(v) / len(v) for form, v in sorted(forms.items())},
        finish=dict(Counter(d.finish_reason.value for d in dialogues)),
        n=len(scores),
        samples=[[{"role": m.role.value, "text": m.text} for m in d.messages] for d in dialogues[:samples]],
    )


def evaluate_model(
    model: Any, tokenizer: Any, items: Sequence[EvalItem], config: ReMARolloutConfig | None = None
) -> EvalResult:
    """Greedy accuracy of a loaded model (put in eval mode, restored after)."""
    config = config or rollout_config()
    training = model.training
    model.eval()
    try:
        dialogues = play(model, tokenizer, [item.question for item in items], config)
    finally:
        model.train(training)
    return summarise(dialogues, items)


@torch.no_grad()
def message_logprob(model: Any, tokenizer: Any, chat: list[dict[str, str]], message: str) -> float:
    """Log-probability that the model, speaking next in ``chat``, writes exactly ``message`` (its tokens, no
    end-of-turn: a message ending in the finish token stops there in the rollout)."""
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    prefix = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(prompt + message, add_special_tokens=False)["input_ids"]
    if ids[: len(prefix)] != prefix:
        raise ValueError(f"the message's tokens merge with the chat's: {message!r}")
    logits = model(input_ids=torch.tensor([ids])).logits[0, len(prefix) - 1 : -1].float()
    target = torch.tensor(ids[len(prefix) :])
    return float(torch.log_softmax(logits, -1).gather(1, target[:, None]).sum())


def plan_probabilities(
    model: Any, tokenizer: Any, problems: Sequence[Any], config: ReMARolloutConfig | None = None
) -> dict[str, dict[str, float]]:
    """Per form, the mean probability that the MTA's second message is the right plan and the teacher's wrong
    one, after the teacher's first round: how often sampling (temperature 1) explores the plan a reward favours."""
    import math

    from verl_rema.embedded.dialogues import decomposition

    config = config or rollout_config()
    sums: dict[str, list[float]] = {}
    for problem in problems:
        right, wrong = decomposition(problem), decomposition(problem, wrong_plan=True)
        dialogue = Dialogue(problem.question, config)
        for turn in right[:2]:
            dialogue.record(turn.role, turn.text)
        chat = dialogue.view(Role.META)
        p_right = math.exp(message_logprob(model, tokenizer, chat, right[2].text))
        p_wrong = math.exp(message_logprob(model, tokenizer, chat, wrong[2].text)) if wrong != right else 0.0
        entry = sums.setdefault(str(problem.form), [0.0, 0.0, 0])
        entry[0], entry[1], entry[2] = entry[0] + p_right, entry[1] + p_wrong, entry[2] + 1
    return {form: {"right": r / n, "wrong": w / n} for form, (r, w, n) in sorted(sums.items())}


def evaluate_checkpoint(
    path: str | Path, items: Sequence[EvalItem], config: ReMARolloutConfig | None = None
) -> EvalResult:
    """Greedy accuracy of an HF checkpoint folder (e.g. ``global_step_N/huggingface``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="sdpa")
    return evaluate_model(model, tokenizer, items, config)


__all__ = [
    "EvalItem",
    "EvalResult",
    "evaluate_checkpoint",
    "evaluate_model",
    "greedy_messages",
    "load_items",
    "message_logprob",
    "plan_probabilities",
    "play",
    "rollout_config",
    "score",
    "summarise",
]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m verl_rema.experiments.toy.evaluate CHECKPOINT [--toy rema|cot] [--n 256]``: print the JSON.
    ``--toy``: a checkpoint of a ``+toy=`` run (the toy validation set and the prompts that warm start was taught);
    otherwise ``--prompt-set`` / ``--val`` (default: the embedded default's)."""
    import argparse
    import json

    from verl_rema.embedded import embedded_paths
    from verl_rema.experiments.toy.warm_start import RECIPES, prompt_set, warm_start_paths

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--toy", choices=sorted(RECIPES), help="the toy task's validation set and prompts")
    parser.add_argument("--prompt-set", default="multiturn")
    parser.add_argument("--n", type=int, default=256, help="validation prompts (the embedded set has 256)")
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--val", type=Path, default=None, help="default: the embedded validation set")
    args = parser.parse_args(argv)
    if args.toy:  # only the data the checkpoint needs is looked up (or built, on an empty cache)
        prompts, val = prompt_set(args.toy), args.val or warm_start_paths(args.toy).val
    else:
        prompts, val = args.prompt_set, args.val or embedded_paths().val
    items = load_items(val, args.n)
    result = evaluate_checkpoint(args.checkpoint, items, rollout_config(prompts, args.max_turns))
    print(json.dumps({**result.as_dict(), "sample": result.samples[:1]}, indent=1))


if __name__ == "__main__":
    main()
