"""``reward.custom_reward_function.reward_kwargs``, typed: the shared base of the math and judge rewards' kwargs.

veRL passes the kwargs to every ``compute_score`` call; the start-up checks (:mod:`verl_rema.checks`) parse them
``strict`` (an unknown key is an error naming it), scoring parses them leniently (an unknown key is warned about
once per process, since a reward worker must not fail a whole batch on a typo the driver already reported).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

KWARGS_PATH = "reward.custom_reward_function.reward_kwargs"
# Every reward: correctness for both roles alike (shared parameters), or the paper's role rewards (separate models).
REWARD_MODES: tuple[str, ...] = ("binary", "role")
# Keyword arguments veRL itself may pass to a custom reward function; anything else unknown is probably a typo.
VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
_warned: set[str] = set()
_warn_lock = threading.Lock()

K = TypeVar("K", bound="RewardKwargs")


class RewardKwargs:
    """Mixed into a frozen dataclass of reward kwargs; ``REWARD`` names the reward in warnings."""

    REWARD = "reward"

    @classmethod
    def known(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def parse(cls: type[K], kwargs: Mapping[str, Any], *, strict: bool) -> K:
        """``strict`` (start-up check): an unknown key is an error; at scoring time it is warned about once."""
        unknown = set(kwargs) - set(cls.known()) - VERL_KWARGS
        if unknown and strict:
            raise ValueError(f"{KWARGS_PATH}: unknown keys {sorted(unknown)}; known: {list(cls.known())}")
        if unknown:
            warn_once(f"verl_rema {cls.REWARD}: ignoring unknown reward_kwargs {sorted(unknown)}")
        return cls(**{k: v for k, v in kwargs.items() if k in cls.known()})

    def _set_bool(self, name: str) -> None:
        object.__setattr__(self, name, as_bool(getattr(self, name), name))

    def _check_choices(self, choices: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{KWARGS_PATH}.{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")

    def _check_num_procs(self) -> None:
        procs = getattr(self, "num_procs", None)
        if procs is not None and (isinstance(procs, bool) or not isinstance(procs, int) or procs < 1):
            raise ValueError(f"{KWARGS_PATH}.num_procs must be a positive integer or null, got {procs!r}")


def as_bool(value: Any, name: str) -> bool:
    """Hydra overrides may arrive as strings; accept the usual spellings and nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{KWARGS_PATH}.{name} must be a boolean, got {value!r}")


def warn_once(message: str) -> None:
    with _warn_lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning(message)


__all__ = ["KWARGS_PATH", "REWARD_MODES", "VERL_KWARGS", "RewardKwargs", "as_bool", "warn_once"]
