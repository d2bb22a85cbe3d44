"""The `Journal`: one SQLite database, one spool, one owner.

Writes go through a single aiosqlite connection guarded by an anyio lock, each as one
``BEGIN IMMEDIATE ... COMMIT`` with nothing unrelated awaited inside; reads use a separate connection
and see every committed write (WAL). Only the owner (holder of the flock on ``journal.lock``) writes
entries; other processes open read-only, except for the short control writes of the CLI (see
``set_control``, ``retry``, ``discard``, ``resolve``, ``gc``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cs3sync.journal.types import (
    Blob,
    CheckpointRow,
    Control,
    Entry,
    Event,
    RemoteState,
    StagingInfo,
    Stats,
    UploadRecord,
)

#: Saves at least this big are flagged ``large`` (claimed by the large-upload workers).
DEFAULT_LARGE_THRESHOLD = 16 * 1024 * 1024
#: done/superseded/cancelled rows are kept this long...
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0
#: ...or until there are more than this many of them.
DEFAULT_RETENTION_ROWS = 5000
#: Abandoned JupyterLab chunked uploads are dropped after this long without a chunk.
DEFAULT_STAGING_EXPIRY_SECONDS = 24 * 3600.0
#: Size of the `events` ring.
DEFAULT_EVENTS_MAX = 10_000


class _Keep:
    """Sentinel type: leave the field as it is."""


KEEP = _Keep()


class Journal:
    """The operation journal. Create with ``await Journal.open(...)``; use as an async context manager."""

    dir: Path
    owner: bool

    @classmethod
    async def open(
        cls,
        dir: str | Path,
        *,
        owner: bool,
        allow_network_fs: bool = False,
        now: Callable[[], float] = time.time,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        retention_rows: int = DEFAULT_RETENTION_ROWS,
        staging_expiry_seconds: float = DEFAULT_STAGING_EXPIRY_SECONDS,
        events_max: int = DEFAULT_EVENTS_MAX,
        mounts_file: str | Path = "/proc/mounts",
    ) -> Journal:
        """Open (as owner: create, lock, check, migrate, recover) the journal in ``dir``.

        owner=True: creates ``dir`` (0700) if needed, refuses a network/FUSE file system unless
        ``allow_network_fs``, takes ``flock(journal.lock)`` (raises `JournalLocked` if held), runs
        ``PRAGMA quick_check`` (a broken db is renamed aside to ``journal.db.corrupt-<time>``, a fresh one
        created and pending saves re-imported from ``spool/manifest.log``), migrates the schema, and
        recovers: every ``running`` entry goes back to ``queued`` with ``needs_check`` set.

        owner=False: opens the existing db read-only (raises `JournalUnreadable` if missing, broken or of
        an unknown schema). Entry writes raise `NotOwner`, except the CLI's control writes.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Close connections and release the owner lock."""
        raise NotImplementedError

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def now(self) -> float:
        """The journal's clock (injectable for tests)."""
        raise NotImplementedError

    @property
    def db_path(self) -> Path:
        return self.dir / "journal.db"

    def blob_path(self, sha256: str) -> Path:
        """Where the spool keeps the blob ``sha256`` (``spool/<sha[:2]>/<sha>``)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- spool
    async def store_blob(self, source: bytes | Path | AsyncIterable[bytes]) -> Blob:
        """Write content durably to the spool: tmp -> fsync -> rename -> fsync dir (all in threads).

        Returns the content-addressed `Blob`. Until it is referenced by ``enqueue`` (or a checkpoint /
        remote_state row) it is protected from gc in this process. Raises `SpoolFull` on ENOSPC/EDQUOT,
        leaving nothing behind. Owner only.
        """
        raise NotImplementedError

    # ---------------------------------------------------------------- enqueue
    async def enqueue(
        self,
        op: str,
        path: str,
        *,
        src_path: str | None = None,
        blob: Blob | None = None,
        base_etag: str | None = None,
        base_fileid: str | None = None,
        kind: str = "file",
        large: bool | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Journal a command durably and return its entry (state ``queued``, or ``cancelled`` if it
        annihilated with a pending create). Applies the coalescing rules of DESIGN §5 in the same
        transaction:

        - save after a not-yet-running save of the same path (no other command on the path in
          between): the older one becomes ``superseded`` (``superseded_by`` = the new id) and the new
          entry keeps the *older* ``base_etag``/``base_fileid``;
        - delete after pending creates (saves with no base, mkdir) of the path and nothing else pending
          under it: all of them and the delete itself are ``cancelled`` (resolution ``annihilated``);
        - delete after pending saves of an existing file: the saves are superseded and the delete keeps
          the remote base of the oldest one, so a foreign edit still conflicts;
        - everything else is ordered by ``entry_paths`` (mkdir before child saves, rename after
          everything under its source).

        ``save``/``copy``/``checkpoint`` with content need ``blob`` (from `store_blob`). The manifest line
        is appended and fsynced before the commit. ``large`` defaults to ``size >= large_threshold``.
        """
        raise NotImplementedError

    # ---------------------------------------------------------------- claim and transitions
    async def claim(
        self, worker_id: str, *, lease_seconds: float = 300.0, large: bool | None = None
    ) -> Entry | None:
        """Claim the oldest runnable entry (``queued``, or ``retrying`` whose ``next_attempt_at`` has
        come) none of whose paths intersects (equal, ancestor or descendant) an older active entry.
        One ``UPDATE ... RETURNING``; sets ``running``, the lease and ``claims += 1``. ``large`` filters
        (None = any). Returns None when nothing is runnable or the journal is paused. Entries whose lease
        expired are first put back to ``queued`` with ``needs_check``.
        """
        raise NotImplementedError

    async def renew_lease(self, entry_id: int, worker_id: str, *, lease_seconds: float = 300.0) -> bool:
        """Extend a running entry's lease. False if the entry is no longer ours."""
        raise NotImplementedError

    async def mark_done(
        self,
        entry_id: int,
        *,
        result_etag: str | None = None,
        result_mtime: float | None = None,
        result_fileid: str | None = None,
        presented_mtime: float | None = None,
        remote: RemoteState | None = None,
        cache_blob: bool = False,
    ) -> Entry:
        """running -> done. Releases the blob reference (unless ``cache_blob``: then it becomes the
        ``cached_blob`` of ``remote``). ``remote`` (if given) is upserted into remote_state in the same
        transaction. Raises `InvalidTransition` if the entry is not running."""
        raise NotImplementedError

    async def mark_retry(
        self,
        entry_id: int,
        *,
        error: str,
        error_kind: str = "transient",
        next_attempt_at: float,
        count_attempt: bool = True,
    ) -> Entry:
        """running -> retrying with a persisted ``next_attempt_at``; ``attempts += 1`` unless
        ``count_attempt`` is False."""
        raise NotImplementedError

    async def mark_blocked(self, entry_id: int, *, reason: str, error: str | None = None) -> Entry:
        """running/queued/retrying -> blocked(reason) (offline|auth|predecessor|quota). No attempt
        counted. Released by `unblock`."""
        raise NotImplementedError

    async def block_runnable(self, reason: str, *, error: str | None = None) -> int:
        """Move every queued/retrying entry to blocked(reason) (the offline breaker, the auth pause).
        Returns how many."""
        raise NotImplementedError

    async def unblock(self, reason: str | None = None) -> int:
        """blocked(reason) -> queued for every such entry (all reasons if None). Returns how many."""
        raise NotImplementedError

    async def mark_conflict(self, entry_id: int, *, conflict_path: str | None, error: str) -> Entry:
        """running -> conflict. The blob is kept (user's bytes); never deleted automatically."""
        raise NotImplementedError

    async def mark_failed(self, entry_id: int, *, error: str, error_kind: str = "permanent") -> Entry:
        """running -> failed. The blob is kept; never deleted automatically."""
        raise NotImplementedError

    async def requeue(self, entry_id: int, *, needs_check: bool = True) -> Entry:
        """running -> queued (e.g. the engine is shutting down mid-command)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- user actions (CLI too)
    async def retry(self, entry_id: int, *, force: bool = False) -> Entry:
        """failed/conflict/blocked -> queued, attempts reset, ``needs_check`` set. A conflict is retried
        only with ``force`` (clears the base etag/fileid: overwrite the remote). Refused (unless
        ``force``) if a newer command on the same path was applied since. Works without ownership."""
        raise NotImplementedError

    async def retry_all_failed(self) -> list[int]:
        """`retry` every failed entry that can be retried without force. Returns the ids."""
        raise NotImplementedError

    async def discard(self, entry_id: int) -> Entry:
        """An active (not running) or parked entry -> cancelled (resolution ``discarded``). Its blob
        stays in the spool until retention removes the row. Works without ownership."""
        raise NotImplementedError

    async def resolve(self, entry_id: int) -> Entry:
        """conflict/failed -> done (resolution ``resolved``): the user has dealt with it. Works without
        ownership."""
        raise NotImplementedError

    # ---------------------------------------------------------------- uploads
    async def record_upload_session(
        self,
        entry_id: int,
        *,
        protocol: str,
        url: str,
        token: str | None,
        token_expires: float | None,
        total: int,
        chunk_size: int | None = None,
        offset: int = 0,
        checksum: str | None = None,
        endpoint: str | None = None,
    ) -> UploadRecord:
        """Persist (replace) the upload session of an entry, right after InitiateFileUpload."""
        raise NotImplementedError

    async def update_upload(
        self, entry_id: int, *, offset: int | None = None, sent: int | None = None
    ) -> None:
        """Record a confirmed offset (after each tus PATCH) and/or best-effort progress ``sent``."""
        raise NotImplementedError

    async def reset_upload(self, entry_id: int) -> UploadRecord | None:
        """Forget the session (must initiate again); ``resets += 1`` is kept on the next record."""
        raise NotImplementedError

    async def upload_session(self, entry_id: int) -> UploadRecord | None:
        """The recorded session of an entry, if any."""
        raise NotImplementedError

    async def upload_sessions(self) -> list[UploadRecord]:
        """All recorded sessions (for progress)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- queries
    async def entry(self, entry_id: int) -> Entry:
        """One entry (raises `UnknownEntry`)."""
        raise NotImplementedError

    async def active_entries(self, prefix: str | None = None, *, include_parked: bool = False) -> list[Entry]:
        """Active entries (queued/running/retrying/blocked), journal order, optionally only those whose
        path or src_path is ``prefix`` or under it. For overlays."""
        raise NotImplementedError

    async def entries(
        self,
        states: Iterable[str] | None = None,
        *,
        limit: int | None = None,
        prefix: str | None = None,
        newest_first: bool = False,
    ) -> list[Entry]:
        """Entries in the given states (all if None)."""
        raise NotImplementedError

    async def counts(self) -> dict[str, int]:
        """Number of entries by state (every state present, zeros included)."""
        raise NotImplementedError

    async def stats(self) -> Stats:
        """Counts, oldest pending, bytes to upload, blocked by reason."""
        raise NotImplementedError

    async def next_wakeup(self) -> float | None:
        """Earliest time a ``retrying`` entry becomes runnable or a lease expires (None: nothing)."""
        raise NotImplementedError

    async def has_runnable(self) -> bool:
        """Whether `claim` would return something now (ignores ``paused``)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- remote state
    async def remote_state(self, path: str) -> RemoteState | None:
        raise NotImplementedError

    async def remote_children(self, dir_path: str) -> list[RemoteState]:
        """Direct children of ``dir_path`` we know of."""
        raise NotImplementedError

    async def put_remote_state(self, state: RemoteState) -> None:
        """Upsert. A changed etag drops ``presented_mtime`` unless the new row carries one."""
        raise NotImplementedError

    async def delete_remote_state(self, path: str, *, recursive: bool = True) -> None:
        raise NotImplementedError

    async def move_remote_state(self, src: str, dst: str) -> None:
        """Re-key ``src`` and everything under it to ``dst`` (after a rename)."""
        raise NotImplementedError

    async def presented_mtime(self, path: str, etag: str) -> float | None:
        """The last_modified we presented for this exact etag, or None (etag changed / unknown)."""
        raise NotImplementedError

    async def set_presented_mtime(self, path: str, etag: str, mtime: float) -> None:
        """Remember the last_modified presented for ``etag`` (upserts remote_state)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checkpoints
    async def add_checkpoint(
        self,
        path: str,
        checkpoint_id: str,
        blob: Blob,
        *,
        remote_path: str | None = None,
        entry_id: int | None = None,
    ) -> CheckpointRow:
        raise NotImplementedError

    async def checkpoints(self, path: str) -> list[CheckpointRow]:
        raise NotImplementedError

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        raise NotImplementedError

    async def move_checkpoints(self, src: str, dst: str) -> None:
        """Re-key the checkpoints of ``src`` (and under it) to ``dst``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- staging (JupyterLab chunks)
    async def stage_chunk(self, path: str, chunk: int, data: bytes) -> StagingInfo:
        """Store chunk ``chunk`` (1, 2, ..., or -1 for the last) of a JupyterLab chunked upload.
        Chunk 1 restarts the staging; a repeated chunk overwrites its own range (idempotent); a gap or
        a missing start raises `StagingError`. Costs O(len(data)). The chunk is fsynced before its
        offset is recorded."""
        raise NotImplementedError

    async def finish_staging(self, path: str) -> Blob:
        """Turn the staged upload of ``path`` into a normal spool blob (then `enqueue` a save with it)."""
        raise NotImplementedError

    async def staging(self, path: str) -> StagingInfo | None:
        raise NotImplementedError

    async def drop_staging(self, path: str) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- control, events, gc
    async def control(self) -> Control:
        raise NotImplementedError

    async def set_control(
        self,
        *,
        paused: bool | None = None,
        engine_state: str | None = None,
        last_error: str | _Keep | None = KEEP,
        heartbeat: float | None = None,
    ) -> Control:
        """Update the control row in a short write transaction. Allowed without ownership (the CLI's
        pause/resume); the owner sets engine_state/last_error/heartbeat."""
        raise NotImplementedError

    async def append_event(
        self,
        kind: str,
        *,
        entry_id: int | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the bounded `events` ring (transitions are recorded automatically)."""
        raise NotImplementedError

    async def events(self, *, entry_id: int | None = None, limit: int = 100) -> list[Event]:
        """Newest last."""
        raise NotImplementedError

    async def gc(self, *, batch: int = 500, max_batches: int | None = None) -> dict[str, int]:
        """Retention: delete done/superseded/cancelled rows older than the retention period or beyond
        the row cap (in batches of ``batch``), unlink blobs whose refcount is 0, orphan and tmp spool
        files, expired staging, trim events; compact the manifest (owner only). Returns counters."""
        raise NotImplementedError
