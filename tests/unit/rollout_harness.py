"""Drive the real ``rema`` agent loop against a scripted engine, with tiny tokenizers of several chat templates.

No model and no download: byte-level BPE tokenizers are trained here on a few sentences; a fake server manager with
veRL's ``generate`` signature replies from a per-role script (deterministic token ids and log-probs), emulating
vLLM's stop strings, stop token ids and max_tokens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from verl.workers.rollout.replica import TokenOutput

import verl_rema.rollout  # noqa: F401  (registers the agent loop)
from verl_rema.prompts import available_prompt_sets, load_prompt_set
from verl_rema.rollout.standalone import make_agent_loop, trainer_config

QUESTION = "What is the smaller root of x^2 - 5x + 6 = 0? Use \\frac{a}{b} if needed."
ROW = {
    "question": QUESTION,
    "index": 7,
    "uid": "uid-7",
    "data_source": "unit",
    "raw_prompt": [{"role": "user", "content": QUESTION + " Let's think step by step."}],
    "global_steps": 3,
}
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Template:
    """A tokenizer recipe: its chat template, special tokens, eos and the token that ends a message."""

    name: str
    chat_template: str
    specials: tuple[str, ...]
    eos: str
    end_of_turn: str
    bos: str | None = None
    pad: str = "<|endoftext|>"


TEMPLATES = {
    # Qwen2.5-Instruct's ChatML: the eos is the end-of-turn token.
    "chatml": Template("chatml", CHATML, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "<|im_end|>", "<|im_end|>"),
    # A ChatML base model after SFT: its generation config's eos is <|endoftext|>, messages end with <|im_end|>.
    "chatml_base_eos": Template(
        "chatml_base_eos", CHATML, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "<|endoftext|>", "<|im_end|>"
    ),
    # Llama 3.1: bos, header tokens, trimmed contents, <|eot_id|>; a base model's eos is <|end_of_text|>.
    "llama3": Template(
        "llama3",
        LLAMA3,
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|end_of_text|>",
        "<|eot_id|>",
        bos="<|begin_of_text|>",
        pad="<|end_of_text|>",
    ),
}


def prompt_texts() -> list[str]:
    texts = []
    for name in available_prompt_sets():
        prompts = load_prompt_set(name)
        for role in (prompts.meta, prompts.reasoning):
            if role is not None:
                texts += [role.system, role.first_user]
    return texts


def make_tokenizer(template: Template) -> PreTrainedTokenizerFast:
    corpus = [
        "Let us factor the quadratic first. Then check the roots.",
        "The roots are 2 and 3, so the smaller root is 2.",
        "So the answer is \\boxed{2}. [FINISH]",
        "Question: Instruction: What is the smaller root?",
        *prompt_texts(),
    ]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=list(template.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=template.eos,
        pad_token=template.pad,
        bos_token=template.bos,
        chat_template=template.chat_template,
    )


@dataclass
class Reply:
    text: str = ""
    stops: bool = True  # the model ends its message (samples the end-of-turn token)
    tokens: list[int] | None = None  # explicit sampled ids instead of encoding `text` (e.g. [] for nothing)
    stop_reason: str = "completed"


@dataclass
class Call:
    role: str
    prompt_ids: list[int]
    token_ids: list[int]
    log_probs: list[float]
    sampling_params: dict[str, Any]
    request_id: str = ""


class ScriptedEngine:
    """Replies from a per-role script; the role is recognised from the system prompt only, as the model would.

    A plain class, not a dataclass: hydra.utils.instantiate would turn a dataclass argument into a config.
    """

    def __init__(self, tokenizer: Any, system_prompts: dict[str, str], script: dict[str, list], end_of_turn: str):
        self.tokenizer = tokenizer
        self.system_prompts = system_prompts
        self.script = script
        self.end_of_turn = tokenizer.convert_tokens_to_ids(end_of_turn)
        self.calls: list[Call] = []

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        roles = [r for r, s in self.system_prompts.items() if s.strip() in text]  # a template may trim it
        assert len(roles) == 1, f"cannot tell the role from the prompt: {text[:120]!r}"
        role = roles[0]
        reply = self.script[role].pop(0)
        reply = Reply(reply) if isinstance(reply, str) else reply
        ids = list(reply.tokens) if reply.tokens is not None else self.tokenizer.encode(reply.text)
        stopped = False
        for stop in sampling_params.get("stop") or []:  # vLLM: cut after the token that completes a stop string
            hit = next((k for k in range(1, len(ids) + 1) if stop in self.tokenizer.decode(ids[:k])), None)
            if hit is not None:
                ids, stopped = ids[:hit], True
        if reply.stops and reply.tokens is None and not stopped:
            ids.append(self.end_of_turn)
        stop_ids = set(sampling_params.get("stop_token_ids") or [])  # vLLM: stop on (and keep) a stop token id
        cut = next((k + 1 for k, token in enumerate(ids) if token in stop_ids), len(ids))
        ids = ids[: min(cut, sampling_params["max_tokens"])]
        log_probs = [-(len(self.calls) + 1) - (j + 1) / 1000 for j in range(len(ids))]  # unique per position
        self.calls.append(Call(role, list(prompt_ids), ids, log_probs, dict(sampling_params), request_id))
        return TokenOutput(
            token_ids=ids,
            log_probs=log_probs if sampling_params.get("logprobs") else None,
            stop_reason=reply.stop_reason,
            num_preempted=0,
            extra_fields={"global_steps": 5, "min_global_steps": 5, "max_global_steps": 5},
        )

    def roles(self) -> list[str]:
        return [call.role for call in self.calls]

    def of(self, role: str) -> list[Call]:
        return [call for call in self.calls if call.role == role]


def make_loop(tokenizer, engine, hf_model_type: str | None = None, use_v1: bool = True, **rema_rollout: Any):
    """Instantiate the loop exactly as veRL's AgentLoopWorker does: registry entry + hydra.utils.instantiate."""
    return make_agent_loop(trainer_config(rema_rollout, use_v1=use_v1), engine, tokenizer, hf_model_type)


