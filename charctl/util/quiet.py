"""Keep C libraries' own prints off the console: PyBullet writes a build banner on import and ~45 lines of OpenGL
and thread chatter around a GUI window (fds 1 and 2, below Python), which would bury a command's one-line
result or error. Python's own sys.stdout/sys.stderr keep writing to the console meanwhile."""

from __future__ import annotations

import ctypes
import os
import sys

_FDS = (1, 2)
_STREAMS = {1: "stdout", 2: "stderr"}


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)  # C's own buffers, so nothing buffered leaks out after the fds come back
    except (OSError, AttributeError):
        pass


class NativeOutputSilenced:
    """fds 1 and 2 point at /dev/null from `start` to `stop` (or as a `with` block). A Python stream writing to one
    of them is pointed at a copy of the original for that time, so prints and progress bars still show."""

    def __init__(self):
        self._saved: dict[int, int] = {}
        self._streams: dict[str, object] = {}

    def start(self) -> NativeOutputSilenced:
        if self._saved:
            return self
        for name in _STREAMS.values():
            stream = getattr(sys, name, None)
            if stream is not None:
                stream.flush()
        _flush_c_stdio()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in _FDS:
                self._saved[fd] = os.dup(fd)
                stream = getattr(sys, _STREAMS[fd], None)
                if _writes_to(stream, fd):
                    self._streams[_STREAMS[fd]] = stream
                    setattr(sys, _STREAMS[fd], os.fdopen(os.dup(self._saved[fd]), "w", buffering=1,
                                                         encoding=stream.encoding, errors=stream.errors))
                os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        return self

    def stop(self) -> None:
        if not self._saved:
            return
        _flush_c_stdio()
        for name, original in self._streams.items():
            getattr(sys, name).close()
            setattr(sys, name, original)
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved, self._streams = {}, {}

    def __enter__(self) -> NativeOutputSilenced:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _writes_to(stream, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # pytest's capture streams have no file descriptor
        return False


def import_pybullet():
    """The pybullet module, imported without its "pybullet build time" banner."""
    if "pybullet" not in sys.modules:
        with NativeOutputSilenced():
            import pybullet  # noqa: F401
    return sys.modules["pybullet"]
