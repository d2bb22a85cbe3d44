"""The journal's unit of work: its connections, its clock, its settings, and the blobs this process holds.

Every part of the journal (the queue, the transitions, remote state, checkpoints, upload sessions,
staging, control and events, retention) builds on `UnitOfWork.transaction` and `UnitOfWork.read`.

Writes go through a single aiosqlite connection guarded by an anyio lock, each as one
``BEGIN IMMEDIATE ... COMMIT`` with nothing unrelated awaited inside; reads use a separate connection
and see every committed write (WAL). Only the owner (holder of the flock on ``journal.lock``) writes
entries; other processes open read-only, except for the short control writes of the CLI (``control``
transactions: pause/resume, retry, discard, resolve, gc), which SQLite serialises with the owner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio
import anyio.to_thread

from cs3sync.journal import db, ownership
from cs3sync.journal.errors import JournalError, JournalFull, NotOwner
from cs3sync.journal.spool import Spool
from cs3sync.journal.types import Blob
from cs3sync.journal.writelock import WriteLock

T = TypeVar("T")

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


@dataclasses.dataclass
class JournalSettings:
    """The journal's tunables (tests change them on an open journal: ``journal.settings.events_max = 10``)."""

    large_threshold: int = DEFAULT_LARGE_THRESHOLD
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    retention_rows: int = DEFAULT_RETENTION_ROWS
    staging_expiry_seconds: float = DEFAULT_STAGING_EXPIRY_SECONDS
    events_max: int = DEFAULT_EVENTS_MAX
    blob_grace_seconds: float = DEFAULT_BLOB_GRACE_SECONDS