def episode(
    tokenizer,
    script: dict[str, list[Reply | str]],
    *,
    row: dict[str, Any] | None = None,
    sampling: dict[str, Any] | None = None,
    hf_model_type: str | None = None,
    end_of_turn: str = "<|im_end|>",
    **rema_rollout: Any,
):
    prompts = load_prompt_set(rema_rollout.get("prompt_set", "multiturn"))
    systems = {"reasoning": prompts.reasoning.system, **({"meta": prompts.meta.system} if prompts.meta else {})}
    engine = ScriptedEngine(tokenizer, systems, {role: list(r) for role, r in script.items()}, end_of_turn)

    async def play():
        loop = make_loop(tokenizer, engine, hf_model_type=hf_model_type, **rema_rollout)
        return await loop.run(dict(sampling or SAMPLING), **(row or ROW))

    return asyncio.run(play()), engine


def assert_token_exact(row, calls: list[Call], logprobs: bool = True) -> None:
    """Mask 1 exactly on the tokens this role sampled, in order, each generate call's prompt being the row's prefix."""
    full = row.prompt_ids + row.response_ids
    n_prompt = len(row.prompt_ids)
    mask = [0] * len(row.response_ids)
    lps = [0.0] * len(row.response_ids)
    assert calls and len(calls[0].prompt_ids) == n_prompt, "the row's prompt is exactly the first generate prompt"
    end = n_prompt
    for call in calls:
        start = len(call.prompt_ids)
        assert start >= end, "calls are in order and do not overlap"
        assert full[:start] == call.prompt_ids, "the engine saw exactly the row's prefix"
        assert full[start : start + len(call.token_ids)] == call.token_ids, "sampled ids are in the row unchanged"
        for j, lp in enumerate(call.log_probs):
            mask[start - n_prompt + j] = 1
            lps[start - n_prompt + j] = lp
        end = start + len(call.token_ids)
    assert end == len(full), "the row ends right after the role's last sampled token"
    assert row.response_mask == mask
    if logprobs:
        assert row.response_logprobs == lps
    else:
        assert row.response_logprobs is None


def decoded(tokenizer, row) -> str:
    return tokenizer.decode(row.prompt_ids + row.response_ids, skip_special_tokens=False)


def user_turn(text: str) -> str:
    return f"<|im_start|>user\n{text}<|im_end|>"
