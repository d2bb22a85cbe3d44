"""Single owner: the process holding ``flock(journal.lock)`` runs the workers and writes entries.

flock locks belong to the open file description, so the lock goes away with the process however it
dies (kill -9 included), and a second open in the same process is refused as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from cs3sync.journal.errors import JournalLocked
from cs3sync.journal.fs import FILE_MODE


class OwnerLock:
    """The held owner lock; ``release()`` (or process death) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def acquire(path: Path) -> OwnerLock:
    """Take the owner lock without waiting, and write our pid into the lock file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(str(path.parent), read_pid(path)) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return OwnerLock(path, fd)


def read_pid(path: Path) -> int | None:
    """The pid written by the last owner (it may have exited)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def owner_alive(path: Path) -> int | None:
    """The pid of the current owner if that process is alive, else None. Never takes the lock."""
    pid = read_pid(path)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
