"""The end-of-turn token: found from the chat template, made the eos of a base model's tokenizer for SFT (so the
checkpoint stops after each message), and registered in saved checkpoints' generation configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from verl_rema.sft.end_of_turn import end_of_turn_token, message_tail, register_in_checkpoints, tokenizer_for_sft


def base_like_model(model_dir: Path, out: Path) -> Path:
    """A copy of a ChatML model whose tokenizer and generation config end text with <|endoftext|>, as
    Qwen2.5-7B base does (chat template present, eos not the end-of-turn token)."""
    shutil.copytree(model_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.save_pretrained(str(out))
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for name in ("config.json", "generation_config.json"):
        path = out / name
        values = json.loads(path.read_text()) if path.exists() else {}
        values["eos_token_id"] = endoftext
        path.write_text(json.dumps(values))
    return out


def test_message_tail_of_chatml(embedded):
    tokenizer = AutoTokenizer.from_pretrained(str(embedded.model))
    end, separator = message_tail(tokenizer)
    assert tokenizer.convert_ids_to_tokens(end) == ["<|im_end|>"]
    assert tokenizer.decode(separator) == "\n"
    assert end_of_turn_token(tokenizer) == "<|im_end|>"


def test_a_tokenizer_whose_eos_ends_messages_is_used_as_is(embedded, tmp_path):
    assert tokenizer_for_sft(str(embedded.model), tmp_path) == str(embedded.model)
    assert not (tmp_path / "tokenizers").exists()


def test_a_base_models_tokenizer_gets_the_end_of_turn_token_as_eos(embedded, tmp_path):
    base = base_like_model(embedded.model, tmp_path / "base")
    path = tokenizer_for_sft(str(base), tmp_path / "cache")
    assert path != str(base) and tokenizer_for_sft(str(base), tmp_path / "cache") == path  # cached
    original, sft = AutoTokenizer.from_pretrained(str(base)), AutoTokenizer.from_pretrained(path)
    assert (original.eos_token, sft.eos_token) == ("<|endoftext|>", "<|im_end|>")
    chat = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": "3"},
    ]
    assert sft.apply_chat_template(chat, tokenize=False) == original.apply_chat_template(chat, tokenize=False)
    assert sft.get_vocab() == original.get_vocab()


def test_a_template_that_renders_eos_itself_is_refused(embedded, tmp_path):
    # Making another token the eos would change every chat such a template renders.
    base = base_like_model(embedded.model, tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.chat_template = "{{ eos_token }}" + tokenizer.chat_template  # e.g. a document-start marker
    tokenizer.save_pretrained(str(base))
    with pytest.raises(ValueError, match="renders eos_token itself"):
        tokenizer_for_sft(str(base), tmp_path / "cache")


def test_an_end_of_turn_of_two_tokens_is_refused(embedded):
    tokenizer = AutoTokenizer.from_pretrained(str(embedded.model))
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.chat_template = tokenizer.chat_template.replace("'<|im_end|>'", "'<|im_end|>' + eos_token")
    with pytest.raises(ValueError, match=r"ends a message with 2 tokens \['<\|im_end\|>', '<\|endoftext\|>'\]"):
        end_of_turn_token(tokenizer)


def test_a_tokenizer_without_chat_template_is_named(embedded, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(embedded.model))
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="custom_chat_template"):
        end_of_turn_token(tokenizer)


def test_saved_checkpoints_stop_on_the_end_of_turn_token(embedded, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_3" / "huggingface"
    base_like_model(embedded.model, folder)
    AutoTokenizer.from_pretrained(tokenizer_for_sft(str(folder), tmp_path / "cache")).save_pretrained(str(folder))
    assert register_in_checkpoints(tmp_path / "ckpt") == [folder]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    ids = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == ids
    register_in_checkpoints(tmp_path / "ckpt")  # idempotent
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == ids
