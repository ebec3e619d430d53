"""A small pool of math-verify processes with a hard per-item deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one hung task. The only remedy is to kill all
its processes, which breaks every other in-flight item (``BrokenProcessPool``), and its futures cannot tell when an
item actually started running, so a per-item deadline measured from ``submit`` is wrong under queueing. Here each
worker process serves one item at a time over its own socket; the calling thread owns that worker while it waits,
measures the deadline from the moment the item is handed over, and on expiry kills that one process (SIGKILL) and
leaves its slot to be refilled on next use. A worker that dies (crash, OOM kill) is treated the same way.

Deadlines: the worker stops itself at ``timeout_s`` (soft, see :mod:`._mv_worker`); the parent kills it at
``timeout_s + kill_grace_s`` (hard). Either way the item scores 0 with status ``"timeout"``. Each worker's address
space is capped (``memory_limit_mb``, 4 GiB) so that a monstrous expression fails with MemoryError (status
``"error"``) instead of exhausting the node, and a worker dies with its pool's process (``_mv_worker``).

Workers are fresh interpreters started with ``subprocess`` (fork+exec: safe in a multi-threaded parent such as a
Ray actor or a CUDA process, and independent of the parent's ``__main__``, unlike multiprocessing's spawn and
forkserver, which re-import it in every child). A (re)start costs one interpreter start plus the math-verify
import, ~0.5 s; it only happens on first use and after a hard kill or crash. The pool is a per-process singleton
(:func:`get_pool`), created lazily and re-created after a ``fork``.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger(__name__)

WORKER_MODULE = "verl_rema.rewards._mv_worker"
READY = "ready"  # the worker's first message (``_mv_worker.READY``; not imported here to keep math-verify out)
DEFAULT_KILL_GRACE_S = 1.0
DEFAULT_MEMORY_LIMIT_MB = 4096
STARTUP_TIMEOUT_S = 120.0
STATUSES = ("ok", "timeout", "error", "no_answer")


def default_num_procs() -> int:
    """Up to 4 processes, never more than the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one verification; ``elapsed_s`` is measured from hand-over to the worker to the answer."""

    status: str  # "ok" | "timeout" | "error" | "no_answer"
    correct: bool
    answer_extracted: bool
    elapsed_s: float
    detail: str = ""


class _Worker:
    """One child process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap: a hung or broken worker must not keep burning a CPU."""
        try:
            if self.alive():
                self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            self.conn.close()
        except OSError:
            pass

    def stop(self) -> None:
        """Ask politely, then kill."""
        try:
            self.conn.send(None)
            self.process.wait(timeout=1)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


class _Spawner:
    """Starts worker processes from one thread that lives as long as this process.

    Workers ask the kernel to kill them when the thread that started them ends (``PR_SET_PDEATHSIG``, see
    :mod:`._mv_worker`); started from a short-lived caller thread (a batch's thread pool) they would die with it.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="rema-verifier-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, future = self._requests.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)

    def call(self, fn: Callable[[], Any]) -> Any:
        future: Future = Future()
        self._requests.put((fn, future))
        return future.result()


def _child_env() -> dict[str, str]:
    """The parent's environment with its ``sys.path``, so the child imports the same verl_rema and math-verify."""
    paths = [p or os.getcwd() for p in sys.path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


class VerifierPool:
    """``num_procs`` math-verify worker processes, one item at a time each, thread-safe."""

    def __init__(
        self,
        num_procs: int | None = None,
        *,
        kill_grace_s: float = DEFAULT_KILL_GRACE_S,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        worker_module: str = WORKER_MODULE,
    ) -> None:
        self.num_procs = int(num_procs) if num_procs else default_num_procs()
        if self.num_procs < 1:
            raise ValueError(f"num_procs must be >= 1, got {num_procs}")
        self.kill_grace_s = float(kill_grace_s)
        self.memory_limit_mb = memory_limit_mb
        self.worker_module = worker_module
        self.owner_pid = os.getpid()
        # LIFO: the most recently used (warm) worker serves next; empty slots are only filled under concurrency.
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(self.num_procs):
            self._slots.put(None)
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._closed = False
        self._spawner = _Spawner()

    # -- bookkeeping --------------------------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += n

    def stats(self) -> dict[str, int]:
        """Counts since start: items per status, ``killed`` (hard timeouts), ``crashed``, ``spawned``."""
        with self._stats_lock:
            return dict(self._stats)

    # -- workers ------------------------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent_sock, child_sock = socket.socketpair()
        child_fd = child_sock.fileno()
        command = [sys.executable, "-m", self.worker_module, str(child_fd), str(self.memory_limit_mb or 0)]
        command.append(str(os.getpid()))
        try:
            process = self._spawner.call(
                lambda: subprocess.Popen(command, pass_fds=(child_fd,), stdin=subprocess.DEVNULL, env=_child_env())
            )
        finally:
            child_sock.close()
        worker = _Worker(process, Connection(parent_sock.detach()))
        try:
            ready = worker.conn.poll(STARTUP_TIMEOUT_S) and worker.conn.recv() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            worker.kill()
            raise RuntimeError(
                f"math-verify worker ({sys.executable} -m {self.worker_module}) did not start within "
                f"{STARTUP_TIMEOUT_S:.0f}s (exit code {process.returncode}); see its stderr above"
            )
        self._count("spawned")
        return worker

    def verify(self, golds: Sequence[str], prediction: str, timeout_s: float) -> VerifyResult:
        """Verify one prediction; blocks for a free worker, then at most ``timeout_s + kill_grace_s``."""
        if self._closed:
            raise RuntimeError("VerifierPool is shut down")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        worker = self._slots.get()
        start = time.monotonic()
        try:
            if worker is not None and not worker.alive():
                self._count("crashed")
                worker.kill()
                worker = None
            if worker is None:
                worker = self._spawn()
            start = time.monotonic()
            worker.conn.send((tuple(golds), prediction, float(timeout_s)))
            if not worker.conn.poll(timeout_s + self.kill_grace_s):
                worker.kill()
                worker = None
                self._count("killed")
                result = VerifyResult("timeout", False, False, time.monotonic() - start, "killed at hard deadline")
            else:
                status, correct, extracted, detail = worker.conn.recv()
                result = VerifyResult(status, correct, extracted, time.monotonic() - start, detail)
        except (EOFError, OSError) as exc:  # the worker died under this item (crash, OOM kill, ...)
            if worker is not None:
                worker.kill()
                worker = None
            self._count("crashed")
            result = VerifyResult("error", False, False, time.monotonic() - start, f"worker died: {exc!r}")
        finally:
            self._slots.put(worker)
        self._count(result.status)
        if result.status in ("timeout", "error"):
            logger.warning("math-verify %s after %.2fs: %s", result.status, result.elapsed_s, result.detail)
        return result

    def verify_many(
        self, golds: Sequence[Sequence[str]], predictions: Sequence[str], timeout_s: float
    ) -> list[VerifyResult]:
        """Verify a batch in parallel over the pool's processes, in input order."""
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} gold entries for {len(predictions)} predictions")
        if not predictions:
            return []
        with ThreadPoolExecutor(max_workers=min(self.num_procs, len(predictions))) as executor:
            return list(executor.map(lambda g, p: self.verify(g, p, timeout_s), golds, predictions))

    def shutdown(self) -> None:
        """Stop every idle worker (busy ones are killed by their caller's deadline or at interpreter exit)."""
        self._closed = True
        while True:
            try:
                worker = self._slots.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.stop()


_POOL: VerifierPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(num_procs: int | None = None) -> VerifierPool:
    """The process-wide pool, created on first use; ``num_procs`` only matters for that first call."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.owner_pid != os.getpid() or _POOL._closed:
            _POOL = VerifierPool(num_procs)
        elif num_procs and int(num_procs) != _POOL.num_procs:
            logger.info("math-verify pool already has %d processes; ignoring num_procs=%s", _POOL.num_procs, num_procs)
        return _POOL


def shutdown_pool() -> None:
    """Stop the process-wide pool (tests, interpreter exit); the next :func:`get_pool` starts a new one."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.owner_pid == os.getpid():
        pool.shutdown()


atexit.register(shutdown_pool)
