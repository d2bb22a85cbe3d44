"""The `Journal`: one SQLite database, one spool, one owner.

Writes go through a single aiosqlite connection guarded by an anyio lock, each as one
``BEGIN IMMEDIATE ... COMMIT`` with nothing unrelated awaited inside; reads use a separate connection
and see every committed write (WAL). Only the owner (holder of the flock on ``journal.lock``) writes
entries; other processes open read-only, except for the short control writes of the CLI (see
``set_control``, ``retry``, ``discard``, ``resolve``, ``gc``), which SQLite serialises with the owner's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio
import anyio.to_thread

from cs3sync.journal import coalesce, db, ownership, schema
from cs3sync.journal.checkpoints import Checkpoints
from cs3sync.journal.crash import crash_point
from cs3sync.journal.db import convert_rows, fetchall
from cs3sync.journal.errors import (
    InvalidTransition,
    JournalError,
    JournalFull,
    JournalUnreadable,
    NotOwner,
    UnknownEntry,
)
from cs3sync.journal.fs import (
    check_local_fs,
    ensure_private_dir,
)
from cs3sync.journal.paths import is_same_or_related, normalize_path, path_key, path_rows
from cs3sync.journal.remote import RemoteStates
from cs3sync.journal.spool import Spool
from cs3sync.journal.staging import StagingArea
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
from cs3sync.journal.uploads import UploadSessions

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
#: Unreferenced blobs and stray spool files younger than this are left alone by gc (they may be
#: about to be referenced by an enqueue in another process).
DEFAULT_BLOB_GRACE_SECONDS = 600.0

T = TypeVar("T")
_ACTIVE_SQL = ",".join(f"'{s}'" for s in sorted(State.ACTIVE))
_TERMINAL_SQL = ",".join(f"'{s}'" for s in sorted(State.TERMINAL))
_CONTENT_OPS_SQL = f"'{Op.SAVE}','{Op.COPY}','{Op.CHECKPOINT}'"

# The oldest runnable entry none of whose paths intersects (same, ancestor, descendant) an older active
# entry. Used by claim (inside one UPDATE ... RETURNING) and by has_runnable.
_RUNNABLE_SQL = f"""
    SELECT e.id FROM entries e INDEXED BY entries_runnable
    WHERE e.state IN ('queued', 'retrying') AND (e.state = 'queued' OR e.next_attempt_at <= :now)
      AND (:large IS NULL OR e.large = :large)
      AND NOT EXISTS (  -- an older active entry at or below one of our paths
          SELECT 1 FROM entry_paths mine
          JOIN entry_paths theirs ON theirs.key = mine.key AND theirs.entry_id < e.id
          JOIN entries o ON o.id = theirs.entry_id
          WHERE mine.entry_id = e.id AND mine.self = 1 AND o.state IN ({_ACTIVE_SQL}))
      AND NOT EXISTS (  -- an older active entry at one of our paths or their ancestors
          SELECT 1 FROM entry_paths mine
          JOIN entry_paths theirs ON theirs.key = mine.key AND theirs.self = 1 AND theirs.entry_id < e.id
          JOIN entries o ON o.id = theirs.entry_id
          WHERE mine.entry_id = e.id AND o.state IN ({_ACTIVE_SQL}))
    ORDER BY e.id LIMIT 1"""


class _Keep:
    """Sentinel type: leave the field as it is."""


KEEP = _Keep()


@dataclasses.dataclass
class _Enqueue:
    """One enqueue waiting for a group commit (see `Journal._commit_group`)."""

    op: str
    path: str
    src: str | None
    blob: Blob | None
    base_etag: str | None
    base_fileid: str | None
    kind: str
    large: bool
    extra: Mapping[str, Any] | None
    needs_check: bool
    now: float
    done: bool = False
    entry: Entry | None = None
    error: BaseException | None = None


def _staging_key(path: str, client: str) -> str:
    """The staging row of one client's upload of a path (a newline never occurs in a CS3 path)."""
    path = normalize_path(path)
    return f"{path}\n{client}" if client else path


