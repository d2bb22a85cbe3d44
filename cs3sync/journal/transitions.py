"""Entry state transitions: the engine's (done, retry, blocked, conflict, failed, requeued, a save rebased
on a merge) and the user's (retry, keep mine, discard, resolve; allowed without ownership, from the CLI
too). Each moves one entry from an allowed state in one transaction, with its event."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiosqlite

from cs3sync.journal.db import fetchall
from cs3sync.journal.errors import InvalidTransition, UnknownEntry
from cs3sync.journal.paths import is_same_or_related, path_rows
from cs3sync.journal.queries import EntryQueries
from cs3sync.journal.remote import RemoteStates, upsert_on
from cs3sync.journal.types import Blob, BlockedReason, Entry, Op, RemoteState, Resolution, State
from cs3sync.journal.unit import UnitOfWork, append_event


class Transitions:
    """Part of `Journal` (``journal.transitions``)."""

    def __init__(self, unit: UnitOfWork, queries: EntryQueries, remote: RemoteStates) -> None:
        self.unit = unit
        self.queries = queries
        self.remote = remote

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
        now = self.unit.now()
        values = {**sets, "updated_at": now}
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        async with self.unit.transaction(control=control, durable=durable) as conn:
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
            await self.unit.event(conn, event, entry_id, message)
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

        sets = {
            "state": State.DONE,
            "result_etag": result_etag,
            "result_mtime": result_mtime,
            "result_fileid": result_fileid,
            "presented_mtime": presented_mtime,
            "finished_at": self.unit.now(),
            "blob": None,
            "needs_check": 0,
            "lease_owner": None,
            "lease_expires": None,
            "blocked_reason": None,
            "last_error": None,
            "last_error_kind": None,
        }
        if remote is not None and remote.size is None and (cache_blob or remote.cached_blob):

            async def hook(conn: aiosqlite.Connection, row: sqlite3.Row) -> None:
                await conn.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
                assert remote is not None
                cached = row["blob"] if cache_blob and row["blob"] else remote.cached_blob
                await self.remote.upsert(conn, remote, cached)  # the cached blob's size from its file

            entry = await self._transition(
                entry_id, (State.RUNNING,), sets, "done", drop_paths=True, conn_hook=hook, durable=False
            )
        else:
            # One round trip to the writer's thread instead of one per statement (about ten): the done
            # mark of every landed file held the writer that long, with the next save's enqueue waiting.
            now = self.unit.now()
            ring = self.unit.settings.events_max
            values = {**sets, "updated_at": now}
            assignments = ", ".join(f"{column} = :{column}" for column in values)

            def done(conn: sqlite3.Connection) -> sqlite3.Row:
                current = conn.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchall()
                if not current:
                    raise UnknownEntry(entry_id)
                if current[0]["state"] != State.RUNNING:
                    raise InvalidTransition(f"entry {entry_id} is {current[0]['state']}; done needs running")
                conn.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
                if remote is not None:
                    blob = current[0]["blob"]
                    upsert_on(conn, remote, blob if cache_blob and blob else remote.cached_blob, now)
                row: sqlite3.Row = conn.execute(
                    f"UPDATE entries SET {assignments} WHERE id = :entry_id RETURNING *",
                    {**values, "entry_id": entry_id},
                ).fetchall()[0]
                conn.execute("DELETE FROM entry_paths WHERE entry_id = ?", (entry_id,))
                append_event(conn, now, ring, "done", entry_id)
                return row

            entry = Entry.from_row(await self.unit.run_transaction(done, durable=False))
        await self.unit.manifest_end([entry_id], "done")
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
        current = await self.queries.entry(entry_id)
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
        async with self.unit.transaction(durable=False) as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'blocked', blocked_reason = ?, updated_at = ?,
                       last_error = coalesce(?, last_error), last_error_kind = CASE WHEN ? IS NULL
                       THEN last_error_kind ELSE ? END
                   WHERE state IN ('queued', 'retrying')""",
                (reason, self.unit.now(), error, error, reason),
            )
            if cursor.rowcount:
                await self.unit.event(conn, "blocked", None, f"{cursor.rowcount} entries: {reason}")
            return cursor.rowcount

    async def unblock(self, reason: str | None = None) -> int:
        """blocked(reason) -> queued for every such entry (all reasons if None). Returns how many."""
        async with self.unit.transaction(durable=False) as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'queued', blocked_reason = NULL, next_attempt_at = NULL,
                       updated_at = ?
                   WHERE state = 'blocked' AND (? IS NULL OR blocked_reason = ?)""",
                (self.unit.now(), reason, reason),
            )
            if cursor.rowcount:
                await self.unit.event(
                    conn, "unblocked", None, f"{cursor.rowcount} entries: {reason or 'all'}"
                )
            return cursor.rowcount

    async def make_due(self, error_kind: str, *, exclude: Iterable[int] = ()) -> list[int]:
        """retrying entries whose last error was of ``error_kind``: next attempt now (their attempt
        counts unchanged), in one transaction, except the ids in ``exclude``. Returns their ids."""
        async with self.unit.transaction(durable=False) as conn:
            now = self.unit.now()
            cursor = await conn.execute(
                """UPDATE entries SET next_attempt_at = ?, updated_at = ?
                   WHERE state = 'retrying' AND last_error_kind = ? AND next_attempt_at > ?
                     AND id NOT IN (SELECT value FROM json_each(?))
                   RETURNING id""",
                (now, now, error_kind, now, json.dumps(sorted(exclude))),
            )
            ids = [int(row[0]) for row in await cursor.fetchall()]
            if ids:
                await self.unit.event(conn, "made_due", None, f"{len(ids)} entries: {error_kind}")
            return ids

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
        current = await self.queries.entry(entry_id)
        extra = {**current.extra, "merge": dict(merge)}

        async def hook(conn: aiosqlite.Connection, row: sqlite3.Row) -> None:
            await self.unit.ensure_blob_row(conn, blob.sha256, blob.size, self.unit.now())
            await conn.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
            record = {
                "v": 1, "id": entry_id, "op": Op.SAVE, "path": row["path"], "src": None, "blob": blob.sha256,
                "size": blob.size, "base_etag": base_etag, "base_fileid": base_fileid, "kind": row["kind"],
                "at": self.unit.now(),
            }  # fmt: skip
            await self.unit.spool.append_manifest([record], durable=True)

        entry = await self._transition(
            entry_id,
            (State.RUNNING,),
            {
                "blob": blob.sha256,
                "sha256": blob.sha256,
                "size": blob.size,
                "large": int(blob.size >= self.unit.settings.large_threshold),
                "base_etag": base_etag,
                "base_fileid": base_fileid,
                "presented_mtime": presented_mtime,
                "extra": json.dumps(extra),
            },
            "merged",
            message=str(merge.get("message") or ""),
            conn_hook=hook,
        )
        self.unit.unpin(blob.sha256)
        return entry

    async def note_merge(self, entry_id: int, merge: Mapping[str, Any]) -> Entry:
        """Record on a running entry why its merge did not happen (``extra['merge']``: the colliding
        cells or lines), for `status` and the sync panel."""
        current = await self.queries.entry(entry_id)
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

    async def recover(self) -> None:
        """At owner start: nothing is running, whatever the rows say."""
        now = self.unit.now()
        async with self.unit.transaction() as conn:
            cursor = await conn.execute(
                """UPDATE entries SET state = 'queued', needs_check = 1, lease_owner = NULL,
                       lease_expires = NULL, updated_at = ? WHERE state = 'running'""",
                (now,),
            )
            if cursor.rowcount:
                await self.unit.event(conn, "recovered", None, f"{cursor.rowcount} running entries requeued")
            await conn.execute(
                "UPDATE control SET owner_pid = ?, heartbeat = ?, updated_at = ?", (os.getpid(), now, now)
            )

    async def retry(self, entry_id: int, *, force: bool = False) -> Entry:
        """failed/conflict/blocked -> queued, attempts reset, ``needs_check`` set. A conflict is retried
        only with ``force`` (clears the base etag/fileid: overwrite the remote). Refused (unless
        ``force``) if a newer command on the same path was applied since. Works without ownership."""
        entry = await self.queries.entry(entry_id)
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
        newer = await self.unit.read(
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
        entry = await self.queries.entry(entry_id)
        if entry.state != State.CONFLICT:
            raise InvalidTransition(f"entry {entry_id} is not a conflict (it is {entry.state})")
        await self._refuse_if_newer(entry)
        return await self.retry(entry_id, force=True)

    async def retry_all_failed(self) -> list[int]:
        """`retry` every failed entry that can be retried without force. Returns the ids."""
        retried = []
        for entry in await self.queries.entries([State.FAILED]):
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
                "finished_at": self.unit.now(),
                "blocked_reason": None,
            },
            "discarded",
            control=True,
            drop_paths=True,
        )
        await self.unit.manifest_end([entry_id], "discarded")
        return entry

    async def resolve(self, entry_id: int) -> Entry:
        """conflict/failed -> done (resolution ``resolved``): the user has dealt with it. Works without
        ownership."""
        entry = await self._transition(
            entry_id,
            (State.CONFLICT, State.FAILED),
            {"state": State.DONE, "resolution": Resolution.RESOLVED, "finished_at": self.unit.now()},
            "resolved",
            control=True,
            drop_paths=True,
        )
        await self.unit.manifest_end([entry_id], "resolved")
        return entry
