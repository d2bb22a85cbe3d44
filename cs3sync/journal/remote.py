"""What the journal knows of the storage: ``remote_state`` rows (etag, size, fileid, kind of each path
seen) and the ``last_modified`` presented to Jupyter for an etag. Read while the storage is unreachable
(offline listings and metadata) and to keep presented times stable across restarts."""

from __future__ import annotations

import posixpath
import sqlite3
from collections.abc import Iterable

import aiosqlite
import anyio
import anyio.to_thread

from cs3sync.journal.db import CONVERT_INLINE_ROWS, convert_rows, fetchall, record_converter
from cs3sync.journal.paths import normalize_path, parent_path, path_key
from cs3sync.journal.types import RemoteState
from cs3sync.journal.unit import BLOB_ROW_SQL, UnitOfWork

_remote = record_converter(RemoteState)


def _observation_params(
    states: list[RemoteState],
    gone: list[tuple[str, float]],
    listed: list[tuple[str, float, tuple[str, ...]]],
    now: float,
) -> tuple[list[tuple[str, str, str, float]], list[tuple[str, float, set[str]]], list[tuple[object, ...]]]:
    """`RemoteStates.observe_remote`'s statement parameters: (the gone rows' DELETE parameters, each
    listed folder with the paths it held, the INSERT parameters of the states)."""
    gone_rows = [(path, path_key(path), path_key(path), observed) for path, observed in
                 ((normalize_path(p), o) for p, o in gone)]  # fmt: skip
    present_in = []
    for folder, observed, names in listed:
        folder = normalize_path(folder)
        present_in.append((folder, observed, {posixpath.join(folder, name) for name in names}))
    state_rows: list[tuple[object, ...]] = []
    for s in states:
        path = normalize_path(s.path)
        state_rows.append((path, parent_path(path), s.fileid, s.etag, s.size, s.mtime, s.checksum, s.kind,
                           s.presented_mtime, s.updated_at or now))  # fmt: skip
    return gone_rows, present_in, state_rows


#: What the storage holds at a path (`RemoteStates.upsert`, `upsert_on`): a presented time and a cached
#: blob survive an update only while the etag stays the same.
UPSERT_SQL = """INSERT INTO remote_state (path, parent, fileid, etag, size, mtime, checksum, kind,
        presented_mtime, cached_blob, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (path) DO UPDATE SET fileid = excluded.fileid, etag = excluded.etag,
        size = excluded.size, mtime = excluded.mtime, checksum = excluded.checksum,
        kind = excluded.kind, updated_at = excluded.updated_at,
        presented_mtime = CASE WHEN excluded.presented_mtime IS NOT NULL
            THEN excluded.presented_mtime WHEN remote_state.etag IS excluded.etag
            THEN remote_state.presented_mtime END,
        cached_blob = CASE WHEN excluded.cached_blob IS NOT NULL THEN excluded.cached_blob
            WHEN remote_state.etag IS excluded.etag THEN remote_state.cached_blob END"""


def upsert_params(state: RemoteState, cached: str | None, now: float) -> tuple[object, ...]:
    path = normalize_path(state.path)
    return (path, parent_path(path), state.fileid, state.etag, state.size, state.mtime, state.checksum,
            state.kind, state.presented_mtime, cached, now)  # fmt: skip


def upsert_on(conn: sqlite3.Connection, state: RemoteState, cached: str | None, now: float) -> None:
    """`RemoteStates.upsert` on the writer's thread (`UnitOfWork.run_transaction`), for a state whose
    size is known when it caches a blob (the blob's row records it)."""
    if cached is not None:
        assert state.size is not None, "upsert_on needs the size of the cached blob"
        conn.execute(BLOB_ROW_SQL, (cached, state.size, now))
    conn.execute(UPSERT_SQL, upsert_params(state, cached, now))


