"""Into and out of the queue: `Queue.enqueue` journals a command durably (coalescing with pending ones,
group-committed with concurrent enqueues, its manifest line fsynced first), `Queue.claim` hands the
oldest runnable entry to a worker under a lease, and `Queue.reimport_manifest` brings pending saves back
after a broken database was set aside."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
from collections.abc import Awaitable, Mapping
from typing import Any

import anyio
import anyio.to_thread

from cs3sync.journal import coalesce
from cs3sync.journal.crash import crash_point
from cs3sync.journal.db import fetchall, run_on
from cs3sync.journal.errors import JournalError, NotOwner
from cs3sync.journal.paths import is_same_or_related, normalize_path, path_rows
from cs3sync.journal.queries import CLAIMABLE_SQL, RUNNABLE_SQL
from cs3sync.journal.types import Blob, Entry, Op, Resolution, State
from cs3sync.journal.unit import BLOB_ROW_SQL, UnitOfWork, append_event


@dataclasses.dataclass
class _Enqueue:
    """One enqueue waiting for a group commit (see `Queue._commit_group`)."""

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
    installing: Awaitable[None] | None = None  # the blob being made durable (`Spool.write`)
    done: bool = False
    entry: Entry | None = None
    error: BaseException | None = None


class Queue:
    """Part of `Journal` (``journal.queue``)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit
        #: Group commit: enqueues waiting for a transaction, and the lock of the one that commits them.
        self._waiting: list[_Enqueue] = []
        self._group_lock = anyio.Lock()

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
        installing: Awaitable[None] | None = None,
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
        commit. ``large`` defaults to ``size >= large_threshold``. ``installing``: the blob comes from
        `write_blob` and is being made durable; the rows are written meanwhile, the commit waits for it
        (its failure is this enqueue's).
        """
        if op not in Op.ALL:
            raise ValueError(f"unknown op {op!r}")
        path = normalize_path(path)
        src = normalize_path(src_path) if src_path is not None else None
        if op in (Op.RENAME, Op.COPY) and src is None:
            raise ValueError(f"{op} needs src_path")
        if op in (Op.SAVE, Op.CHECKPOINT) and blob is None:
            raise ValueError(f"{op} needs a blob")
        if not self.unit.owner:
            raise NotOwner("only the journal owner enqueues")
        # A blob this process stored and has not enqueued yet is pinned: gc leaves it alone.
        if (
            blob is not None
            and not self.unit.is_pinned(blob.sha256)
            and not await anyio.to_thread.run_sync(self.unit.blob_path(blob.sha256).exists)
        ):
            raise JournalError("the blob is not in the spool; store it with store_blob first")
        size = blob.size if blob is not None else None
        is_large = bool(large) if large is not None else (size or 0) >= self.unit.settings.large_threshold
        request = _Enqueue(
            op,
            path,
            src,
            blob,
            base_etag,
            base_fileid,
            kind,
            is_large,
            extra,
            needs_check,
            self.unit.now(),
            installing,
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
                async with self.unit.transaction() as conn:
                    # Every row of the group in one round trip to the writer's thread.
                    ring = self.unit.settings.events_max
                    inserted = await run_on(conn, lambda c: [_insert_entry(c, r, ring) for r in batch])
                    rows = [row for row, _ in inserted]
                    records = [line for _, lines in inserted for line in lines]
                    # Done before the commit: a committed row always has its manifest line (fsynced), and
                    # its blob is durable in place (a blob from `write_blob` was being fsynced and renamed
                    # while the rows were written: its wait runs alongside the manifest's, not before).
                    await _all(
                        self.unit.spool.append_manifest(records, durable=True),
                        *(r.installing for r in batch if r.installing is not None),
                    )
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
                    self.unit.unpin(request.blob.sha256)
                request.entry, request.done = Entry.from_row(row), True

    async def claim(
        self, worker_id: str, *, lease_seconds: float = 300.0, large: bool | None = None
    ) -> Entry | None:
        """Claim the oldest runnable entry (``queued``, or ``retrying`` whose ``next_attempt_at`` has
        come) none of whose paths intersects (equal, ancestor or descendant) an older active entry.
        One ``UPDATE ... RETURNING``; sets ``running``, the lease and ``claims += 1``. ``large`` filters
        (None = any). Returns None when nothing is runnable or the journal is paused. Entries whose lease
        expired are first put back to ``queued`` with ``needs_check``.
        """
        now = self.unit.now()
        params = {
            "now": now,
            "worker": worker_id,
            "expires": now + lease_seconds,
            "large": None if large is None else int(large),
        }
        # First ask the reader whether this claim would change anything: every change wakes every idle
        # worker, and most of their claims find nothing. As write transactions they took the writer's
        # lock (and its thread) 4-5 round trips each, several times per save, queued with the
        # enqueue of the next save (issue 14). A row committed before the wake-up is visible here (WAL).
        if not (await self.unit.read(CLAIMABLE_SQL, params))[0][0]:
            return None
        async with self.unit.transaction(durable=False) as conn:
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
                    WHERE id = ({RUNNABLE_SQL})
                      AND NOT (SELECT paused FROM control WHERE id = 1)
                    RETURNING *""",
                params,
            )
            if not rows:
                return None
            await self.unit.event(conn, "claimed", rows[0]["id"], worker_id)
        return Entry.from_row(rows[0])

    async def renew_lease(self, entry_id: int, worker_id: str, *, lease_seconds: float = 300.0) -> bool:
        """Extend a running entry's lease. False if the entry is no longer ours."""
        now = self.unit.now()
        async with self.unit.transaction(durable=False) as conn:
            cursor = await conn.execute(
                "UPDATE entries SET lease_expires = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (now + lease_seconds, now, entry_id, worker_id),
            )
            return cursor.rowcount == 1

    async def reimport_manifest(self, stamp: str) -> list[int]:
        """After a broken db was set aside: re-enqueue the pending saves the manifest knows of.

        A save is re-imported when no finishing line names it, its blob is still in the spool, and no
        later command touched its path (a later save, a delete or a rename supersedes it). Re-imported
        entries carry ``needs_check``: they may well have been applied already.
        """
        records = await anyio.to_thread.run_sync(self.unit.spool.read_manifest)
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
            if await anyio.to_thread.run_sync(self.unit.blob_path(record["blob"]).exists):
                keep.append(record)
        # The old manifest's ids belong to the broken db: keep it aside, start a new one.
        if await anyio.to_thread.run_sync(self.unit.spool.manifest.exists):
            aside = self.unit.spool.manifest.with_name(f"manifest.log.corrupt-{stamp}")
            await anyio.to_thread.run_sync(os.replace, self.unit.spool.manifest, aside)
        ids = []
        for record in keep:
            sha = record["blob"]
            size = (await anyio.to_thread.run_sync(self.unit.blob_path(sha).stat)).st_size
            entry = await self.enqueue(
                Op.SAVE,
                record["path"],
                blob=Blob(sha256=sha, size=size, path=self.unit.blob_path(sha)),
                base_etag=record.get("base_etag"),
                base_fileid=record.get("base_fileid"),
                kind=record.get("kind") or "file",
                extra={"reimported": True},
                needs_check=True,
            )
            ids.append(entry.id)
        return ids


