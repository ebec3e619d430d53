"""A verifier worker for the pool's failure tests: ``python -m tests.unit._fake_verifier_worker FD MEM PARENT``.

It serves the real protocol with the real code (``_mv_worker.serve``) but answers three special predictions
itself, to reproduce what real inputs do only rarely and unpredictably:
  "PID"    -> reports its process id (in ``detail``);
  "HANG"   -> a hang the soft deadline cannot stop (SIGALRM blocked, like a long C-level computation);
  "CRASH"  -> the process dies mid-item (like a segfault or an OOM kill).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from multiprocessing.connection import Connection

from verl_rema.rewards import _mv_worker

_real_check_bounded = _mv_worker.check_bounded


def _check_bounded(golds: tuple[str, ...], prediction: str, timeout_s: float) -> _mv_worker.Outcome:
    if prediction == "PID":
        return ("ok", False, False, str(os.getpid()))
    if prediction == "HANG":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    if prediction == "CRASH":
        os._exit(3)
    return _real_check_bounded(golds, prediction, timeout_s)


if __name__ == "__main__":
    _mv_worker.check_bounded = _check_bounded
    _mv_worker.serve(Connection(int(sys.argv[1])), int(sys.argv[2]) or None, int(sys.argv[3]))
