"""Shared test fixtures. Nothing here downloads: models, tokenizers and data are built locally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (patches apply at import, so they need a clean process)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    """The embedded default built once per test session into a private cache."""
    from verl_rema.embedded import embedded_paths

    return embedded_paths(root=tmp_path_factory.mktemp("embedded_cache"))