class RemoteStates:
    """Part of `Journal` (``journal.remote``), on the journal's unit of work (`UnitOfWork`)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def remote_state(self, path: str) -> RemoteState | None:
        rows = await self.unit.read("SELECT * FROM remote_state WHERE path = ?", (normalize_path(path),))
        return _remote(rows[0]) if rows else None

    async def remote_children(self, dir_path: str) -> list[RemoteState]:
        """Direct children of ``dir_path`` we know of."""
        rows = await self.unit.read(
            "SELECT * FROM remote_state WHERE parent = ? AND path != ? ORDER BY path",
            (normalize_path(dir_path), "/"),
        )
        return await convert_rows(rows, _remote)

    async def put_remote_state(self, state: RemoteState) -> None:
        """Upsert. A changed etag drops ``presented_mtime`` and ``cached_blob`` unless the new row
        carries them."""
        async with self.unit.transaction(durable=False) as conn:
            await self.upsert(conn, state, state.cached_blob)
        self.unit.unpin(state.cached_blob)

    async def upsert(self, conn: aiosqlite.Connection, state: RemoteState, cached: str | None) -> None:
        now = self.unit.now()
        if cached is not None:
            size = (
                state.size
                if state.size is not None
                else await anyio.to_thread.run_sync(lambda: self.unit.blob_path(cached).stat().st_size)
            )
            await self.unit.ensure_blob_row(conn, cached, size, now)
        await conn.execute(UPSERT_SQL, upsert_params(state, cached, now))

    async def observe_remote(
        self,
        states: Iterable[RemoteState] = (),
        *,
        gone: Iterable[tuple[str, float]] = (),
        listed: Iterable[tuple[str, float, Iterable[str]]] = (),
    ) -> None:
        """Record what reads saw on the storage, in one transaction (the contents manager's Stats and
        listings, for offline reads). Each observation carries its time in ``updated_at``; a row written
        later (e.g. by the engine after applying a command) is never overwritten by an older read.
        ``gone``: (path, observed_at) that the storage reported missing (the row and its descendants
        go). ``listed``: (folder, observed_at, names of the children the listing held): known children
        that the listing no longer holds go (a child it holds stays, whether or not it is in
        ``states``: reads record only what changed). A changed etag drops
        ``presented_mtime``/``cached_blob`` as in `put_remote_state`."""
        observed, vanished = list(states), list(gone)
        folders = [(folder, at, tuple(names)) for folder, at, names in listed]
        if not observed and not vanished and not folders:
            return
        now = self.unit.now()
        size = len(observed) + len(vanished) + sum(len(names) for _, _, names in folders)
        if size < CONVERT_INLINE_ROWS:
            params = _observation_params(observed, vanished, folders, now)
        else:  # a 50,000-entry listing: normalising and joining its paths held the loop ~200 ms
            params = await anyio.to_thread.run_sync(_observation_params, observed, vanished, folders, now)
        gone_rows, present_in, state_rows = params
        # One statement per kind (executemany): a 1,000-entry listing is one round trip to the writer
        # thread, not 1,000 awaits each resolved on the event loop.
        async with self.unit.transaction(durable=False) as conn:
            if gone_rows:
                await conn.executemany(
                    """DELETE FROM remote_state WHERE (path = ? OR substr(path, 1, length(?)) = ?)
                       AND updated_at <= ?""",
                    gone_rows,
                )
            stale: list[str] = []
            for folder, listed_at, present in present_in:
                known = await fetchall(
                    conn,
                    "SELECT path FROM remote_state WHERE parent = ? AND path != '/' AND updated_at <= ?",
                    (folder, listed_at),
                )
                stale += [r[0] for r in known if r[0] not in present]
            if stale:
                await conn.executemany(
                    "DELETE FROM remote_state WHERE path = ? OR substr(path, 1, length(?)) = ?",
                    [(old, path_key(old), path_key(old)) for old in stale],
                )
            if state_rows:
                await conn.executemany(
                    """INSERT INTO remote_state (path, parent, fileid, etag, size, mtime, checksum, kind,
                           presented_mtime, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (path) DO UPDATE SET fileid = excluded.fileid, etag = excluded.etag,
                           size = excluded.size, mtime = excluded.mtime, checksum = excluded.checksum,
                           kind = excluded.kind, updated_at = excluded.updated_at,
                           presented_mtime = CASE WHEN excluded.presented_mtime IS NOT NULL
                               THEN excluded.presented_mtime WHEN remote_state.etag IS excluded.etag
                               THEN remote_state.presented_mtime END,
                           cached_blob = CASE WHEN remote_state.etag IS excluded.etag
                               THEN remote_state.cached_blob END
                       WHERE excluded.updated_at >= remote_state.updated_at""",
                    state_rows,
                )  # fmt: skip

    async def delete_remote_state(self, path: str, *, recursive: bool = True) -> None:
        path = normalize_path(path)
        async with self.unit.transaction(durable=False) as conn:
            await conn.execute(
                "DELETE FROM remote_state WHERE path = ? OR (? AND substr(path, 1, length(?)) = ?)",
                (path, int(recursive), path_key(path), path_key(path)),
            )

    async def move_remote_state(self, src: str, dst: str) -> None:
        """Re-key ``src`` and everything under it to ``dst`` (after a rename)."""
        src, dst = normalize_path(src), normalize_path(dst)
        key = path_key(src)
        async with self.unit.transaction(durable=False) as conn:
            await conn.execute(
                "DELETE FROM remote_state WHERE path = ? OR substr(path, 1, length(?)) = ?",
                (dst, path_key(dst), path_key(dst)),
            )
            rows = await fetchall(
                conn,
                "SELECT path FROM remote_state WHERE path = ? OR substr(path, 1, length(?)) = ?",
                (src, key, key),
            )
            for (old,) in rows:
                new = dst + old[len(src) :]
                await conn.execute(
                    "UPDATE remote_state SET path = ?, parent = ?, updated_at = ? WHERE path = ?",
                    (new, parent_path(new), self.unit.now(), old),
                )

    async def presented_mtime(self, path: str, etag: str) -> float | None:
        """The last_modified we presented for this exact etag, or None (etag changed / unknown)."""
        rows = await self.unit.read(
            "SELECT presented_mtime FROM remote_state WHERE path = ? AND etag = ?",
            (normalize_path(path), etag),
        )
        return rows[0][0] if rows else None

    async def set_presented_mtime(self, path: str, etag: str, mtime: float) -> None:
        """Remember the last_modified presented for ``etag`` (upserts remote_state; a different stored
        etag is replaced and its cached blob dropped)."""
        path = normalize_path(path)
        async with self.unit.transaction(durable=False) as conn:
            await conn.execute(
                """INSERT INTO remote_state (path, parent, etag, presented_mtime, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (path) DO UPDATE SET presented_mtime = excluded.presented_mtime,
                       cached_blob = CASE WHEN remote_state.etag IS excluded.etag
                           THEN remote_state.cached_blob END,
                       etag = excluded.etag, updated_at = excluded.updated_at""",
                (path, parent_path(path), etag, mtime, self.unit.now()),
            )
