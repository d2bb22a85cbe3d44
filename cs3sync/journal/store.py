"""The `Journal`: one SQLite database, one spool, one owner; the facade over the journal's parts.

Each part does one job on the shared unit of work (`UnitOfWork`: the connections, ``transaction`` and
``read``, the clock, the settings, the blobs this process holds):

- `Queue` (queue.py): enqueue with coalescing and group commit, claim under a lease, manifest re-import;
- `Transitions` (transitions.py): the engine's and the user's state changes of one entry;
- `EntryQueries` (queries.py): entries, counts and stats, the next wake-up;
- `RemoteStates` (remote.py): what was seen on the storage and the times presented to Jupyter;
- `Checkpoints` (checkpoints.py), `UploadSessions` (uploads.py), `StagingArea` (staging.py);
- `ControlRows` (control.py): the meta table, the control row, the events ring;
- retention.py: gc.

`Journal` opens and closes all that and offers every part's public methods under one name
(``journal.enqueue`` is ``journal.queue.enqueue``), so callers hold one object.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiosqlite
import anyio
import anyio.to_thread

from cs3sync.journal import db, ownership, retention, schema
from cs3sync.journal.checkpoints import Checkpoints
from cs3sync.journal.control import KEEP, ControlRows
from cs3sync.journal.db import fetchall
from cs3sync.journal.errors import JournalUnreadable
from cs3sync.journal.fs import check_local_fs, ensure_private_dir
from cs3sync.journal.queries import EntryQueries
from cs3sync.journal.queue import Queue
from cs3sync.journal.remote import RemoteStates
from cs3sync.journal.spool import Spool
from cs3sync.journal.staging import StagingArea
from cs3sync.journal.transitions import Transitions
from cs3sync.journal.unit import (
    DEFAULT_BLOB_GRACE_SECONDS,
    DEFAULT_EVENTS_MAX,
    DEFAULT_LARGE_THRESHOLD,
    DEFAULT_RETENTION_ROWS,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STAGING_EXPIRY_SECONDS,
    JournalSettings,
    UnitOfWork,
)
from cs3sync.journal.uploads import UploadSessions

__all__ = [
    "DEFAULT_BLOB_GRACE_SECONDS",
    "DEFAULT_EVENTS_MAX",
    "DEFAULT_LARGE_THRESHOLD",
    "DEFAULT_RETENTION_ROWS",
    "DEFAULT_RETENTION_SECONDS",
    "DEFAULT_STAGING_EXPIRY_SECONDS",
    "KEEP",
    "Journal",
    "JournalSettings",
]


class Journal:
    """The operation journal. Create with ``await Journal.open(...)``; use as an async context manager."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit
        self.dir = unit.dir
        self.owner = unit.owner
        self.spool = unit.spool
        self.settings = unit.settings
        #: Set when open found a broken db: (quarantined path, reason, re-imported entry ids).
        self.quarantined: tuple[Path, str, list[int]] | None = None
        # The parts.
        self.queries = EntryQueries(unit)
        self.queue = Queue(unit)
        self.remote = RemoteStates(unit)
        self.transitions = Transitions(unit, self.queries, self.remote)
        self.checkpoint_rows = Checkpoints(unit)
        self.uploads = UploadSessions(unit)
        self.staging_area = StagingArea(unit)
        self.control_rows = ControlRows(unit)
        # The facade: every part's public methods, under the journal's name.
        self.now = unit.now
        self.blob_path = unit.blob_path
        self.read = unit.read
        self.store_blob, self.write_blob, self.reuse_blob = unit.store_blob, unit.write_blob, unit.reuse_blob
        self.unpin = unit.unpin
        self.is_pinned = unit.is_pinned
        self.ensure_blob_row = unit.ensure_blob_row
        # queue.py
        self.enqueue = self.queue.enqueue
        self.claim = self.queue.claim
        self.renew_lease = self.queue.renew_lease
        # transitions.py
        t = self.transitions
        self.mark_done, self.mark_retry, self.mark_blocked = t.mark_done, t.mark_retry, t.mark_blocked
        self.mark_conflict, self.mark_failed, self.requeue = t.mark_conflict, t.mark_failed, t.requeue
        self.block_runnable, self.unblock, self.make_due = t.block_runnable, t.unblock, t.make_due
        self.rebase_save, self.note_merge = t.rebase_save, t.note_merge
        self.retry, self.keep_mine, self.retry_all_failed = t.retry, t.keep_mine, t.retry_all_failed
        self.discard, self.resolve = t.discard, t.resolve
        # queries.py
        q = self.queries
        self.track_changes, self.take_changes = unit.track_changes, q.take_changes
        self.entry, self.outcome, self.entries, self.active_entries = (
            q.entry,
            q.outcome,
            q.entries,
            q.active_entries,
        )
        self.merged_saves, self.counts, self.stats = q.merged_saves, q.counts, q.stats
        self.next_wakeup, self.has_runnable, self.file_sizes = q.next_wakeup, q.has_runnable, q.file_sizes
        # remote.py
        r = self.remote
        self.remote_state, self.remote_children = r.remote_state, r.remote_children
        self.put_remote_state, self.observe_remote = r.put_remote_state, r.observe_remote
        self.delete_remote_state, self.move_remote_state = r.delete_remote_state, r.move_remote_state
        self.presented_mtime, self.set_presented_mtime = r.presented_mtime, r.set_presented_mtime
        # checkpoints.py
        c = self.checkpoint_rows
        self.add_checkpoint, self.set_checkpoint_entry = c.add_checkpoint, c.set_checkpoint_entry
        self.checkpoints, self.delete_checkpoint = c.checkpoints, c.delete_checkpoint
        self.delete_checkpoints, self.move_checkpoints = c.delete_checkpoints, c.move_checkpoints
        # uploads.py
        u = self.uploads
        self.record_upload_session, self.update_upload = u.record_upload_session, u.update_upload
        self.reset_upload, self.upload_session, self.upload_sessions = (
            u.reset_upload,
            u.upload_session,
            u.upload_sessions,
        )
        # staging.py
        s = self.staging_area
        self.stage_chunk, self.finish_staging = s.stage_chunk, s.finish_staging
        self.staging, self.drop_staging = s.staging, s.drop_staging
        # control.py
        k = self.control_rows
        self.meta, self.set_meta, self.control, self.set_control = (
            k.meta,
            k.set_meta,
            k.control,
            k.set_control,
        )
        self.append_event, self.events = k.append_event, k.events

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
        settings = JournalSettings(
            large_threshold=large_threshold,
            retention_seconds=retention_seconds,
            retention_rows=retention_rows,
            staging_expiry_seconds=staging_expiry_seconds,
            events_max=events_max,
            blob_grace_seconds=blob_grace_seconds,
        )
        if owner:
            journal = await cls._open_owner(path, allow_network_fs, mounts_file, now, settings)
            if account is not None:
                await journal.set_meta("account", account)
            return journal
        return await cls._open_reader(path, now, settings)

    @classmethod
    async def _open_owner(
        cls,
        dir: Path,
        allow_network_fs: bool,
        mounts_file: str | Path,
        now: Callable[[], float],
        settings: JournalSettings,
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
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now()))
            db_file = dir / "journal.db"
            quarantined, reason = await anyio.to_thread.run_sync(db.prepare_owner_db, db_file, stamp)
            writer = await db.connect(db_file, readonly=False)
            reader = await db.connect(db_file, readonly=False)
            await reader.execute("PRAGMA query_only = ON")
            unit = UnitOfWork(
                dir,
                owner=True,
                now=now,
                settings=settings,
                spool=spool,
                reader=reader,
                writer=writer,
                lock=lock,
            )
            journal = cls(unit)
            if quarantined is not None:
                ids = await journal.queue.reimport_manifest(stamp)
                journal.quarantined = (quarantined, reason or "corrupt", ids)
                await journal.append_event(
                    "quarantined", message=f"broken db renamed to {quarantined.name}; {len(ids)} re-imported"
                )
            await journal.transitions.recover()
            return journal
        except BaseException:
            for conn in (writer, reader):
                if conn is not None:
                    await conn.close()
            lock.release()
            raise

    @classmethod
    async def _open_reader(cls, dir: Path, now: Callable[[], float], settings: JournalSettings) -> Journal:
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
        return cls(
            UnitOfWork(
                dir,
                owner=False,
                now=now,
                settings=settings,
                spool=spool,
                reader=reader,
                writer=None,
                lock=None,
            )
        )

    async def close(self) -> None:
        """Close connections and release the owner lock."""
        await self.unit.close()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db_path(self) -> Path:
        return self.unit.db_path

    def owner_pid(self) -> int | None:
        """The pid of the live owner process (ours if we own it), without touching the lock."""
        return os.getpid() if self.owner else ownership.owner_alive(self.dir / "journal.lock")

    def transaction(
        self, *, control: bool = False, durable: bool = True
    ) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """The unit of work's `UnitOfWork.transaction`."""
        return self.unit.transaction(control=control, durable=durable)

    async def gc(self, *, batch: int = 500, max_batches: int | None = None) -> dict[str, int]:
        """Retention: delete done/superseded/cancelled rows older than the retention period or beyond
        the row cap (in batches of ``batch``), unlink blobs whose refcount is 0, orphan and tmp spool
        files, expired staging, trim events; compact the manifest (owner only). Returns counters."""
        return await retention.collect(self.unit, self.staging_area, batch=batch, max_batches=max_batches)