class Journal:
    """The operation journal. Create with ``await Journal.open(...)``; use as an async context manager."""

    def __init__(
        self,
        dir: Path,
        *,
        owner: bool,
        now: Callable[[], float],
        spool: Spool,
        reader: aiosqlite.Connection,
        writer: aiosqlite.Connection | None,
        lock: ownership.OwnerLock | None,
        large_threshold: int,
        retention_seconds: float,
        retention_rows: int,
        staging_expiry_seconds: float,
        events_max: int,
        blob_grace_seconds: float,
    ) -> None:
        self.dir = dir
        self.owner = owner
        self._now = now
        self.spool = spool
        self._reader = reader
        self._writer = writer
        self._lock = lock
        self.large_threshold = large_threshold
        self.retention_seconds = retention_seconds
        self.retention_rows = retention_rows
        self.staging_expiry_seconds = staging_expiry_seconds
        self.events_max = events_max
        self.blob_grace_seconds = blob_grace_seconds
        self._wlock = anyio.Lock()
        self._synchronous = "FULL"  # the writer connection's current PRAGMA synchronous (see transaction)
        #: Blobs stored by this process but not yet referenced by a row: protected from gc.
        self._pins: Counter[str] = Counter()
        self.staging_area = StagingArea(self)
        # The journal's parts, each on this unit of work; the methods below delegate to them.
        self.remote = RemoteStates(self)
        self.checkpoint_rows = Checkpoints(self)
        self.uploads = UploadSessions(self)
        self._closed = False
        #: Entries written by the transaction in progress / by committed ones not taken yet (see
        #: track_changes). The trigger adds from the writer's thread; sets are safe for that.
        self._uncommitted: set[int] = set()
        self._changed: set[int] = set()
        #: Group commit: enqueues waiting for a transaction, and the lock of the one that commits them.
        self._waiting: list[_Enqueue] = []
        self._group_lock = anyio.Lock()
        #: Set when open found a broken db: (quarantined path, reason, re-imported entry ids).
        self.quarantined: tuple[Path, str, list[int]] | None = None

    # ================================================================ open / close
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
        blob_grace_seconds: float = DEFAULT_BLOB_GRACE_SECONDS,
        mounts_file: str | Path = "/proc/mounts",
        account: str | None = None,
    ) -> Journal:
        """Open (as owner: create, lock, check, migrate, recover) the journal in ``dir``.

        owner=True: creates ``dir`` (0700) if needed, refuses a network/FUSE file system unless
        ``allow_network_fs``, takes ``flock(journal.lock)`` (raises `JournalLocked` if held), runs
        ``PRAGMA quick_check`` (a broken db is renamed aside to ``journal.db.corrupt-<time>``, a fresh one
        created and pending saves re-imported from ``spool/manifest.log``), migrates the schema, and
        recovers: every ``running`` entry goes back to ``queued`` with ``needs_check`` set.

        owner=False: opens the existing db read-only (raises `JournalUnreadable` if missing, broken or of
        an unknown schema). Entry writes raise `NotOwner`, except the CLI's control writes.

        ``account`` (owner only; e.g. ``"einstein@cernbox.cern.ch"``) is recorded in ``meta`` for
        `status`. ``mounts_file`` is the mount table consulted for the network-fs check.
        """
        path = Path(dir)
        settings = dict(
            now=now,
            large_threshold=large_threshold,
            retention_seconds=retention_seconds,
            retention_rows=retention_rows,
            staging_expiry_seconds=staging_expiry_seconds,
            events_max=events_max,
            blob_grace_seconds=blob_grace_seconds,
        )
        if owner:
            journal = await cls._open_owner(path, allow_network_fs, mounts_file, settings)
            if account is not None:
                await journal.set_meta("account", account)
            return journal
        return await cls._open_reader(path, settings)

    @classmethod
    async def _open_owner(
        cls, dir: Path, allow_network_fs: bool, mounts_file: str | Path, settings: dict[str, Any]
    ) -> Journal:
        await anyio.to_thread.run_sync(
            lambda: check_local_fs(dir, allow_network_fs=allow_network_fs, mounts_file=mounts_file)
        )
        await anyio.to_thread.run_sync(ensure_private_dir, dir)
        lock = await anyio.to_thread.run_sync(ownership.acquire, dir / "journal.lock")
        writer = reader = None
        try:
            spool = Spool(dir / "spool")
            await anyio.to_thread.run_sync(spool.setup)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(settings["now"]()))
            db_file = dir / "journal.db"
            quarantined, reason = await anyio.to_thread.run_sync(db.prepare_owner_db, db_file, stamp)
            writer = await db.connect(db_file, readonly=False)
            reader = await db.connect(db_file, readonly=False)
            await reader.execute("PRAGMA query_only = ON")
            journal = cls(dir, owner=True, spool=spool, reader=reader, writer=writer, lock=lock, **settings)
            if quarantined is not None:
                ids = await journal._reimport_manifest(stamp)
                journal.quarantined = (quarantined, reason or "corrupt", ids)
                await journal.append_event(
                    "quarantined", message=f"broken db renamed to {quarantined.name}; {len(ids)} re-imported"
                )
            await journal._recover()
            return journal
        except BaseException:
            for conn in (writer, reader):
                if conn is not None:
                    await conn.close()
            lock.release()
            raise

    @classmethod
    async def _open_reader(cls, dir: Path, settings: dict[str, Any]) -> Journal:
        db_file = dir / "journal.db"
        if not await anyio.to_thread.run_sync(db_file.exists):
            raise JournalUnreadable(f"no journal at {dir}")
        try:
            reader = await db.connect(db_file, readonly=True)
        except sqlite3.Error as exc:
            raise JournalUnreadable(f"cannot open the journal: {exc}") from exc
        try:
            rows = await fetchall(reader, "PRAGMA quick_check")
            if [tuple(r) for r in rows] != [("ok",)]:
                raise JournalUnreadable("the journal database is corrupt: " + str(tuple(rows[0])))
            version = await fetchall(reader, "SELECT value FROM meta WHERE key = 'schema_version'")
            if not version or int(version[0][0]) != schema.SCHEMA_VERSION:
                found = version[0][0] if version else "none"
                raise JournalUnreadable(
                    f"journal schema version {found}; this cs3sync reads version {schema.SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            await reader.close()
            raise JournalUnreadable(f"the journal database is unreadable: {exc}") from exc
        except BaseException:
            await reader.close()
            raise
        spool = Spool(dir / "spool")
        return cls(dir, owner=False, spool=spool, reader=reader, writer=None, lock=None, **settings)

    async def close(self) -> None:
        """Close connections and release the owner lock."""
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.owner and self._writer is not None:
                    with contextlib.suppress(sqlite3.Error):
                        await self._execute_control(
                            "UPDATE control SET owner_pid = NULL, engine_state = 'stopped', updated_at = ?",
                            (self.now(),),
                        )
                    self._closed = True
                    await self._writer.close()
                self._closed = True
                await self._reader.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def now(self) -> float:
        """The journal's clock (injectable for tests)."""
        return self._now()

    @property
    def db_path(self) -> Path:
        return self.dir / "journal.db"

    def blob_path(self, sha256: str) -> Path:
        """Where the spool keeps the blob ``sha256`` (``spool/<sha[:2]>/<sha>``)."""
        return self.spool.blob_path(sha256)

    def owner_pid(self) -> int | None:
        """The pid of the live owner process (ours if we own it), without touching the lock."""
        return os.getpid() if self.owner else ownership.owner_alive(self.dir / "journal.lock")

    # ================================================================ unit of work
    # `transaction` and `read` are the public unit of work the journal's parts (staging, retention,
    # remote state, checkpoints, upload sessions) build on.
    @contextlib.asynccontextmanager
    async def transaction(
        self, *, control: bool = False, durable: bool = True
    ) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE ... COMMIT`` under the write lock. Shielded from cancellation, so a
        transaction is never left half-way by a cancelled caller (its body only awaits the database).
        Non-owners may only run ``control`` transactions, on a short-lived connection.

        ``durable=False`` is for the engine's own bookkeeping (claims, leases, done/retry marks, upload
        sessions, what was seen on the storage): committed with ``synchronous=NORMAL``, i.e. atomic but
        without its own fsync of the WAL. A power cut may roll such a commit back, which is the same as
        a crash just before it, and every command is built to be re-run ("already done?" first); the
        next durable commit (an enqueue, a user's retry/discard, gc before it unlinks blobs) fsyncs the
        WAL and with it every commit before it. Acknowledged changes are always ``durable``."""
        if not self.owner and not control:
            raise NotOwner("this process does not own the journal (opened read-only)")
        if self._closed:
            raise JournalError("the journal is closed")
        async with self._wlock:
            with anyio.CancelScope(shield=True):
                conn = (
                    self._writer
                    if self._writer is not None
                    else await db.connect(self.db_path, readonly=False)
                )
                try:
                    if conn is self._writer:
                        wanted = "FULL" if durable else "NORMAL"
                        if self._synchronous != wanted:
                            await conn.execute(f"PRAGMA synchronous = {wanted}")
                            self._synchronous = wanted
                    await conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        if not self.owner:
                            await conn.execute(
                                "UPDATE control SET generation = generation + 1, updated_at = ?",
                                (self.now(),),
                            )
                        await conn.execute("COMMIT")
                    except BaseException as exc:
                        self._hand_on_changes()  # rolled back: reporting the ids anyway is harmless
                        # Also after a failed COMMIT: SQLite may or may not have rolled back by itself
                        # (SQLITE_FULL, SQLITE_IOERR); a transaction left open would make every later
                        # BEGIN fail, so the journal would never write again once space is freed.
                        with contextlib.suppress(sqlite3.Error):
                            await conn.execute("ROLLBACK")
                        if _is_disk_full(exc):
                            raise JournalFull("local disk full: the journal could not be written") from exc
                        raise
                    self._hand_on_changes()
                finally:
                    if conn is not self._writer:
                        await conn.close()

    def _hand_on_changes(self) -> None:
        if self._uncommitted:
            self._changed |= self._uncommitted
            self._uncommitted.clear()

    async def _execute_control(self, sql: str, params: Iterable[Any]) -> None:
        async with self.transaction(control=True) as conn:
            await conn.execute(sql, tuple(params))

    async def read(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Every row of one query, on the reader connection (never waits for the writer)."""
        if self._closed:
            raise JournalError("the journal is closed")
        p = params if isinstance(params, Mapping) else tuple(params)
        return list(await self._reader.execute_fetchall(sql, p))

    async def _event(
        self,
        conn: aiosqlite.Connection,
        kind: str,
        entry_id: int | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        cursor = await conn.execute(
            "INSERT INTO events (at, entry_id, kind, message, data) VALUES (?, ?, ?, ?, ?)",
            (self.now(), entry_id, kind, message, json.dumps(dict(data)) if data else None),
        )
        # The ring: drop what fell off the end (a primary-key range, so cheap).
        await conn.execute("DELETE FROM events WHERE id <= ?", ((cursor.lastrowid or 0) - self.events_max,))

    async def _manifest_end(self, ids: Iterable[int], end: str) -> None:
        """Best-effort "this entry is finished" lines (the manifest is only read after corruption)."""
        records = [{"v": 1, "id": i, "end": end} for i in ids]
        if records:
            with contextlib.suppress(OSError, JournalError):
                await self.spool.append_manifest(records, durable=False)

    # ================================================================ spool
    async def store_blob(self, source: bytes | Path | AsyncIterable[bytes]) -> Blob:
        """Write content durably to the spool: tmp -> fsync -> rename -> fsync dir (all in threads).

        Returns the content-addressed `Blob`. Until it is referenced by ``enqueue`` (or a checkpoint /
        remote_state row) it is protected from gc in this process. Raises `SpoolFull` on ENOSPC/EDQUOT,
        leaving nothing behind. Owner only.
        """
        if not self.owner:
            raise NotOwner("only the journal owner writes to the spool")
        blob = await self.spool.store(source)
        self._pins[blob.sha256] += 1
        return blob

    async def reuse_blob(self, sha256: str, size: int) -> Blob:
        """A blob already in the spool (a pending save's) for another entry with the same content,
        without writing and fsyncing it again; held against gc like a stored one until its enqueue.
        Raises `JournalError` if it is gone (the caller stores the content instead)."""
        if not self.owner:
            raise NotOwner("only the journal owner writes to the spool")
        self._pins[sha256] += 1
        if not await anyio.to_thread.run_sync(self.blob_path(sha256).exists):
            self.unpin(sha256)
            raise JournalError("the blob is not in the spool")
        return Blob(sha256=sha256, size=size, path=self.blob_path(sha256))

    def unpin(self, sha: str | None) -> None:
        """Release the hold an enqueue or a checkpoint took on a blob it just stored (gc may then drop it)."""
        if sha and self._pins[sha] > 0:
            self._pins[sha] -= 1
            if not self._pins[sha]:
                del self._pins[sha]

    def is_pinned(self, sha: str) -> bool:
        return self._pins[sha] > 0

    @staticmethod
    async def ensure_blob_row(conn: aiosqlite.Connection, sha: str, size: int, now: float) -> None:
        """The ``blobs`` row of a spool blob, inside a transaction (refcount 0 until an entry uses it)."""
        await conn.execute(
            "INSERT INTO blobs (sha256, size, refcount, created_at) VALUES (?, ?, 0, ?)"
            " ON CONFLICT (sha256) DO NOTHING",
            (sha, size, now),
        )

    # ================================================================ enqueue
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
        needs_check: bool = False,
    ) -> Entry:
        """Journal a command durably and return its entry (state ``queued``, or ``cancelled`` if it
        annihilated with a pending create). Applies the coalescing rules (coalesce.py) in the same
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

        ``save``/``checkpoint`` need ``blob`` (from `store_blob`); ``copy`` may carry one (the source's
        content) or not (the engine downloads). The manifest line is appended and fsynced before the
        commit. ``large`` defaults to ``size >= large_threshold``.
        """
        if op not in Op.ALL:
            raise ValueError(f"unknown op {op!r}")
        path = normalize_path(path)
        src = normalize_path(src_path) if src_path is not None else None
        if op in (Op.RENAME, Op.COPY) and src is None:
            raise ValueError(f"{op} needs src_path")
        if op in (Op.SAVE, Op.CHECKPOINT) and blob is None:
            raise ValueError(f"{op} needs a blob")
        if not self.owner:
            raise NotOwner("only the journal owner enqueues")
        # A blob this process stored and has not enqueued yet is pinned: gc leaves it alone.
        if (
            blob is not None
            and not self.is_pinned(blob.sha256)
            and not await anyio.to_thread.run_sync(self.blob_path(blob.sha256).exists)
        ):
            raise JournalError("the blob is not in the spool; store it with store_blob first")
        size = blob.size if blob is not None else None
        is_large = bool(large) if large is not None else (size or 0) >= self.large_threshold
        request = _Enqueue(
            op, path, src, blob, base_etag, base_fileid, kind, is_large, extra, needs_check, self.now()
        )
        self._waiting.append(request)
        try:
            async with self._group_lock:
                if not request.done:  # else an earlier holder of the lock committed it with its own
                    batch, self._waiting = self._waiting, []
                    await self._commit_group(batch)
        except BaseException:
            if request in self._waiting:  # cancelled before any commit took it: never journaled
                self._waiting.remove(request)
            raise
        if request.error is not None:
            raise request.error
        assert request.entry is not None
        return request.entry

    async def _commit_group(self, batch: list[_Enqueue]) -> None:
        """Group commit: every enqueue that arrived while the previous one committed goes into one
        transaction, with one manifest fsync and one WAL fsync for all of them (8 creates in flight
        used to queue 8 transactions, each paying both). If the group fails, each is committed alone,
        so an error stays with its own request."""
        with anyio.CancelScope(shield=True):
            try:
                async with self.transaction() as conn:
                    rows, records = [], []
                    for request in batch:
                        row, lines = await self._insert_entry(conn, request)
                        rows.append(row)
                        records += lines
                    # Written and fsynced before the commit: a committed row always has its manifest line.
                    await self.spool.append_manifest(records, durable=True)
                    crash_point("manifest_written")
            except Exception as exc:
                if len(batch) > 1:
                    for request in batch:
                        await self._commit_group([request])
                    return
                batch[0].error, batch[0].done = exc, True
                return
            crash_point("committed")
            for request, row in zip(batch, rows, strict=True):
                if request.blob is not None:
                    self.unpin(request.blob.sha256)
                request.entry, request.done = Entry.from_row(row), True

    async def _insert_entry(
        self, conn: aiosqlite.Connection, request: _Enqueue
    ) -> tuple[sqlite3.Row, list[dict[str, Any]]]:
        """The rows of one enqueue (coalescing applied), and its manifest lines."""
        op, path, src, blob, kind, now = (
            request.op,
            request.path,
            request.src,
            request.blob,
            request.kind,
            request.now,
        )
        base_etag, base_fileid = request.base_etag, request.base_fileid
        size = blob.size if blob is not None else None
        if blob is not None:
            await self.ensure_blob_row(conn, blob.sha256, blob.size, now)
        plan = await coalesce.plan(conn, op, path, src)
        if plan.inherit_base:
            base_etag, base_fileid = plan.base_etag, plan.base_fileid
        state = State.CANCELLED if plan.cancel_self else State.QUEUED
        rows = await fetchall(
            conn,
            """INSERT INTO entries (op, path, src_path, kind, state, blob, sha256, size, base_etag,
                   base_fileid, large, needs_check, prior_blobs, extra, resolution, created_at,
                   updated_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *""",
            (
                op,
                path,
                src,
                kind,
                state,
                None if plan.cancel_self or blob is None else blob.sha256,
                blob.sha256 if blob is not None else None,
                size,
                base_etag,
                base_fileid,
                int(request.large),
                int(request.needs_check),
                json.dumps(plan.prior_blobs) if plan.prior_blobs else None,
                json.dumps(dict(request.extra)) if request.extra else None,
                Resolution.ANNIHILATED if plan.cancel_self else None,
                now,
                now,
                now if plan.cancel_self else None,
            ),
        )
        row = rows[0]
        new_id = row["id"]
        if not plan.cancel_self:
            await conn.executemany(
                "INSERT INTO entry_paths (entry_id, key, self) VALUES (?, ?, ?)",
                [(new_id, key, is_self) for key, is_self in path_rows(path, *([src] if src else []))],
            )
        for old in plan.supersede:
            await self._finish_folded(conn, old, new_id, State.SUPERSEDED, Resolution.SUPERSEDED, now)
        for old in plan.cancel:
            await self._finish_folded(conn, old, new_id, State.CANCELLED, Resolution.ANNIHILATED, now)
        await self._event(
            conn,
            "enqueued",
            new_id,
            f"{op} {path}",
            {"superseded": plan.supersede, "cancelled": plan.cancel},
        )
        record = {
            "v": 1,
            "id": new_id,
            "op": op,
            "path": path,
            "src": src,
            "blob": blob.sha256 if blob else None,
            "size": size,
            "base_etag": base_etag,
            "base_fileid": base_fileid,
            "kind": kind,
            "at": now,
        }
        ended = [{"v": 1, "id": i, "end": "folded"} for i in (*plan.supersede, *plan.cancel)]
        if plan.cancel_self:
            ended.append({"v": 1, "id": new_id, "end": "folded"})
        return row, [record, *ended]

    async def _finish_folded(
        self, conn: aiosqlite.Connection, entry_id: int, by: int, state: str, resolution: str, now: float
    ) -> None:
        # An entry that never ran cannot be on the storage: its blob is released at once (1000 offline
        # autosaves must not keep 1000 copies). One that ran may be there; the new entry lists it in
        # prior_blobs and this row keeps the blob until retention.
        await conn.execute(
            """UPDATE entries SET state = ?, resolution = ?, superseded_by = ?, finished_at = ?,
                   updated_at = ?, blocked_reason = NULL, lease_owner = NULL, lease_expires = NULL,
                   blob = CASE WHEN claims = 0 THEN NULL ELSE blob END
               WHERE id = ?""",
            (state, resolution, by, now, now, entry_id),
        )
        await conn.execute("DELETE FROM entry_paths WHERE entry_id = ?", (entry_id,))
        await self._event(conn, state, entry_id, f"by {by}")

    # ================================================================ claim and transitions
    async def claim(
        self, worker_id: str, *, lease_seconds: float = 300.0, large: bool | None = None
    ) -> Entry | None:
        """Claim the oldest runnable entry (``queued``, or ``retrying`` whose ``next_attempt_at`` has
        come) none of whose paths intersects (equal, ancestor or descendant) an older active entry.
        One ``UPDATE ... RETURNING``; sets ``running``, the lease and ``claims += 1``. ``large`` filters
        (None = any). Returns None when nothing is runnable or the journal is paused. Entries whose lease
        expired are first put back to ``queued`` with ``needs_check``.
        """
        now = self.now()
        params = {
            "now": now,
            "worker": worker_id,
            "expires": now + lease_seconds,
            "large": None if large is None else int(large),
        }
        async with self.transaction(durable=False) as conn:
            await conn.execute(
                """UPDATE entries SET state = 'queued', needs_check = 1, lease_owner = NULL,
                       lease_expires = NULL, updated_at = :now
                   WHERE state = 'running' AND lease_expires < :now""",
                params,
            )
            rows = await fetchall(
                conn,
                f"""UPDATE entries SET state = 'running', lease_owner = :worker, lease_expires = :expires,
                        claims = claims + 1, blocked_reason = NULL, updated_at = :now
                    WHERE id = ({_RUNNABLE_SQL})
                      AND NOT (SELECT paused FROM control WHERE id = 1)
                    RETURNING *""",
                params,
            )
            if not rows:
                return None
            await self._event(conn, "claimed", rows[0]["id"], worker_id)
        return Entry.from_row(rows[0])

    async def renew_lease(self, entry_id: int, worker_id: str, *, lease_seconds: float = 300.0) -> bool:
        """Extend a running entry's lease. False if the entry is no longer ours."""
        now = self.now()
        async with self.transaction(durable=False) as conn:
            cursor = await conn.execute(
                "UPDATE entries SET lease_expires = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (now + lease_seconds, now, entry_id, worker_id),
            )
            return cursor.rowcount == 1

    async def _transition(
        self,
        entry_id: int,
        allowed: Iterable[str],
        sets: Mapping[str, Any],
        event: str,
        *,
        message: str | None = None,
        control: bool = False,
        durable: bool = True,
        drop_paths: bool = False,
        conn_hook: Callable[[aiosqlite.Connection, sqlite3.Row], Any] | None = None,
    ) -> Entry:
        """Move one entry from one of ``allowed`` states, applying ``sets``, with an event."""
        allowed = tuple(allowed)
        now = self.now()
        values = {**sets, "updated_at": now}
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        async with self.transaction(control=control, durable=durable) as conn:
            current = await fetchall(conn, "SELECT * FROM entries WHERE id = ?", (entry_id,))
            if not current:
                raise UnknownEntry(entry_id)
            if current[0]["state"] not in allowed:
                raise InvalidTransition(
                    f"entry {entry_id} is {current[0]['state']}; {event} needs {' or '.join(allowed)}"
                )
            if conn_hook is not None:
                await conn_hook(conn, current[0])
            rows = await fetchall(
                conn,
                f"UPDATE entries SET {assignments} WHERE id = :entry_id RETURNING *",
                {**values, "entry_id": entry_id},
            )
            if drop_paths:
                await conn.execute("DELETE FROM entry_paths WHERE entry_id = ?", (entry_id,))
            await self._event(conn, event, entry_id, message)
        return Entry.from_row(rows[0])

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

        async def hook(conn: aiosqlite.Connection, row: sqlite3.Row) -> None:
            await conn.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
            if remote is not None:
                cached = row["blob"] if cache_blob and row["blob"] else remote.cached_blob
                await self.remote.upsert(conn, remote, cached)

        entry = await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "state": State.DONE,
                "result_etag": result_etag,
                "result_mtime": result_mtime,
                "result_fileid": result_fileid,
                "presented_mtime": presented_mtime,
                "finished_at": self.now(),
                "blob": None,
                "needs_check": 0,
                "lease_owner": None,
                "lease_expires": None,
                "blocked_reason": None,
                "last_error": None,
                "last_error_kind": None,
            },
            "done",
            drop_paths=True,
            conn_hook=hook,
            durable=False,
        )
        await self._manifest_end([entry_id], "done")
        return entry

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
        current = await self.entry(entry_id)
        return await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "state": State.RETRYING,
                "attempts": current.attempts + (1 if count_attempt else 0),
                "next_attempt_at": next_attempt_at,
                "last_error": error,
                "last_error_kind": error_kind,
                "lease_owner": None,
                "lease_expires": None,
            },
            "retrying",
            message=error,
            durable=False,
        )

    async def mark_blocked(self, entry_id: int, *, reason: str, error: str | None = None) -> Entry:
        """running/queued/retrying -> blocked(reason) (offline|auth|predecessor|quota). No attempt
        counted. Released by `unblock`."""
        if reason not in BlockedReason.ALL:
            raise ValueError(f"unknown blocked reason {reason!r}")
        sets: dict[str, Any] = {
            "state": State.BLOCKED,
            "blocked_reason": reason,
            "lease_owner": None,
            "lease_expires": None,
        }
        if error is not None:
            sets.update(last_error=error, last_error_kind=reason)
        return await self._transition(
            entry_id,
            (State.RUNNING, State.QUEUED, State.RETRYING),
            sets,
            "blocked",
            message=reason,
            durable=False,
        )

    async def block_runnable(self, reason: str, *, error: str | None = None) -> int:
        """Move every queued/retrying entry to blocked(reason) (the offline breaker, the auth pause).
        Returns how many."""
        if reason not in BlockedReason.ALL:
            raise ValueError(f"unknown blocked reason {reason!r}")
        async with self.transaction(durable=False) as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'blocked', blocked_reason = ?, updated_at = ?,
                       last_error = coalesce(?, last_error), last_error_kind = CASE WHEN ? IS NULL
                       THEN last_error_kind ELSE ? END
                   WHERE state IN ('queued', 'retrying')""",
                (reason, self.now(), error, error, reason),
            )
            if cursor.rowcount:
                await self._event(conn, "blocked", None, f"{cursor.rowcount} entries: {reason}")
            return cursor.rowcount

    async def unblock(self, reason: str | None = None) -> int:
        """blocked(reason) -> queued for every such entry (all reasons if None). Returns how many."""
        async with self.transaction(durable=False) as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'queued', blocked_reason = NULL, next_attempt_at = NULL,
                       updated_at = ?
                   WHERE state = 'blocked' AND (? IS NULL OR blocked_reason = ?)""",
                (self.now(), reason, reason),
            )
            if cursor.rowcount:
                await self._event(conn, "unblocked", None, f"{cursor.rowcount} entries: {reason or 'all'}")
            return cursor.rowcount

    async def mark_conflict(self, entry_id: int, *, conflict_path: str | None, error: str) -> Entry:
        """running -> conflict. The blob is kept (user's bytes); never deleted automatically."""
        return await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "state": State.CONFLICT,
                "conflict_path": conflict_path,
                "last_error": error,
                "last_error_kind": "conflict",
                "lease_owner": None,
                "lease_expires": None,
            },
            "conflict",
            message=error,
        )

    async def rebase_save(
        self,
        entry_id: int,
        blob: Blob,
        *,
        base_etag: str,
        base_fileid: str | None,
        presented_mtime: float,
        merge: Mapping[str, Any],
    ) -> Entry:
        """A running save now carries ``blob`` (its content merged with a foreign change) based on the
        storage's version ``base_etag``; it stays running. One transaction: content, base, the merge note
        (``extra['merge']``), a new manifest line (so a re-import after corruption brings the merged
        save back) and no recorded upload session (it was for the old content). A crash before the
        commit redoes the merge; after it, the save goes on with the merged content."""
        current = await self.entry(entry_id)
        extra = {**current.extra, "merge": dict(merge)}

        async def hook(conn: aiosqlite.Connection, row: sqlite3.Row) -> None:
            await self.ensure_blob_row(conn, blob.sha256, blob.size, self.now())
            await conn.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
            record = {
                "v": 1, "id": entry_id, "op": Op.SAVE, "path": row["path"], "src": None, "blob": blob.sha256,
                "size": blob.size, "base_etag": base_etag, "base_fileid": base_fileid, "kind": row["kind"],
                "at": self.now(),
            }  # fmt: skip
            await self.spool.append_manifest([record], durable=True)

        entry = await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "blob": blob.sha256,
                "sha256": blob.sha256,
                "size": blob.size,
                "large": int(blob.size >= self.large_threshold),
                "base_etag": base_etag,
                "base_fileid": base_fileid,
                "presented_mtime": presented_mtime,
                "extra": json.dumps(extra),
            },
            "merged",
            message=str(merge.get("message") or ""),
            conn_hook=hook,
        )
        self.unpin(blob.sha256)
        return entry

    async def note_merge(self, entry_id: int, merge: Mapping[str, Any]) -> Entry:
        """Record on a running entry why its merge did not happen (``extra['merge']``: the colliding
        cells or lines), for `status` and the sync panel."""
        current = await self.entry(entry_id)
        return await self._transition(
            entry_id,
            (State.RUNNING,),
            {"extra": json.dumps({**current.extra, "merge": dict(merge)})},
            "merge_failed",
            message=str(merge.get("message") or ""),
        )

    async def mark_failed(self, entry_id: int, *, error: str, error_kind: str = "permanent") -> Entry:
        """running -> failed. The blob is kept; never deleted automatically."""
        return await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "state": State.FAILED,
                "last_error": error,
                "last_error_kind": error_kind,
                "lease_owner": None,
                "lease_expires": None,
            },
            "failed",
            message=error,
        )

    async def requeue(self, entry_id: int, *, needs_check: bool = True) -> Entry:
        """running -> queued (e.g. the engine is shutting down mid-command)."""
        return await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "state": State.QUEUED,
                "needs_check": int(needs_check),
                "lease_owner": None,
                "lease_expires": None,
            },
            "requeued",
            durable=False,
        )

    async def _recover(self) -> None:
        """At owner start: nothing is running, whatever the rows say."""
        now = self.now()
        async with self.transaction() as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'queued', needs_check = 1, lease_owner = NULL,
                       lease_expires = NULL, updated_at = ? WHERE state = 'running'""",
                (now,),
            )
            if cursor.rowcount:
                await self._event(conn, "recovered", None, f"{cursor.rowcount} running entries requeued")
            await conn.execute(
                "UPDATE control SET owner_pid = ?, heartbeat = ?, updated_at = ?", (os.getpid(), now, now)
            )

    # ================================================================ user actions (CLI too)
    async def retry(self, entry_id: int, *, force: bool = False) -> Entry:
        """failed/conflict/blocked -> queued, attempts reset, ``needs_check`` set. A conflict is retried
        only with ``force`` (clears the base etag/fileid: overwrite the remote). Refused (unless
        ``force``) if a newer command on the same path was applied since. Works without ownership."""
        entry = await self.entry(entry_id)
        if entry.state == State.CONFLICT and not force:
            raise InvalidTransition(
                f"entry {entry_id} is a conflict: `resolve` it, or retry with force to overwrite the remote"
            )
        if not force:
            await self._refuse_if_newer(entry)
        sets: dict[str, Any] = {
            "state": State.QUEUED,
            "attempts": 0,
            "needs_check": 1,
            "blocked_reason": None,
            "next_attempt_at": None,
            "finished_at": None,
        }
        if force and entry.state == State.CONFLICT:
            sets.update(base_etag=None, base_fileid=None)
        rows = path_rows(*entry.paths())

        async def restore_paths(conn: aiosqlite.Connection, row: sqlite3.Row) -> None:
            await conn.executemany(
                "INSERT OR IGNORE INTO entry_paths (entry_id, key, self) VALUES (?, ?, ?)",
                [(entry_id, key, is_self) for key, is_self in rows],
            )

        return await self._transition(
            entry_id,
            (State.FAILED, State.CONFLICT, State.BLOCKED),
            sets,
            "retried",
            control=True,
            conn_hook=restore_paths,
            message="forced" if force else None,
        )

    async def _refuse_if_newer(self, entry: Entry) -> None:
        """InvalidTransition if a later live command touches the same path: re-applying ``entry`` would
        put an older command over it."""
        newer = await self.read(
            "SELECT id, path, src_path FROM entries"
            " WHERE id > ? AND state NOT IN ('superseded', 'cancelled')",
            (entry.id,),
        )
        for row in newer:
            if any(is_same_or_related(p, q) for p in entry.paths() for q in filter(None, row[1:])):
                raise InvalidTransition(
                    f"entry {row['id']} on the same path came later; retrying {entry.id} would apply "
                    "an older command over it (use force to do it anyway)"
                )

    async def keep_mine(self, entry_id: int) -> Entry:
        """A conflict -> queued again over the storage's version ("Keep mine": base etag/fileid cleared),
        unless a later command on the same path exists (the user's newer change is not overwritten by an
        older one). The conflict copy stays. Works without ownership."""
        entry = await self.entry(entry_id)
        if entry.state != State.CONFLICT:
            raise InvalidTransition(f"entry {entry_id} is not a conflict (it is {entry.state})")
        await self._refuse_if_newer(entry)
        return await self.retry(entry_id, force=True)

    async def retry_all_failed(self) -> list[int]:
        """`retry` every failed entry that can be retried without force. Returns the ids."""
        retried = []
        for entry in await self.entries([State.FAILED]):
            with contextlib.suppress(InvalidTransition):
                await self.retry(entry.id)
                retried.append(entry.id)
        return retried

    async def discard(self, entry_id: int) -> Entry:
        """An active (not running) or parked entry -> cancelled (resolution ``discarded``). Its blob
        stays in the spool until retention removes the row. Works without ownership."""
        entry = await self._transition(
            entry_id,
            (State.QUEUED, State.RETRYING, State.BLOCKED, State.CONFLICT, State.FAILED),
            {
                "state": State.CANCELLED,
                "resolution": Resolution.DISCARDED,
                "finished_at": self.now(),
                "blocked_reason": None,
            },
            "discarded",
            control=True,
            drop_paths=True,
        )
        await self._manifest_end([entry_id], "discarded")
        return entry

    async def resolve(self, entry_id: int) -> Entry:
        """conflict/failed -> done (resolution ``resolved``): the user has dealt with it. Works without
        ownership."""
        entry = await self._transition(
            entry_id,
            (State.CONFLICT, State.FAILED),
            {"state": State.DONE, "resolution": Resolution.RESOLVED, "finished_at": self.now()},
            "resolved",
            control=True,
            drop_paths=True,
        )
        await self._manifest_end([entry_id], "resolved")
        return entry

    # ======================================= uploads: delegated to journal/uploads.py
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
        return await self.uploads.record_upload_session(
            entry_id,
            protocol=protocol,
            url=url,
            token=token,
            token_expires=token_expires,
            total=total,
            chunk_size=chunk_size,
            offset=offset,
            checksum=checksum,
            endpoint=endpoint,
        )

    async def update_upload(
        self, entry_id: int, *, offset: int | None = None, sent: int | None = None
    ) -> None:
        return await self.uploads.update_upload(entry_id, offset=offset, sent=sent)

    async def reset_upload(self, entry_id: int) -> UploadRecord | None:
        return await self.uploads.reset_upload(entry_id)

    async def upload_session(self, entry_id: int) -> UploadRecord | None:
        return await self.uploads.upload_session(entry_id)

    async def upload_sessions(self) -> list[UploadRecord]:
        return await self.uploads.upload_sessions()

    # ================================================================ queries
    async def entry(self, entry_id: int) -> Entry:
        """One entry (raises `UnknownEntry`)."""
        rows = await self.read("SELECT * FROM entries WHERE id = ?", (entry_id,))
        if not rows:
            raise UnknownEntry(entry_id)
        return Entry.from_row(rows[0])

    async def outcome(self, entry_id: int) -> Entry:
        """The entry that says what became of ``entry_id``: itself, or the last of the saves that
        superseded it (a superseded save lands with its successor). Raises `UnknownEntry`."""
        entry = await self.entry(entry_id)
        seen = {entry.id}
        while entry.state == State.SUPERSEDED and entry.superseded_by and entry.superseded_by not in seen:
            seen.add(entry.superseded_by)
            entry = await self.entry(entry.superseded_by)
        return entry

    async def track_changes(self) -> None:
        """Record from now on which entries this process's writes insert, update or delete, for
        `take_changes` (owner only): temporary triggers on the writer connection call back into this
        object with the row's id, so they see exactly this connection's writes, and `transaction` hands
        the ids on once its COMMIT returned. Writes by other processes (the CLI's retry/discard) are not
        seen: they bump the control generation instead."""
        if self._writer is None:
            raise NotOwner("only the journal owner tracks its changes")
        async with self._wlock:
            await self._writer.create_function("cs3sync_entry_changed", 1, self._uncommitted.add)
            for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                await self._writer.execute(
                    f"""CREATE TEMP TRIGGER IF NOT EXISTS entries_{event.lower()}_tracked
                        AFTER {event} ON main.entries BEGIN
                        SELECT cs3sync_entry_changed({row}.id); END"""
                )

    async def take_changes(self) -> dict[int, Entry | None]:
        """The entries committed since the last call (`track_changes`): id -> the row as it is now,
        None when it is gone. Read on the reader connection: no wait for the writer."""
        ids, self._changed = self._changed, set()
        if not ids:
            return {}
        rows = await self.read(
            "SELECT * FROM entries WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),)
        )
        found: dict[int, Entry | None] = dict.fromkeys(ids)
        found.update((e.id, e) for e in await convert_rows(rows, Entry.from_row))
        return found

    async def active_entries(self, prefix: str | None = None, *, include_parked: bool = False) -> list[Entry]:
        """Active entries (queued/running/retrying/blocked), journal order, optionally only those whose
        path or src_path is ``prefix`` or under it. For overlays."""
        states = State.ACTIVE | (State.PARKED if include_parked else frozenset())
        return await self.entries(states, prefix=prefix)

    async def entries(
        self,
        states: Iterable[str] | None = None,
        *,
        limit: int | None = None,
        prefix: str | None = None,
        newest_first: bool = False,
    ) -> list[Entry]:
        """Entries in the given states (all if None), journal order (or newest first)."""
        where, params = ["1"], []
        if states is not None:
            wanted = sorted(set(states))
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            params += wanted
        if prefix is not None:
            key = path_key(prefix)
            where.append(
                "(substr(path || '/', 1, length(?)) = ?"
                " OR (src_path IS NOT NULL AND substr(src_path || '/', 1, length(?)) = ?))"
            )
            params += [key, key, key, key]
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM entries WHERE {' AND '.join(where)} ORDER BY id {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return await convert_rows(await self.read(sql, params), Entry.from_row)

    async def merged_saves(self, limit: int = 10) -> list[Entry]:
        """The latest saves that were merged with a foreign change (`rebase_save`), newest first, while
        retention keeps them."""
        rows = await self.read(
            "SELECT * FROM entries WHERE state = 'done' AND op = 'save' AND extra LIKE '%\"merge\"%'"
            " AND json_extract(extra, '$.merge.merged') = 1 ORDER BY id DESC LIMIT ?",
            (int(limit),),
        )
        return [Entry.from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Number of entries by state (every state present, zeros included)."""
        counts = dict.fromkeys(sorted(State.ALL), 0)
        for state, n in await self.read("SELECT state, count(*) FROM entries GROUP BY state"):
            counts[state] = n
        return counts

    async def stats(self) -> Stats:
        """Counts, oldest pending, bytes to upload, blocked by reason."""
        counts = await self.counts()
        oldest = await self.read(f"SELECT min(created_at) FROM entries WHERE state IN ({_ACTIVE_SQL})")
        pending = await self.read(
            f"""SELECT coalesce(sum(max(0, e.size - coalesce(u.offset, 0))), 0) FROM entries e
                LEFT JOIN uploads u ON u.entry_id = e.id
                WHERE e.state IN ({_ACTIVE_SQL}) AND e.op IN ({_CONTENT_OPS_SQL}) AND e.size IS NOT NULL"""
        )
        blocked = await self.read(
            "SELECT blocked_reason, count(*) FROM entries WHERE state = 'blocked' GROUP BY blocked_reason"
        )
        return Stats(
            counts=counts,
            oldest_pending=oldest[0][0],
            bytes_to_upload=int(pending[0][0]),
            blocked={r[0] or "?": r[1] for r in blocked},
        )

    async def next_wakeup(self) -> float | None:
        """Earliest time a ``retrying`` entry becomes runnable or a lease expires (None: nothing)."""
        rows = await self.read(
            """SELECT min(t) FROM (
                   SELECT min(next_attempt_at) AS t FROM entries WHERE state = 'retrying'
                   UNION ALL SELECT min(lease_expires) FROM entries WHERE state = 'running')"""
        )
        return rows[0][0]

    async def has_runnable(self, *, large: bool | None = None) -> bool:
        """Whether `claim` would return something now (ignores ``paused``)."""
        rows = await self.read(
            _RUNNABLE_SQL, {"now": self.now(), "large": None if large is None else int(large)}
        )
        return bool(rows)

    async def file_sizes(self) -> dict[str, int]:
        """Bytes on disk: db (+WAL) and the spool's referenced blobs (for `status`)."""

        def sizes() -> dict[str, int]:
            db = sum(
                p.stat().st_size
                for p in (self.db_path, self.db_path.with_name("journal.db-wal"))
                if p.exists()
            )
            return {"db": db}

        result = await anyio.to_thread.run_sync(sizes)
        rows = await self.read("SELECT coalesce(sum(size), 0), count(*) FROM blobs")
        result.update(spool=int(rows[0][0]), blobs=int(rows[0][1]))
        return result

    # ======================================= remote: delegated to journal/remote.py
    async def remote_state(self, path: str) -> RemoteState | None:
        return await self.remote.remote_state(path)

    async def remote_children(self, dir_path: str) -> list[RemoteState]:
        return await self.remote.remote_children(dir_path)

    async def put_remote_state(self, state: RemoteState) -> None:
        return await self.remote.put_remote_state(state)

    async def observe_remote(
        self,
        states: Iterable[RemoteState] = (),
        *,
        gone: Iterable[tuple[str, float]] = (),
        listed: Iterable[tuple[str, float, Iterable[str]]] = (),
    ) -> None:
        return await self.remote.observe_remote(states, gone=gone, listed=listed)

    async def delete_remote_state(self, path: str, *, recursive: bool = True) -> None:
        return await self.remote.delete_remote_state(path, recursive=recursive)

    async def move_remote_state(self, src: str, dst: str) -> None:
        return await self.remote.move_remote_state(src, dst)

    async def presented_mtime(self, path: str, etag: str) -> float | None:
        return await self.remote.presented_mtime(path, etag)

    async def set_presented_mtime(self, path: str, etag: str, mtime: float) -> None:
        return await self.remote.set_presented_mtime(path, etag, mtime)

    # ======================================= checkpoint_rows: delegated to journal/checkpoints.py
    async def add_checkpoint(
        self,
        path: str,
        checkpoint_id: str,
        blob: Blob,
        *,
        remote_path: str | None = None,
        entry_id: int | None = None,
    ) -> CheckpointRow:
        return await self.checkpoint_rows.add_checkpoint(
            path, checkpoint_id, blob, remote_path=remote_path, entry_id=entry_id
        )

    async def set_checkpoint_entry(self, path: str, checkpoint_id: str, entry_id: int) -> None:
        return await self.checkpoint_rows.set_checkpoint_entry(path, checkpoint_id, entry_id)

    async def checkpoints(self, path: str) -> list[CheckpointRow]:
        return await self.checkpoint_rows.checkpoints(path)

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        return await self.checkpoint_rows.delete_checkpoint(path, checkpoint_id)

    async def delete_checkpoints(self, path: str) -> None:
        return await self.checkpoint_rows.delete_checkpoints(path)

    async def move_checkpoints(self, src: str, dst: str) -> None:
        return await self.checkpoint_rows.move_checkpoints(src, dst)

    # ================================================================ staging (JupyterLab chunks)
    async def stage_chunk(self, path: str, chunk: int, data: bytes, client: str = "") -> StagingInfo:
        """Store chunk ``chunk`` (1, 2, ..., or -1 for the last) of a JupyterLab chunked upload by
        ``client`` (uploads of one path by different clients are staged apart). Chunk 1 restarts the
        staging (refused with `StagingBusy` while the client's upload of the path is in progress); a
        repeated chunk overwrites its own range (idempotent); a gap or a missing start raises
        `StagingError`. Costs O(len(data)). The chunk is fsynced before its offset is recorded."""
        # Without a client (a direct call, not an HTTP upload) chunk 1 simply restarts the staging.
        return await self.staging_area.stage(
            _staging_key(path, client), chunk, data, refuse_busy=bool(client)
        )

    async def finish_staging(self, path: str, client: str = "") -> Blob:
        """Turn the staged upload of ``path`` into a normal spool blob (then `enqueue` a save with it)."""
        blob = await self.staging_area.finish(_staging_key(path, client))
        self._pins[blob.sha256] += 1
        return blob

    async def staging(self, path: str, client: str = "") -> StagingInfo | None:
        return await self.staging_area.info(_staging_key(path, client))

    async def drop_staging(self, path: str, client: str = "") -> None:
        await self.staging_area.drop(_staging_key(path, client))

    # ================================================================ control, events, gc
    async def meta(self) -> dict[str, str]:
        """The ``meta`` table (``schema_version``, ``account``, ...)."""
        return {r[0]: r[1] for r in await self.read("SELECT key, value FROM meta")}

    async def set_meta(self, key: str, value: str) -> None:
        if key == "schema_version":
            raise ValueError("schema_version is managed by migrations")
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def control(self) -> Control:
        rows = await self.read("SELECT * FROM control WHERE id = 1")
        r = rows[0]
        return Control(
            paused=bool(r["paused"]),
            engine_state=r["engine_state"],
            last_error=r["last_error"],
            owner_pid=r["owner_pid"],
            heartbeat=r["heartbeat"],
            generation=r["generation"],
            updated_at=r["updated_at"],
        )

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
        sets: dict[str, Any] = {"updated_at": self.now()}
        if paused is not None:
            sets["paused"] = int(paused)
        if engine_state is not None:
            sets["engine_state"] = engine_state
        if not isinstance(last_error, _Keep):
            sets["last_error"] = last_error
        if heartbeat is not None:
            sets["heartbeat"] = heartbeat
        assignments = ", ".join(f"{k} = :{k}" for k in sets)
        async with self.transaction(control=True) as conn:
            await conn.execute(f"UPDATE control SET {assignments} WHERE id = 1", sets)
            if paused is not None:
                await self._event(conn, "paused" if paused else "resumed")
        return await self.control()

    async def append_event(
        self,
        kind: str,
        *,
        entry_id: int | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the bounded `events` ring (transitions are recorded automatically)."""
        async with self.transaction() as conn:
            await self._event(conn, kind, entry_id, message, data)

    async def events(self, *, entry_id: int | None = None, limit: int = 100) -> list[Event]:
        """Newest last."""
        rows = await self.read(
            "SELECT * FROM (SELECT * FROM events WHERE ? IS NULL OR entry_id = ? ORDER BY id DESC LIMIT ?)"
            " ORDER BY id",
            (entry_id, entry_id, limit),
        )
        return [
            Event(
                id=r["id"],
                at=r["at"],
                entry_id=r["entry_id"],
                kind=r["kind"],
                message=r["message"],
                data=json.loads(r["data"]) if r["data"] else {},
            )
            for r in rows
        ]

    async def gc(self, *, batch: int = 500, max_batches: int | None = None) -> dict[str, int]:
        """Retention: delete done/superseded/cancelled rows older than the retention period or beyond
        the row cap (in batches of ``batch``), unlink blobs whose refcount is 0, orphan and tmp spool
        files, expired staging, trim events; compact the manifest (owner only). Returns counters."""
        from cs3sync.journal import retention

        return await retention.collect(self, batch=batch, max_batches=max_batches)

    # ================================================================ corruption recovery
    async def _reimport_manifest(self, stamp: str) -> list[int]:
        """After a broken db was set aside: re-enqueue the pending saves the manifest knows of.

        A save is re-imported when no finishing line names it, its blob is still in the spool, and no
        later command touched its path (a later save, a delete or a rename supersedes it). Re-imported
        entries carry ``needs_check``: they may well have been applied already.
        """
        records = await anyio.to_thread.run_sync(self.spool.read_manifest)
        ended = {r["id"] for r in records if "end" in r}
        commands = [r for r in records if "op" in r and "path" in r]
        keep: list[dict[str, Any]] = []
        for i, record in enumerate(commands):
            if record["op"] != Op.SAVE or record["id"] in ended or not record.get("blob"):
                continue
            later = commands[i + 1 :]
            if any(
                is_same_or_related(record["path"], p) for r in later for p in (r["path"], r.get("src")) if p
            ):
                continue
            if await anyio.to_thread.run_sync(self.blob_path(record["blob"]).exists):
                keep.append(record)
        # The old manifest's ids belong to the broken db: keep it aside, start a new one.
        if await anyio.to_thread.run_sync(self.spool.manifest.exists):
            aside = self.spool.manifest.with_name(f"manifest.log.corrupt-{stamp}")
            await anyio.to_thread.run_sync(os.replace, self.spool.manifest, aside)
        ids = []
        for record in keep:
            sha = record["blob"]
            size = (await anyio.to_thread.run_sync(self.blob_path(sha).stat)).st_size
            entry = await self.enqueue(
                Op.SAVE,
                record["path"],
                blob=Blob(sha256=sha, size=size, path=self.blob_path(sha)),
                base_etag=record.get("base_etag"),
                base_fileid=record.get("base_fileid"),
                kind=record.get("kind") or "file",
                extra={"reimported": True},
                needs_check=True,
            )
            ids.append(entry.id)
        return ids


def _is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), whatever statement hit it."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    if sys.version_info >= (3, 11):
        return exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    return "database or disk is full" in str(exc)  # Python 3.10 has no error code: SQLite's own text
