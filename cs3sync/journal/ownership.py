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
                os.ftruncate(fd, 0)  # no owner any more (after a crash the pid stays: see owner_alive)
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


def _flock_held(path: Path) -> bool | None:
    """Whether some process holds a flock on ``path``, from /proc/locks (Linux); None if unknown.
    Looking is enough: probing with flock ourselves could make a starting owner fail."""
    try:
        st = path.stat()
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (blocked waiters have a "->" field)
        if "FLOCK" in fields and "->" not in fields:
            dev_inode = next((f for f in fields if f.count(":") == 2), "")
            maj, mnr, ino = dev_inode.split(":") if dev_inode else ("", "", "")
            if ino and int(ino) == st.st_ino and int(maj, 16) == major and int(mnr, 16) == minor:
                return True
    return False


def owner_alive(path: Path) -> int | None:
    """The pid of the current owner if the owner lock is held and that process is alive, else None.
    Never takes the lock."""
    pid = read_pid(path)
    if pid is None or _flock_held(path) is False:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
