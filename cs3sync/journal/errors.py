"""Journal errors. Messages are short and never contain tokens or file contents."""

from __future__ import annotations


class JournalError(Exception):
    """Base class of every journal error."""


class JournalLocked(JournalError):
    """Another process owns the journal (holds the flock on ``journal.lock``)."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.pid = pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(f"journal {path} is owned by {who}; open it read-only instead")


class NotOwner(JournalError):
    """A write that only the owner may do was attempted on a read-only journal."""


class JournalUnreadable(JournalError):
    """The journal is missing, corrupt (for a non-owner) or of an unknown schema version."""


class NetworkFilesystem(JournalError):
    """The journal directory is on a network or FUSE file system and ``allow_network_fs`` is off."""


class SpoolFull(JournalError):
    """Writing to the spool failed for lack of space (ENOSPC/EDQUOT). Nothing was journaled."""


class JournalFull(JournalError):
    """SQLite could not write the journal database: the disk (or its quota) is full (SQLITE_FULL).
    The transaction was rolled back; nothing of it was recorded."""


class UnknownEntry(JournalError, KeyError):
    """No entry with that id."""


class InvalidTransition(JournalError):
    """The entry is not in a state that allows this transition (e.g. it was discarded meanwhile,
    or the worker's lease was lost). The caller must drop its result."""


class StagingError(JournalError):
    """A chunk that does not fit the staged upload (missing chunk 1, gap, unknown upload)."""


class StagingBusy(StagingError):
    """Another upload of the same path by the same client is in progress (its chunks cannot be told
    apart from this one's): refused rather than mixed."""
