"""The on-disk build cache: where the plug-in keeps what it builds once and reuses (the embedded default, SFT data,
SFT tokenizers), and how one entry is built safely.

Each entry is a folder named by a hash of everything it depends on, so a change in any input builds a new entry
instead of reusing a stale one. :func:`build_once` builds into a temporary folder and renames it into place under a
file lock, so concurrent first uses (torchrun's ranks, several test processes, Ray workers) neither build twice nor
see a half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

CACHE_ENV = "VERL_REMA_CACHE"
COMPLETE = "COMPLETE"  # the marker of a finished entry; it holds the JSON ``marker`` given to build_once

T = TypeVar("T")


def cache_root() -> Path:
    """``$VERL_REMA_CACHE``, else ``~/.cache/verl_rema``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "verl_rema")


def build_once(target: Path, build: Callable[[Path], T], marker: Mapping[str, Any]) -> T | None:
    """Make ``target`` a finished entry by running ``build(folder)`` unless it already is one.

    Returns what ``build`` returned, or None when ``target`` was finished already (by an earlier run, or by a
    concurrent one while this one waited on the lock). A failing ``build`` leaves neither ``target`` nor the
    temporary folder behind.
    """
    if (target / COMPLETE).exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f"{target.name}.lock")):
        if (target / COMPLETE).exists():
            return None
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            built = build(staging)
            (staging / COMPLETE).write_text(json.dumps(dict(marker)))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return built


class BuildFile:
    """A file or folder of a cache entry, read as an attribute of the entry's paths class (``root`` joined with
    ``parts``).

    Why: each kind of entry then states its layout once, one line a file, instead of one property per file.
    """

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, entry: Any, owner: type | None = None) -> Path:
        if entry is None:  # looked up on the class itself (help(), documentation tools)
            return self  # type: ignore[return-value]
        return Path(entry.root, *self.parts)


__all__ = ["CACHE_ENV", "COMPLETE", "BuildFile", "build_once", "cache_root"]
