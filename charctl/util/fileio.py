"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves nothing."""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except OSError as err:
        if err.filename is None:  # a failed write() (a full disk) names no file: name the one being written
            raise OSError(err.errno, err.strerror or str(err), str(target)) from err
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_yaml_mapping(path: str | os.PathLike, what: str = "settings") -> dict:
    """A YAML file whose top level is a mapping (an empty file is {}); bad input is a one-line CharctlError."""
    import yaml

    from charctl.util.errors import CharctlError

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise CharctlError(f"{path}: no such file") from None
    except yaml.YAMLError as err:
        raise CharctlError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CharctlError(f"{path}: expected a mapping of {what}")
    return data


class DirectoryLock:
    """An exclusive lock on a directory for one process's lifetime: an flock on the directory itself (nothing is
    written), released when the process ends, however it ends. Two runs writing one run directory would delete
    each other's temporaries and interleave their checkpoints."""

    def __init__(self, directory: str | os.PathLike, what: str):
        self.directory, self.what, self._fd = Path(directory), what, None

    def acquire(self) -> None:
        """Take the lock if the directory exists and it is not taken yet; refuse if another process holds it."""
        import fcntl

        from charctl.util.errors import CharctlError

        if self._fd is not None or not self.directory.is_dir():
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CharctlError(f"{self.directory}: {self.what} is in use by another process; wait for it to end or "
                               "choose another directory") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "DirectoryLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
