"""Build the embedded default once per (seed, task, recipe of the build) and reuse it.

The cache key hashes everything the artefacts depend on (seed, sizes, tokenizer corpus), so a change in any of them
builds a new entry instead of reusing a stale one; :func:`verl_rema.build_cache.build_once` makes concurrent first
uses (several test processes, Ray workers) wait for one build and never see a half-written model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from verl_rema.build_cache import BuildFile, build_once, cache_root

from .model import TinyModelSpec, build_model, save_model, spec_dict
from .task import make_split, task_ranges, to_rl_rows, tokenizer_corpus
from .tokenizer import save_tokenizer, train_tokenizer

BUILD_VERSION = 1
DEFAULT_SEED = 0
TRAIN_SIZE = 4000
VAL_SIZE = 256


@dataclass(frozen=True)
class EmbeddedPaths:
    """One embedded build: the HF model folder (weights and tokenizer) and the RL data's two splits."""

    root: Path
    model = BuildFile("model")
    train = BuildFile("data", "train.parquet")
    val = BuildFile("data", "val.parquet")


def _cache_key(seed: int, spec: TinyModelSpec, corpus: list[str], task: str) -> str:
    task_key = (
        {} if task == "embedded" else {"task": task, "ranges": str(task_ranges(task))}
    )  # the default's key as it was
    payload = json.dumps(
        {
            **task_key,
            "v": BUILD_VERSION,
            "seed": seed,
            "spec": spec_dict(spec),
            "train": TRAIN_SIZE,
            "val": VAL_SIZE,
            "corpus": hashlib.sha256("\x00".join(corpus).encode()).hexdigest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _build(out: Path, seed: int, spec: TinyModelSpec, corpus: list[str], task: str) -> None:
    paths = EmbeddedPaths(out)
    tokenizer = train_tokenizer(corpus, vocab_size=spec.vocab_size)
    save_tokenizer(tokenizer, paths.model)
    save_model(build_model(spec, tokenizer, seed), paths.model)
    ranges = task_ranges(task)
    val = make_split(VAL_SIZE, seed=seed + 1, ranges=ranges)
    train_size = min(TRAIN_SIZE, ranges.space() // 2)  # a small task: about half its problems (the rest stay unseen)
    train = make_split(train_size, seed=seed + 2, exclude={p.expression for p in val}, ranges=ranges)
    paths.train.parent.mkdir(parents=True)
    pd.DataFrame(to_rl_rows(train, "train")).to_parquet(paths.train)
    pd.DataFrame(to_rl_rows(val, "val")).to_parquet(paths.val)


def embedded_paths(
    seed: int = DEFAULT_SEED, spec: TinyModelSpec | None = None, root: Path | None = None, task: str = "embedded"
) -> EmbeddedPaths:
    """Paths of the embedded model and data for ``seed``, building them on first use. ``task``: which operand
    ranges the RL data use (``verl_rema.embedded.task.TASKS``: ``embedded``, the default; ``toy``, single digits, for
    the learning experiment); the model and tokenizer are the same for every task."""
    spec = spec or TinyModelSpec()
    corpus = tokenizer_corpus(seed)
    target = (root or cache_root()) / "embedded" / f"seed{seed}-{_cache_key(seed, spec, corpus, task)}"
    marker = {"seed": seed, "spec": spec_dict(spec), **({} if task == "embedded" else {"task": task})}
    build_once(target, lambda staging: _build(staging, seed, spec, corpus, task), marker)
    return EmbeddedPaths(target)
