"""Build the embedded default once per (seed, recipe of the build) and reuse it.

The cache key hashes everything the artefacts depend on (seed, sizes, tokenizer corpus),
so a change in any of them builds a new entry instead of reusing a stale one. Builds go to
a temporary directory and are renamed into place under a file lock, so concurrent first
uses (several test processes, Ray workers) never see a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock

from .model import TinyModelSpec, build_model, save_model, spec_dict
from .task import make_split, to_rl_rows, tokenizer_corpus
from .tokenizer import save_tokenizer, train_tokenizer

CACHE_ENV = "VERL_REMA_CACHE"
BUILD_VERSION = 1
DEFAULT_SEED = 0
TRAIN_SIZE = 4000
VAL_SIZE = 256


@dataclass(frozen=True)
class EmbeddedPaths:
    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def train(self) -> Path:
        return self.root / "data" / "train.parquet"

    @property
    def val(self) -> Path:
        return self.root / "data" / "val.parquet"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "verl_rema")


def _cache_key(seed: int, spec: TinyModelSpec, corpus: list[str]) -> str:
    payload = json.dumps(
        {
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


def _build(out: Path, seed: int, spec: TinyModelSpec, corpus: list[str]) -> None:
    paths = EmbeddedPaths(out)
    tokenizer = train_tokenizer(corpus, vocab_size=spec.vocab_size)
    save_tokenizer(tokenizer, paths.model)
    save_model(build_model(spec, tokenizer, seed), paths.model)
    val = make_split(VAL_SIZE, seed=seed + 1)
    train = make_split(TRAIN_SIZE, seed=seed + 2, exclude={p.expression for p in val})
    paths.train.parent.mkdir(parents=True)
    pd.DataFrame(to_rl_rows(train, "train")).to_parquet(paths.train)
    pd.DataFrame(to_rl_rows(val, "val")).to_parquet(paths.val)


def embedded_paths(
    seed: int = DEFAULT_SEED, spec: TinyModelSpec | None = None, root: Path | None = None
) -> EmbeddedPaths:
    """Paths of the embedded model and data for ``seed``, building them on first use."""
    spec = spec or TinyModelSpec()
    corpus = tokenizer_corpus(seed)
    base = (root or cache_root()) / "embedded"
    target = base / f"seed{seed}-{_cache_key(seed, spec, corpus)}"
    if (target / "COMPLETE").exists():
        return EmbeddedPaths(target)
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / f"{target.name}.lock")):
        if not (target / "COMPLETE").exists():
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=base))
            try:
                _build(staging, seed, spec, corpus)
                (staging / "COMPLETE").write_text(json.dumps({"seed": seed, "spec": spec_dict(spec)}))
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return EmbeddedPaths(target)
