"""The roles of the rows whose advantages are being computed, supplied by the trainer.

veRL 0.9.1 calls registered estimators with ``index=uid`` only; ReMA's trainer
(:mod:`verl_rema.trainer`) fetches each row's ``rema_role`` and makes it visible here for the
duration of veRL's own advantage computation, in the same row order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_ROW_ROLES: ContextVar[np.ndarray | None] = ContextVar("rema_row_roles", default=None)


def current_row_roles() -> np.ndarray | None:
    """Per-row roles set by the trainer, or None outside ReMA's trainer."""
    return _ROW_ROLES.get()


@contextmanager
def rows_with_roles(roles: np.ndarray | None) -> Iterator[None]:
    token = _ROW_ROLES.set(roles)
    try:
        yield
    finally:
        _ROW_ROLES.reset(token)
