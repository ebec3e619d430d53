"""The verifier's child process: ``python -m verl_rema.rewards._mv_worker FD MEMORY_LIMIT_MB PARENT_PID``.

A fresh interpreter that imports only this module (math-verify and SymPy, ~0.3 s) and serves requests over the
socket ``FD`` handed down by :mod:`.verifier_pool`. It deliberately does not go through ``multiprocessing``'s
spawn/forkserver machinery, which re-imports the parent's ``__main__`` in every child (a Ray worker script, the
trainer's entry module: slow, heavy, or impossible for ``python -`` scripts).

math-verify has its own timeouts, built on ``signal.alarm``: whole seconds, per expression (so a prediction with
many candidates can exceed any total), and an error off the main thread. They are switched off here
(``parsing_timeout=None``, ``timeout_seconds=None``); instead one interval timer bounds the whole item and raises
:class:`SoftTimeout`, which derives from ``BaseException`` so that math-verify's ``except Exception`` blocks
cannot swallow it. Work that never returns to the interpreter (a long C-level big-integer or regex computation)
ignores signals; the parent kills such a worker at its hard deadline.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import resource
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

GOLD_TARGETS = (LatexExtractionConfig(),)
PRED_TARGETS = (ExprExtractionConfig(), LatexExtractionConfig())

READY = "ready"
# (status, correct, answer_extracted, detail); status is one of "ok", "timeout", "error", "no_answer".
Outcome = tuple[str, bool, bool, str]


class SoftTimeout(BaseException):
    """Raised by the interval timer; a BaseException so that library ``except Exception`` blocks let it through."""


def _on_alarm(signum: int, frame: object) -> None:
    raise SoftTimeout


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    """Gold answers repeat across a group's samples: parse each once per worker."""
    return tuple(parse("\\boxed{" + gold + "}", GOLD_TARGETS, parsing_timeout=None))


def check(golds: tuple[str, ...], prediction: str) -> Outcome:
    """Score ``prediction`` against any of ``golds`` with math-verify; unbounded in time (callers bound it)."""
    pred = parse(prediction, PRED_TARGETS, parsing_timeout=None)
    if not pred:
        return ("no_answer", False, False, "")
    gold = [g for answer in golds for g in _parse_gold(answer)]
    if not gold:
        return ("error", False, True, f"gold answer not parsable: {golds!r:.200}")
    return ("ok", bool(verify(gold, pred, timeout_seconds=None)), True, "")


def check_bounded(golds: tuple[str, ...], prediction: str, timeout_s: float) -> Outcome:
    """:func:`check` under the soft deadline; never raises for a bad input (only the main thread may call it)."""
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 1e-3))
        try:
            return check(golds, prediction)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except SoftTimeout:
        return ("timeout", False, False, f"soft deadline {timeout_s:g}s")
    except Exception as exc:  # noqa: BLE001 - a crash of the verifier on one input scores that input 0
        # Only the type: str() of an exception that holds a SymPy expression can itself take forever.
        return ("error", False, False, type(exc).__name__)


def _exit_with_parent(parent_pid: int) -> None:
    """Never outlive the pool's process, even in the middle of a computation that holds the GIL.

    Linux: ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL us when the thread that started us ends; the pool starts
    workers from one thread that lives as long as its process. Elsewhere: a watcher thread polls the parent.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL) != 0:  # PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError):

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


def _limit_memory(memory_limit_mb: int | None) -> None:
    """Cap the address space so a huge expression raises MemoryError here instead of exhausting the node."""
    if memory_limit_mb:
        limit = int(memory_limit_mb) * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass


def serve(conn: Connection, memory_limit_mb: int | None, parent_pid: int) -> None:
    """Serve ``(golds, prediction, timeout_s)`` requests on ``conn`` until it closes or ``None`` arrives."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; it kills us on shutdown
    _exit_with_parent(parent_pid)
    _limit_memory(memory_limit_mb)
    # The deadline is ours now; math-verify's "timeout is disabled" warning would only be noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    conn.send(READY)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        golds, prediction, timeout_s = request
        conn.send(check_bounded(golds, prediction, timeout_s))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]) or None, int(sys.argv[3]))