async def _all(*steps: Awaitable[None]) -> None:
    """Await every step, then raise the first failure (nothing left running behind the rollback)."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _insert_entry(
    conn: sqlite3.Connection, request: _Enqueue, ring: int
) -> tuple[sqlite3.Row, list[dict[str, Any]]]:
    """The rows of one enqueue (coalescing applied), and its manifest lines; on the writer's thread, inside
    the group's transaction (`db.run_on`). ``ring``: the size of the events ring."""
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
        conn.execute(BLOB_ROW_SQL, (blob.sha256, blob.size, now))
    plan = coalesce.plan(conn, op, path, src)
    if plan.inherit_base:
        base_etag, base_fileid = plan.base_etag, plan.base_fileid
    state = State.CANCELLED if plan.cancel_self else State.QUEUED
    row: sqlite3.Row = conn.execute(
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
    ).fetchall()[0]
    new_id = row["id"]
    if not plan.cancel_self:
        conn.executemany(
            "INSERT INTO entry_paths (entry_id, key, self) VALUES (?, ?, ?)",
            [(new_id, key, is_self) for key, is_self in path_rows(path, *([src] if src else []))],
        )
    for old in plan.supersede:
        _finish_folded(conn, old, new_id, State.SUPERSEDED, Resolution.SUPERSEDED, now, ring)
    for old in plan.cancel:
        _finish_folded(conn, old, new_id, State.CANCELLED, Resolution.ANNIHILATED, now, ring)
    append_event(
        conn,
        now,
        ring,
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


def _finish_folded(
    conn: sqlite3.Connection, entry_id: int, by: int, state: str, resolution: str, now: float, ring: int
) -> None:
    # An entry that never ran cannot be on the storage: its blob is released at once (1000 offline
    # autosaves must not keep 1000 copies). One that ran may be there; the new entry lists it in
    # prior_blobs and this row keeps the blob until retention.
    conn.execute(
        """UPDATE entries SET state = ?, resolution = ?, superseded_by = ?, finished_at = ?,
               updated_at = ?, blocked_reason = NULL, lease_owner = NULL, lease_expires = NULL,
               blob = CASE WHEN claims = 0 THEN NULL ELSE blob END
           WHERE id = ?""",
        (state, resolution, by, now, now, entry_id),
    )
    conn.execute("DELETE FROM entry_paths WHERE entry_id = ?", (entry_id,))
    append_event(conn, now, ring, state, entry_id, f"by {by}")
