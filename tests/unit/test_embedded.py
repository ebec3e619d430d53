"""The embedded default: deterministic, cached, vLLM-CPU compatible, in veRL's RL schema."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest
from omegaconf import OmegaConf

from verl_rema.embedded import embedded_paths
from verl_rema.embedded.cache import _cache_key
from verl_rema.embedded.model import TinyModelSpec
from verl_rema.embedded.task import make_split, tokenizer_corpus


def _digest(root) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".json", ".safetensors"})
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_build_is_deterministic_from_the_seed(tmp_path, embedded):
    again = embedded_paths(root=tmp_path)
    assert again.root.name == embedded.root.name
    assert _digest(again.model) == _digest(embedded.model)
    assert pd.read_parquet(again.train).equals(pd.read_parquet(embedded.train))
    other_seed = embedded_paths(seed=1, root=tmp_path)
    assert _digest(other_seed.model)["model.safetensors"] != _digest(embedded.model)["model.safetensors"]


def test_second_use_reuses_the_cache(tmp_path):
    first = embedded_paths(root=tmp_path)
    stamp = (first.model / "model.safetensors").stat().st_mtime_ns
    second = embedded_paths(root=tmp_path)
    assert second == first and (second.model / "model.safetensors").stat().st_mtime_ns == stamp


def test_cache_key_follows_what_the_artefacts_depend_on():
    corpus, spec = tokenizer_corpus(0), TinyModelSpec()
    key = _cache_key(0, spec, corpus, "embedded")
    assert key != _cache_key(0, TinyModelSpec(hidden_size=256, num_heads=4), corpus, "embedded")
    assert key != _cache_key(0, spec, [*corpus, "new prompt"], "embedded")
    assert key != _cache_key(0, spec, corpus, "toy")


def test_the_toy_task_has_single_digit_data_disjoint_from_its_validation(tmp_path):
    import pandas as pd

    toy, default = embedded_paths(root=tmp_path, task="toy"), embedded_paths(root=tmp_path)
    assert toy.root != default.root
    assert (toy.model / "model.safetensors").read_bytes() == (default.model / "model.safetensors").read_bytes()
    train, val = (pd.read_parquet(path) for path in (toy.train, toy.val))
    expressions = [{extra["expression"] for extra in frame["extra_info"]} for frame in (train, val)]
    assert not expressions[0] & expressions[1] and len(val) == 256 and len(train) > 1000
    for expression in expressions[0] | expressions[1]:
        a, b, c = (int(n) for n in re.findall(r"\d+", expression))
        assert max(a, b, c) <= 9, expression
    with pytest.raises(ValueError, match="unknown embedded task 'tiny'"):
        embedded_paths(root=tmp_path, task="tiny")


def test_model_is_a_tiny_qwen2_with_head_dim_64(embedded):
    config = json.loads((embedded.model / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM-CPU rejects 16
    assert (embedded.model / "model.safetensors").stat().st_size < 8 * 2**20


def test_tokenizer_is_local_bpe_with_chatml_and_single_digits(embedded):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedded.model))
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Compute 123+4."}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<|im_start|>user\nCompute 123+4.<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    pieces = tok.convert_ids_to_tokens(tok("123", add_special_tokens=False)["input_ids"])
    assert pieces == ["1", "2", "3"]


def test_dataset_rows_are_verifiable_and_splits_disjoint(embedded):
    train, val = pd.read_parquet(embedded.train), pd.read_parquet(embedded.val)
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info", "question", "subset"} <= set(
        train.columns
    )
    assert not set(train.question) & set(val.question)
    for row in train.head(50).itertuples():
        expression = row.extra_info["expression"]
        assert str(eval(expression)) == row.reward_model["ground_truth"]  # noqa: S307 (our own arithmetic)
        assert row.prompt[0]["content"] == row.question


def test_worked_solutions_are_correct():
    for problem in make_split(200, seed=5):
        assert problem.solution.endswith(f"\\boxed{{{problem.answer}}}")
        assert eval(problem.expression) == problem.answer  # noqa: S307


def test_veRL_dataset_class_loads_the_data(embedded):
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tok = AutoTokenizer.from_pretrained(str(embedded.model))
    config = OmegaConf.create({"max_prompt_length": 256, "filter_overlong_prompts": False, "prompt_key": "prompt"})
    dataset = RLHFDataset(data_files=[str(embedded.val)], tokenizer=tok, config=config)
    assert len(dataset) == 256
    item = dataset[0]
    assert item["raw_prompt"][0]["role"] == "user"


def test_resolver_builds_on_first_resolution_only(tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_REMA_CACHE", str(tmp_path))
    import verl_rema.embedded.resolvers  # noqa: F401

    cfg = OmegaConf.create({"model": "${rema_embedded:model}", "train": "${rema_embedded:train}"})
    assert not any(tmp_path.iterdir())
    assert cfg.model.startswith(str(tmp_path)) and cfg.train.endswith("train.parquet")
