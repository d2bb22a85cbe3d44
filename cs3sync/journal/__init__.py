"""The operation journal: durable commands in SQLite, content in a spool of blobs.

Public API::

    from cs3sync.journal import Journal, Entry, Blob, Op, State, BlockedReason, default_journal_dir

    async with await Journal.open(journal_dir, owner=True) as journal:
        blob = await journal.store_blob(b"...")                  # fsynced, renamed into the spool
        entry = await journal.enqueue(Op.SAVE, "/home/a.ipynb", blob=blob, base_etag="e1")
        claimed = await journal.claim("worker-1", lease_seconds=300)
        await journal.mark_done(claimed.id, result_etag="e2", result_mtime=1700000000.0)

See `Journal` for every method, `docs/journal.md` for settings and the CLI.
"""

from cs3sync.journal.crash import crash_point
from cs3sync.journal.errors import (
    InvalidTransition,
    JournalError,
    JournalFull,
    JournalLocked,
    JournalUnreadable,
    NetworkFilesystem,
    NotOwner,
    SpoolFull,
    StagingBusy,
    StagingError,
    UnknownEntry,
)
from cs3sync.journal.paths import account_hash, default_journal_dir, is_same_or_related, normalize_path
from cs3sync.journal.store import (
    DEFAULT_EVENTS_MAX,
    DEFAULT_LARGE_THRESHOLD,
    DEFAULT_RETENTION_ROWS,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STAGING_EXPIRY_SECONDS,
    Journal,
)
from cs3sync.journal.types import (
    Blob,
    BlockedReason,
    CheckpointRow,
    Control,
    Entry,
    Event,
    Op,
    RemoteState,
    Resolution,
    StagingInfo,
    State,
    Stats,
    UploadRecord,
)

__all__ = [
    "DEFAULT_EVENTS_MAX",
    "DEFAULT_LARGE_THRESHOLD",
    "DEFAULT_RETENTION_ROWS",
    "DEFAULT_RETENTION_SECONDS",
    "DEFAULT_STAGING_EXPIRY_SECONDS",
    "Blob",
    "BlockedReason",
    "CheckpointRow",
    "Control",
    "Entry",
    "Event",
    "InvalidTransition",
    "Journal",
    "JournalError",
    "JournalFull",
    "JournalLocked",
    "JournalUnreadable",
    "NetworkFilesystem",
    "NotOwner",
    "Op",
    "RemoteState",
    "Resolution",
    "SpoolFull",
    "StagingBusy",
    "StagingError",
    "StagingInfo",
    "State",
    "Stats",
    "UnknownEntry",
    "UploadRecord",
    "account_hash",
    "crash_point",
    "default_journal_dir",
    "is_same_or_related",
    "normalize_path",
]
