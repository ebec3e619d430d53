"""The embedded default: a tiny Qwen2 model, its locally trained tokenizer and a synthetic
verifiable arithmetic dataset, built on first use into a cache directory (see :mod:`.cache`).

With no model or data given, every recipe runs on these, so the whole pipeline can be tried
on a laptop CPU with no download. Real runs point ``actor_rollout_ref.model.path`` and
``data.*_files`` elsewhere; the code path is the same.
"""

from .cache import EmbeddedPaths, embedded_paths

__all__ = ["EmbeddedPaths", "embedded_paths"]
