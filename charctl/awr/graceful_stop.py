"""SIGTERM ends a training run after the iteration in flight instead of in the middle of it.

SIGTERM is how `kill`, `docker stop`, systemd and cluster schedulers (SLURM's scancel and pre-emption, Kubernetes)
ask a process to end, usually with a grace period before SIGKILL. Dying at once would throw away the samples the
iteration has collected so far; finishing it keeps them in the last checkpoint. A second SIGTERM ends the process
at once, as an unhandled one would (the previous iteration's files stay whole). Ctrl-C keeps its meaning: stop now.
"""

from __future__ import annotations

import os
import signal
import threading


class StopOnSigterm:
    """While entered (in the main thread), SIGTERM sets `requested` instead of ending the process; the handler that
    was there before is put back on exit. Elsewhere (a thread cannot set signal handlers) it does nothing."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopOnSigterm:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # asked twice: end now, as SIGTERM does when nobody handles it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.requested = True
