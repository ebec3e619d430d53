"""Make the v1 replay buffer's poll interval a setting (``trainer.v1.sampler.sampler_kwargs.poll_interval``).

Upstream: veRL 0.9.1, ``verl/trainer/ppo/v1/replay_buffer.py``. The v1 trainer dispatches a step's prompts to the
agent-loop workers and then waits in ``ReplayBuffer.sample`` (inside the ``gen`` timer), which checks the
TransferQueue, and, while the batch is not complete, ``time.sleep(self.poll_interval)``. ``poll_interval`` is a
constructor argument with default 2.0 s that ``PPOTrainer._build_replay_buffer`` never passes, so generation
time comes in whole multiples of 2 s: a CPU rollout that takes 0.7 s is logged, and waited for, as 2.0 s.

The patch reads ``poll_interval`` from the ``sampler_kwargs`` the trainer already passes (veRL's built-in buffers
store them and read nothing from them; they exist for custom samplers) and, when it is set and the caller did not
pass ``poll_interval`` itself, uses it. Without the key nothing changes. Applied on every platform (inert unless
configured); the CPU preset sets it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from ._guard import APPLIED

NAME = "replay_poll.configurable_interval"
KEY = "poll_interval"


def configured_interval(sampler_kwargs: Any) -> float | None:
    """``sampler_kwargs.poll_interval`` as a positive float, None when absent; a bad value is an error."""
    if sampler_kwargs is None or not (isinstance(sampler_kwargs, Mapping) or hasattr(sampler_kwargs, "get")):
        return None
    value = sampler_kwargs.get(KEY, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"trainer.v1.sampler.sampler_kwargs.{KEY} must be a positive number of seconds, got {value!r}")
    return float(value)


def apply() -> None:
    if NAME in APPLIED:
        return
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    original = ReplayBuffer.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        interval = configured_interval(getattr(self, "sampler_kwargs", None))
        if interval is not None and KEY not in signature.bind(self, *args, **kwargs).arguments:
            self.poll_interval = interval

    ReplayBuffer.__init__ = __init__
    APPLIED.append(NAME)
