"""SIGTERM ends a training run after the iteration in flight instead of in the middle of it.

SIGTERM is how `kill`, `docker stop`, systemd and cluster schedulers (SLURM's scancel and pre-emption, Kubernetes)
ask a process to end, usually with a grace period before SIGKILL. Dying at once would throw away the samples the
iteration has collected so far; finishing it keeps them in the last checkpoint. A second SIGTERM ends the process
at once, as an unhandled one would (the previous iteration's files stay whole). Ctrl-C keeps its meaning: stop now.

    with stop_on_sigterm:          # a whole command (bench learn's several runs), or one train() call
        while ...:
            if stop_on_sigterm.requested: break
            ...

Entries nest: an inner one puts the handler back in place (ray.init installs a SIGTERM handler of its own) and
keeps a request already made; the outermost exit restores the handler from before it.
"""

from __future__ import annotations

import os
import signal
import threading

# what `charctl train` and `charctl bench learn` say and exit with after such a stop (128 + 15, a shell's status
# for a process that SIGTERM ended)
STOPPED_BY_SIGTERM = "stopped by SIGTERM after the iteration in flight"
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


class _StopOnSigterm:
    def __init__(self):
        self.requested = False
        self._depth = 0
        self._previous = None

    def __enter__(self) -> _StopOnSigterm:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            before = signal.signal(signal.SIGTERM, self._handle)
            if self._depth == 0:
                self._previous, self.requested = before, False
            self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        if threading.current_thread() is threading.main_thread():
            self._depth -= 1
            if self._depth == 0:
                signal.signal(signal.SIGTERM, self._previous)
                self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # asked twice: end now, as SIGTERM does when nobody handles it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.requested = True


stop_on_sigterm = _StopOnSigterm()