class UnitOfWork:
    """One journal database and spool as seen by one process (owner or reader)."""

    def __init__(
        self,
        dir: Path,
        *,
        owner: bool,
        now: Callable[[], float],
        settings: JournalSettings,
        spool: Spool,
        reader: aiosqlite.Connection,
        writer: aiosqlite.Connection | None,
        lock: ownership.OwnerLock | None,
    ) -> None:
        self.dir = dir
        self.owner = owner
        self._now = now
        self.settings = settings
        self.spool = spool
        self._reader = reader
        self._writer = writer
        self._lock = lock
        self._wlock = WriteLock()  # acknowledging (durable) transactions and bookkeeping take turns
        self._synchronous = "FULL"  # the writer connection's current PRAGMA synchronous (see transaction)
        #: Blobs stored by this process but not yet referenced by a row: protected from gc.
        self._pins: Counter[str] = Counter()
        self._closed = False
        #: Entries written by the transaction in progress / by committed ones not taken yet (see
        #: track_changes). The trigger adds from the writer's thread; sets are safe for that.
        self._uncommitted: set[int] = set()
        self._changed: set[int] = set()

    def now(self) -> float:
        """The journal's clock (injectable for tests)."""
        return self._now()

    @property
    def db_path(self) -> Path:
        return self.dir / "journal.db"

    def blob_path(self, sha256: str) -> Path:
        """Where the spool keeps the blob ``sha256`` (``spool/<sha[:2]>/<sha>``)."""
        return self.spool.blob_path(sha256)

    async def close(self) -> None:
        """Close connections and release the owner lock (the owner first marks the engine stopped)."""
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.owner and self._writer is not None:
                    with contextlib.suppress(sqlite3.Error):
                        async with self.transaction(control=True) as conn:
                            await conn.execute(
                                "UPDATE control SET owner_pid = NULL, engine_state = 'stopped',"
                                " updated_at = ?",
                                (self.now(),),
                            )
                    self._closed = True
                    await self._writer.close()
                self._closed = True
                await self._reader.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    # ================================================================ transactions and reads
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
        WAL and with it every commit before it. Acknowledged changes are always ``durable``, and take
        turns with the bookkeeping queued for the writer (`WriteLock`) instead of waiting for all of it."""
        if not self.owner and not control:
            raise NotOwner("this process does not own the journal (opened read-only)")
        if self._closed:
            raise JournalError("the journal is closed")
        async with self._wlock.hold(urgent=durable):
            with anyio.CancelScope(shield=True):
                conn = (
                    self._writer
                    if self._writer is not None
                    else await db.connect(self.db_path, readonly=False)
                )
                try:
                    wanted = "FULL" if durable else "NORMAL"
                    switch = conn is self._writer and self._synchronous != wanted
                    await db.run_on(conn, lambda c: _begin(c, wanted if switch else None))
                    if switch:
                        self._synchronous = wanted
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

    async def run_transaction(self, body: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """`transaction` for a body that awaits nothing: ``BEGIN IMMEDIATE``, ``body(connection)`` and
        ``COMMIT`` (``ROLLBACK`` if it raises) in one round trip to the writer's thread instead of one
        for each step: for a statement or two written very often (a chunk of an upload). Owner only."""
        if not self.owner or self._writer is None:
            raise NotOwner("this process does not own the journal (opened read-only)")
        if self._closed:
            raise JournalError("the journal is closed")
        writer, wanted = self._writer, "FULL" if durable else "NORMAL"
        async with self._wlock.hold(urgent=durable):
            with anyio.CancelScope(shield=True):
                switch = wanted if self._synchronous != wanted else None
                try:
                    result = await db.run_on(writer, lambda c: _atomically(c, switch, body))
                except BaseException as exc:
                    if switch is not None:
                        self._synchronous = ""  # switched or not: the next transaction sets it again
                    self._hand_on_changes()
                    if _is_disk_full(exc):
                        raise JournalFull("local disk full: the journal could not be written") from exc
                    raise
                self._synchronous = wanted
                self._hand_on_changes()
        return result

    def _hand_on_changes(self) -> None:
        if self._uncommitted:
            self._changed |= self._uncommitted
            self._uncommitted.clear()

    async def track_changes(self) -> None:
        """Record from now on which entries this process's writes insert, update or delete, for
        `take_changed_ids` (owner only): temporary triggers on the writer connection call back into this
        object with the row's id, so they see exactly this connection's writes, and `transaction` hands
        the ids on once its COMMIT returned. Writes by other processes (the CLI's retry/discard) are not
        seen: they bump the control generation instead."""
        if self._writer is None:
            raise NotOwner("only the journal owner tracks its changes")
        async with self._wlock.hold(urgent=True):
            await self._writer.create_function("cs3sync_entry_changed", 1, self._uncommitted.add)
            for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                await self._writer.execute(
                    f"""CREATE TEMP TRIGGER IF NOT EXISTS entries_{event.lower()}_tracked
                        AFTER {event} ON main.entries BEGIN
                        SELECT cs3sync_entry_changed({row}.id); END"""
                )

    def take_changed_ids(self) -> set[int]:
        """The ids of the entries committed since the last call (see `track_changes`)."""
        ids, self._changed = self._changed, set()
        return ids

    async def read(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Every row of one query, on the reader connection (never waits for the writer)."""
        if self._closed:
            raise JournalError("the journal is closed")
        p = params if isinstance(params, Mapping) else tuple(params)
        return list(await self._reader.execute_fetchall(sql, p))

    async def event(
        self,
        conn: aiosqlite.Connection,
        kind: str,
        entry_id: int | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the bounded ``events`` ring, inside the caller's transaction."""
        now, ring = self.now(), self.settings.events_max
        await db.run_on(conn, lambda c: append_event(c, now, ring, kind, entry_id, message, data))

    async def manifest_end(self, ids: Iterable[int], end: str) -> None:
        """Best-effort "this entry is finished" lines (the manifest is only read after corruption)."""
        records = [{"v": 1, "id": i, "end": end} for i in ids]
        if records:
            with contextlib.suppress(OSError, JournalError):
                await self.spool.append_manifest(records, durable=False)

    # ================================================================ spool blobs
    async def store_blob(self, source: bytes | Path | AsyncIterable[bytes]) -> Blob:
        """Write content durably to the spool: tmp -> fsync -> rename -> fsync dir (all in threads).

        Returns the content-addressed `Blob`. Until it is referenced by ``enqueue`` (or a checkpoint /
        remote_state row) it is protected from gc in this process. Raises `SpoolFull` on ENOSPC/EDQUOT,
        leaving nothing behind. Owner only.
        """
        if not self.owner:
            raise NotOwner("only the journal owner writes to the spool")
        blob = await self.spool.store(source)
        self.pin(blob.sha256)
        return blob

    async def write_blob(self, data: bytes) -> tuple[Blob, asyncio.Task[None]]:
        """Like `store_blob`, but returns once the content is written and hashed, with the task that
        makes it durable (`Spool.write`): for `enqueue` (``installing=``), which writes its rows
        meanwhile and commits once the task is done. Nothing else may refer to the blob before."""
        if not self.owner:
            raise NotOwner("only the journal owner writes to the spool")
        blob, installing = await self.spool.write(data)
        self.pin(blob.sha256)
        return blob, installing

    async def reuse_blob(self, sha256: str, size: int) -> Blob:
        """A blob already in the spool (a pending save's) for another entry with the same content,
        without writing and fsyncing it again; held against gc like a stored one until its enqueue.
        Raises `JournalError` if it is gone (the caller stores the content instead)."""
        if not self.owner:
            raise NotOwner("only the journal owner writes to the spool")
        self.pin(sha256)
        if not await anyio.to_thread.run_sync(self.blob_path(sha256).exists):
            self.unpin(sha256)
            raise JournalError("the blob is not in the spool")
        return Blob(sha256=sha256, size=size, path=self.blob_path(sha256))

    def pin(self, sha: str) -> None:
        """Hold a blob this process just stored until a row references it (gc leaves it alone)."""
        self._pins[sha] += 1

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
        await conn.execute(BLOB_ROW_SQL, (sha, size, now))


#: The ``blobs`` row of a spool blob (`UnitOfWork.ensure_blob_row`).
BLOB_ROW_SQL = (
    "INSERT INTO blobs (sha256, size, refcount, created_at) VALUES (?, ?, 0, ?)"
    " ON CONFLICT (sha256) DO NOTHING"
)


def _atomically(
    conn: sqlite3.Connection, synchronous: str | None, body: Callable[[sqlite3.Connection], T]
) -> T:
    """`UnitOfWork.run_transaction` on the writer's thread."""
    _begin(conn, synchronous)
    try:
        result = body(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # also after a failed COMMIT (see `transaction`)
            conn.execute("ROLLBACK")
        raise
    return result


def _begin(conn: sqlite3.Connection, synchronous: str | None) -> None:
    """``BEGIN IMMEDIATE``, after switching ``PRAGMA synchronous`` if asked (one round trip for both)."""
    if synchronous is not None:
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("BEGIN IMMEDIATE")


def append_event(
    conn: sqlite3.Connection,
    now: float,
    ring: int,
    kind: str,
    entry_id: int | None = None,
    message: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Append to the bounded ``events`` ring of ``ring`` rows, inside the caller's transaction, on the
    connection's thread (`db.run_on`)."""
    cursor = conn.execute(
        "INSERT INTO events (at, entry_id, kind, message, data) VALUES (?, ?, ?, ?, ?)",
        (now, entry_id, kind, message, json.dumps(dict(data)) if data else None),
    )
    # The ring: drop what fell off the end (a primary-key range, so cheap).
    conn.execute("DELETE FROM events WHERE id <= ?", ((cursor.lastrowid or 0) - ring,))


def _is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), whatever statement hit it."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    if sys.version_info >= (3, 11):
        return exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    return "database or disk is full" in str(exc)  # Python 3.10 has no error code: SQLite's own text
