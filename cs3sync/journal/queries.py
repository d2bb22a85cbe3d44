"""The read side of the queue: entries by id, state or path, counts and stats for `status`, and when the
next entry becomes runnable. Reads only (the reader connection), never waits for a writer."""

from __future__ import annotations

import json
from collections.abc import Iterable

import anyio
import anyio.to_thread

from cs3sync.journal.db import convert_rows
from cs3sync.journal.errors import UnknownEntry
from cs3sync.journal.paths import path_key
from cs3sync.journal.types import Entry, Op, State, Stats
from cs3sync.journal.unit import UnitOfWork

ACTIVE_SQL = ",".join(f"'{s}'" for s in sorted(State.ACTIVE))
_CONTENT_OPS_SQL = f"'{Op.SAVE}','{Op.COPY}','{Op.CHECKPOINT}'"

# The oldest runnable entry none of whose paths intersects (same, ancestor, descendant) an older active
# entry. Used by claim (inside one UPDATE ... RETURNING) and by has_runnable.
RUNNABLE_SQL = f"""
    SELECT e.id FROM entries e INDEXED BY entries_runnable
    WHERE e.state IN ('queued', 'retrying') AND (e.state = 'queued' OR e.next_attempt_at <= :now)
      AND (:large IS NULL OR e.large = :large)
      AND NOT EXISTS (  -- an older active entry at or below one of our paths
          SELECT 1 FROM entry_paths mine
          JOIN entry_paths theirs ON theirs.key = mine.key AND theirs.entry_id < e.id
          JOIN entries o ON o.id = theirs.entry_id
          WHERE mine.entry_id = e.id AND mine.self = 1 AND o.state IN ({ACTIVE_SQL}))
      AND NOT EXISTS (  -- an older active entry at one of our paths or their ancestors
          SELECT 1 FROM entry_paths mine
          JOIN entry_paths theirs ON theirs.key = mine.key AND theirs.self = 1 AND theirs.entry_id < e.id
          JOIN entries o ON o.id = theirs.entry_id
          WHERE mine.entry_id = e.id AND o.state IN ({ACTIVE_SQL}))
    ORDER BY e.id LIMIT 1"""

#: Whether `Queue.claim` would claim or requeue anything now: read first, so that a claim with nothing
#: to do takes no write transaction.
CLAIMABLE_SQL = f"""
    SELECT EXISTS (SELECT 1 FROM entries WHERE state = 'running' AND lease_expires < :now)
        OR (NOT (SELECT paused FROM control WHERE id = 1) AND EXISTS ({RUNNABLE_SQL}))"""


class EntryQueries:
    """Part of `Journal` (``journal.queries``)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def entry(self, entry_id: int) -> Entry:
        """One entry (raises `UnknownEntry`)."""
        rows = await self.unit.read("SELECT * FROM entries WHERE id = ?", (entry_id,))
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

    async def take_changes(self) -> dict[int, Entry | None]:
        """The entries committed since the last call (`UnitOfWork.track_changes`): id -> the row as it
        is now, None when it is gone. Read on the reader connection: no wait for the writer."""
        ids = self.unit.take_changed_ids()
        if not ids:
            return {}
        rows = await self.unit.read(
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
        return await convert_rows(await self.unit.read(sql, params), Entry.from_row)

    async def merged_saves(self, limit: int = 10) -> list[Entry]:
        """The latest saves that were merged with a foreign change (`rebase_save`), newest first, while
        retention keeps them."""
        rows = await self.unit.read(
            "SELECT * FROM entries WHERE state = 'done' AND op = 'save' AND extra LIKE '%\"merge\"%'"
            " AND json_extract(extra, '$.merge.merged') = 1 ORDER BY id DESC LIMIT ?",
            (int(limit),),
        )
        return [Entry.from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Number of entries by state (every state present, zeros included)."""
        counts = dict.fromkeys(sorted(State.ALL), 0)
        for state, n in await self.unit.read("SELECT state, count(*) FROM entries GROUP BY state"):
            counts[state] = n
        return counts

    async def stats(self) -> Stats:
        """Counts, oldest pending, bytes to upload, blocked by reason."""
        counts = await self.counts()
        oldest = await self.unit.read(f"SELECT min(created_at) FROM entries WHERE state IN ({ACTIVE_SQL})")
        pending = await self.unit.read(
            f"""SELECT coalesce(sum(max(0, e.size - coalesce(u.offset, 0))), 0) FROM entries e
                LEFT JOIN uploads u ON u.entry_id = e.id
                WHERE e.state IN ({ACTIVE_SQL}) AND e.op IN ({_CONTENT_OPS_SQL}) AND e.size IS NOT NULL"""
        )
        blocked = await self.unit.read(
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
        rows = await self.unit.read(
            """SELECT min(t) FROM (
                   SELECT min(next_attempt_at) AS t FROM entries WHERE state = 'retrying'
                   UNION ALL SELECT min(lease_expires) FROM entries WHERE state = 'running')"""
        )
        due = rows[0][0]
        return None if due is None else float(due)

    async def has_runnable(self, *, large: bool | None = None) -> bool:
        """Whether `claim` would return something now (ignores ``paused``)."""
        rows = await self.unit.read(
            RUNNABLE_SQL, {"now": self.unit.now(), "large": None if large is None else int(large)}
        )
        return bool(rows)

    async def file_sizes(self) -> dict[str, int]:
        """Bytes on disk: db (+WAL) and the spool's referenced blobs (for `status`)."""

        def sizes() -> dict[str, int]:
            db = sum(
                p.stat().st_size
                for p in (self.unit.db_path, self.unit.db_path.with_name("journal.db-wal"))
                if p.exists()
            )
            return {"db": db}

        result = await anyio.to_thread.run_sync(sizes)
        rows = await self.unit.read("SELECT coalesce(sum(size), 0), count(*) FROM blobs")
        result.update(spool=int(rows[0][0]), blobs=int(rows[0][1]))
        return result
