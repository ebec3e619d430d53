"""The chat template's end-of-turn token: where the loss of a message ends, and the eos of the SFT checkpoint.

A chat template puts a fixed *tail* after each message's content: ``<|im_end|>`` + ``\\n`` for ChatML, ``<|eot_id|>``
for Llama 3. A model samples up to the end-of-turn part of it (the rollout's engine stops there) and the rest (the
separator) is the template's, never sampled. Found as the agent loop finds it (the common tail of one message rendered
with two contents: :func:`verl_rema.rollout.rows.message_tail`); the end-of-turn part runs up to the last eos id in
it, else it is its first token.

A base model (Qwen2.5-7B) has ChatML's template but ``<|endoftext|>`` as eos, so after SFT its generation would not
stop at the end of a message. :func:`tokenizer_for_sft` gives veRL's trainer (``model.tokenizer_path``) a copy of
the tokenizer whose eos is the end-of-turn token; veRL then writes it, and the model config's ``eos_token_id``, into
every checkpoint. :func:`register_in_checkpoints` adds the token to each saved ``generation_config.json`` (what
``transformers``' ``generate`` stops on; vLLM stops on the tokenizer's eos and these).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from verl.utils.tokenizer import normalize_token_ids
from verl.utils.tokenizer.chat_template import apply_chat_template

from verl_rema.build_cache import build_once
from verl_rema.rollout import rows

_PROBE = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]


def message_tail(tokenizer: Any, chat_template_kwargs: dict[str, Any] | None = None) -> tuple[list[int], list[int]]:
    """``(end_of_turn, separator)`` token ids the template puts after an assistant message's content."""
    tail = rows.message_tail(tokenizer, dict(chat_template_kwargs or {}), role="assistant", before=_PROBE)
    if not tail:
        return [], []
    eos = tokenizer.eos_token_id
    eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
    last_eos = max((i for i, token_id in enumerate(tail) if token_id in eos_ids), default=0)
    return tail[: last_eos + 1], tail[last_eos + 1 :]


def end_of_turn_token(tokenizer: Any) -> str:
    """The end-of-turn token as text; it must be one token to serve as eos."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the SFT model's tokenizer has no chat template: set model.custom_chat_template (e.g. ChatML's, as in "
            "Qwen2.5) so both roles' chats can be rendered"
        )
    end, _ = message_tail(tokenizer)
    if len(end) != 1:
        raise ValueError(
            f"the chat template ends a message with {len(end)} tokens {tokenizer.convert_ids_to_tokens(end)}; one "
            "end-of-turn token is needed to stop generation after each message"
        )
    return tokenizer.convert_ids_to_tokens(end[0])


def _render(tokenizer: Any) -> list[int]:
    chat = [*_PROBE, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    return normalize_token_ids(apply_chat_template(tokenizer, chat, tokenize=True, add_generation_prompt=True))


def tokenizer_for_sft(tokenizer_path: str, cache: Path) -> str:
    """``tokenizer_path`` when its eos already is the end-of-turn token, else a cached copy whose eos is."""
    from verl.utils import hf_tokenizer

    tokenizer = hf_tokenizer(tokenizer_path)
    token = end_of_turn_token(tokenizer)
    if tokenizer.eos_token == token:
        return tokenizer_path
    key = hashlib.sha256(f"{tokenizer_path}\0{token}".encode())
    for name in ("tokenizer_config.json", "tokenizer.json", "chat_template.jinja"):  # a local folder's content
        if (Path(tokenizer_path) / name).is_file():
            key.update((Path(tokenizer_path) / name).read_bytes())
    target = cache / "tokenizers" / key.hexdigest()[:12]
    marker = {"source": tokenizer_path, "eos": token, "was": tokenizer.eos_token}
    build_once(target, lambda staging: _save_with_eos(tokenizer, tokenizer_path, token, staging), marker)
    return str(target)


def _save_with_eos(tokenizer: Any, tokenizer_path: str, token: str, out: Path) -> None:
    """Save ``tokenizer`` into ``out`` with ``token`` as its eos, unless that would change how chats render."""
    before = _render(tokenizer)
    previous = tokenizer.eos_token
    tokenizer.eos_token = token
    if _render(tokenizer) != before:
        raise ValueError(
            f"the chat template of {tokenizer_path} renders eos_token itself, so making {token!r} the eos "
            f"(instead of {previous!r}) would change every chat; set model.tokenizer_path to a tokenizer "
            "whose eos ends a message"
        )
    tokenizer.save_pretrained(str(out))


def register_in_checkpoints(local_dir: str | Path) -> list[Path]:
    """Make each ``global_step_*/huggingface`` under ``local_dir`` stop on its tokenizer's end-of-turn token in
    ``generation_config.json`` too (first in ``eos_token_id``, the previous ids kept); return the folders."""
    from transformers import AutoTokenizer, GenerationConfig

    done = []
    steps = Path(local_dir).glob("global_step_*/huggingface")
    for folder in sorted(steps, key=lambda f: int(f.parent.name.rsplit("_", 1)[-1])):  # step 8 before step 12
        if not (folder / "config.json").exists():
            continue
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        end = tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer))
        try:
            generation = GenerationConfig.from_pretrained(str(folder))
        except OSError:  # veRL saves one only when the base model had one
            generation = GenerationConfig(pad_token_id=tokenizer.pad_token_id)
        previous = generation.eos_token_id
        previous = [] if previous is None else [previous] if isinstance(previous, int) else list(previous)
        generation.eos_token_id = [end, *(i for i in previous if i != end)]
        generation.save_pretrained(str(folder))
        done.append(folder)
    return done


__all__ = ["end_of_turn_token", "message_tail", "register_in_checkpoints", "tokenizer_for_sft"]
