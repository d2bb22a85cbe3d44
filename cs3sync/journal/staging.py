"""Staging of JupyterLab chunked uploads.

JupyterLab sends a large file as sequential base64 chunks numbered 1, 2, ..., -1 (the last). Each chunk
is written at its recorded offset in a staging file in the spool, and then its (offset, length)
committed in ``upload_staging_chunks``. Chunk 1 starts over in a fresh file; a chunk received
again overwrites its own range (a client retry); a chunk beyond the next one is refused. Nothing reaches
CS3 until the last chunk: then the staging file is renamed into the spool as a normal blob and the
caller enqueues a save. Every chunk costs O(chunk): one positioned write, one small transaction (one
round trip to the writer's thread), and an incremental hash while chunks arrive in order (in the same
worker thread as the write). What the rows say is also kept in memory (`_Staged`, owner only, changed
only under the upload's lock and only after its transaction committed), so a chunk in order reads
nothing back from SQLite; a re-sent chunk looks up its recorded range. After a restart the first chunk
reloads the row.

Only the last chunk is an acknowledgement (of the whole upload), so only then is the file fsynced, before
it becomes a blob and its save is enqueued. The chunks before are written and committed without fsyncs
(``durable=False``): a power cut in the middle of an upload loses the upload in progress, whose next
chunk is then refused ("start again at chunk 1") and reported by JupyterLab as a failed upload; no
upload that was acknowledged as complete is lost. A crash of the server alone loses nothing (the page
cache survives it) and the upload continues after the restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from cs3sync.journal import spool as spool_io
from cs3sync.journal.errors import NotOwner, SpoolFull, StagingBusy, StagingError
from cs3sync.journal.fs import FILE_MODE
from cs3sync.journal.paths import normalize_path
from cs3sync.journal.types import Blob, StagingInfo
from cs3sync.journal.unit import UnitOfWork

LAST_CHUNK = -1
#: A staged upload that received a chunk this recently (seconds) is in progress: a new chunk 1 for the
#: same key is another upload, refused instead of restarting (and mixing with) the running one.
BUSY_SECONDS = 10.0


def staging_key(path: str, client: str) -> str:
    """The staging row of one client's upload of a path (a newline never occurs in a CS3 path)."""
    path = normalize_path(path)
    return f"{path}\n{client}" if client else path


@dataclass
class _Staged:
    """One staged upload as its rows were last committed by this process, plus the incremental hash."""

    file: str  # name in the spool's staging folder
    size: int
    chunks: int
    has_last: bool  # chunk -1 is recorded
    created_at: float
    updated_at: float
    #: sha256 of the file's first ``hashed`` bytes while chunks arrive in order (None: hash at the end).
    hasher: Any = None
    hashed: int = 0

    def info(self, path: str, staging_dir: Path) -> StagingInfo:
        return StagingInfo(
            path, self.chunks, self.size, staging_dir / self.file, self.created_at, self.updated_at
        )


class StagingArea:
    """Part of `Journal` (``journal.staging_area``). The public methods take the Jupyter path and the
    uploading client; the others work on a staging key (`staging_key`)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self._unit = unit
        self._locks: dict[str, anyio.Lock] = {}
        #: staging key -> its upload as committed; read and written only under the key's lock (`_load`).
        self._staged: dict[str, _Staged] = {}

    # ================================================================ by Jupyter path and client
    async def stage_chunk(self, path: str, chunk: int, data: bytes, client: str = "") -> StagingInfo:
        """Store chunk ``chunk`` (1, 2, ..., or -1 for the last) of a JupyterLab chunked upload by
        ``client`` (uploads of one path by different clients are staged apart). Chunk 1 restarts the
        staging (refused with `StagingBusy` while the client's upload of the path is in progress); a
        repeated chunk overwrites its own range (idempotent); a gap or a missing start raises
        `StagingError`. Costs O(len(data)). The chunk is fsynced before its offset is recorded."""
        # Without a client (a direct call, not an HTTP upload) chunk 1 simply restarts the staging.
        return await self.stage(staging_key(path, client), chunk, data, refuse_busy=bool(client))

    async def finish_staging(self, path: str, client: str = "") -> Blob:
        """Turn the staged upload of ``path`` into a normal spool blob (then `enqueue` a save with it)."""
        blob = await self.finish(staging_key(path, client))
        self._unit.pin(blob.sha256)
        return blob

    async def staging(self, path: str, client: str = "") -> StagingInfo | None:
        return await self.info(staging_key(path, client))

    async def drop_staging(self, path: str, client: str = "") -> None:
        await self.drop(staging_key(path, client))

    # ================================================================ by staging key
    def _lock(self, path: str) -> anyio.Lock:
        return self._locks.setdefault(path, anyio.Lock())

    async def _row(self, path: str) -> Any:
        rows = await self._unit.read(
            "SELECT s.*, EXISTS (SELECT 1 FROM upload_staging_chunks c WHERE c.path = s.path AND c.chunk = ?)"
            " AS has_last FROM upload_staging s WHERE s.path = ?",
            (LAST_CHUNK, path),
        )
        return rows[0] if rows else None

    async def _load(self, path: str) -> _Staged | None:
        """The upload staged under ``path`` (the caller holds its lock): from memory, else from its row
        (the first chunk after a restart; the in-order hash is then gone, so `finish` reads the file)."""
        staged = self._staged.get(path)
        if staged is None:
            row = await self._row(path)
            if row is None:
                return None
            staged = _Staged(
                row["file"],
                row["size"],
                row["chunks"],
                bool(row["has_last"]),
                row["created_at"],
                row["updated_at"],
            )
            self._staged[path] = staged
        return staged

    async def info(self, path: str) -> StagingInfo | None:
        staged = self._staged.get(path)
        if staged is not None:
            return staged.info(path, self._unit.spool.staging)
        row = await self._row(path)  # (not cached: only `_load`, under the lock, fills the cache)
        return _info(row, self._unit.spool.staging) if row else None

    async def stage(self, path: str, chunk: int, data: bytes, *, refuse_busy: bool = False) -> StagingInfo:
        if chunk == 0 or chunk < LAST_CHUNK:
            raise StagingError(f"invalid chunk number {chunk}")
        if not self._unit.owner:
            raise NotOwner("only the journal owner stages uploads")
        async with self._lock(path):
            old = await self._load(path) if chunk == 1 else None
            if refuse_busy and old is not None and self._unit.now() - old.updated_at < BUSY_SECONDS:
                raise StagingBusy(f"another upload of {path} is in progress")  # (it goes on unharmed)
            try:
                if chunk == 1:
                    return await self._restart(path, old, data)
                return await self._continue(path, chunk, data)
            except BaseException:
                # Whatever failed (a refused chunk, a full disk, a rolled-back transaction), the rows are
                # what they were or gone: the next chunk reads them again rather than trust memory.
                self._staged.pop(path, None)
                raise

    async def _restart(self, path: str, old: _Staged | None, data: bytes) -> StagingInfo:
        unit = self._unit
        name = secrets.token_hex(16)
        file = unit.spool.staging / name
        hasher = hashlib.sha256()

        def write() -> None:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                spool_io.pwrite_all(fd, data, 0)
            finally:
                os.close(fd)
            hasher.update(data)

        await _guarded(write, file)
        now = unit.now()
        async with unit.transaction(durable=False) as conn:
            await conn.execute("DELETE FROM upload_staging WHERE path = ?", (path,))
            await conn.execute(
                "INSERT INTO upload_staging (path, file, size, chunks, created_at, updated_at)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                (path, name, len(data), now, now),
            )
            await conn.execute(
                "INSERT INTO upload_staging_chunks (path, chunk, offset, length) VALUES (?, 1, 0, ?)",
                (path, len(data)),
            )
        self._staged[path] = _Staged(name, len(data), 1, False, now, now, hasher, len(data))
        if old is not None:
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync((unit.spool.staging / old.file).unlink)
        return StagingInfo(path, 1, len(data), file, now, now)

    async def _continue(self, path: str, chunk: int, data: bytes) -> StagingInfo:
        unit = self._unit
        staged = await self._load(path)
        if staged is None:
            raise StagingError(f"no upload in progress for {path}: start again at chunk 1")
        file = unit.spool.staging / staged.file
        # The next chunk in order is never recorded yet: every recorded chunk number is at most
        # ``chunks``, and -1 is recorded exactly when ``has_last``.
        if (chunk == LAST_CHUNK or chunk == staged.chunks + 1) and not staged.has_last:
            offset, truncate = staged.size, False
        else:
            recorded = await unit.read(
                "SELECT offset, length FROM upload_staging_chunks WHERE path = ? AND chunk = ?", (path, chunk)
            )
            if not recorded:
                raise StagingError(f"chunk {chunk} does not follow chunk {staged.chunks} of {path}")
            # A re-sent chunk: it goes back exactly where it was. If its length changed, whatever
            # followed it is no longer valid. Other bytes of the same length are not a retry but
            # another upload's chunk: the staged upload is dropped rather than mixed.
            offset, old_length = recorded[0]
            truncate = len(data) != old_length
            if not truncate and await anyio.to_thread.run_sync(_read_range, file, offset, old_length) != data:
                await self._drop_locked(path, staged)
                raise StagingBusy(f"two uploads of {path} at once: start again")
        end = offset + len(data)

        def write() -> None:
            try:
                fd = os.open(file, os.O_WRONLY)
            except FileNotFoundError:
                raise StagingError(f"the staged data of {path} is gone: start again at chunk 1") from None
            try:
                spool_io.pwrite_all(fd, data, offset)
                if truncate:
                    os.ftruncate(fd, end)
            finally:
                os.close(fd)
            _advance_hash(staged, offset, data, truncate)  # this thread; the path's lock is held

        await _guarded(write, None)
        now = unit.now()
        size = end if truncate else max(staged.size, end)
        chunks = staged.chunks if chunk == LAST_CHUNK else max(staged.chunks, chunk)
        if truncate and chunk != LAST_CHUNK:
            chunks = chunk

        def record(conn: sqlite3.Connection) -> None:
            # The row first: if it is gone (another process's gc expired it), nothing is recorded.
            cursor = conn.execute(
                "UPDATE upload_staging SET size = ?, chunks = ?, updated_at = ? WHERE path = ?",
                (size, chunks, now, path),
            )
            if cursor.rowcount != 1:
                raise StagingError(f"no upload in progress for {path}: start again at chunk 1")
            if truncate:
                conn.execute(
                    "DELETE FROM upload_staging_chunks WHERE path = ? AND offset > ?", (path, offset)
                )
            conn.execute(
                "INSERT INTO upload_staging_chunks (path, chunk, offset, length) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (path, chunk) DO UPDATE SET offset = excluded.offset, length = excluded.length",
                (path, chunk, offset, len(data)),
            )

        await unit.run_transaction(record, durable=False)  # one round trip to the writer's thread
        staged.size, staged.chunks, staged.updated_at = size, chunks, now
        if chunk == LAST_CHUNK:
            staged.has_last = True
        elif truncate:  # the rows after this chunk's, -1 included, were deleted
            staged.has_last = False
        return StagingInfo(path, chunks, size, file, staged.created_at, now)

    async def finish(self, path: str) -> Blob:
        unit = self._unit
        if not unit.owner:
            raise NotOwner("only the journal owner stages uploads")
        async with self._lock(path):
            staged = await self._load(path)
            if staged is None:
                raise StagingError(f"no upload in progress for {path}")
            self._staged.pop(path)  # whatever happens next, the rows are read again if still there
            file = unit.spool.staging / staged.file
            if staged.hasher is not None and staged.hashed == staged.size:
                sha = staged.hasher.hexdigest()
                await anyio.to_thread.run_sync(_fsync_file, file)
            else:
                sha = await anyio.to_thread.run_sync(_hash_file, file)
            # Durable before it becomes a blob: the last chunk's reply acknowledges the whole upload.
            await unit.spool.install_file(file, sha)
            async with unit.transaction() as conn:
                await conn.execute("DELETE FROM upload_staging WHERE path = ?", (path,))
        return Blob(sha256=sha, size=staged.size, path=unit.blob_path(sha))

    async def drop(self, path: str) -> None:
        async with self._lock(path):
            staged = await self._load(path)
            if staged is not None:
                await self._drop_locked(path, staged)

    async def _drop_locked(self, path: str, staged: _Staged) -> None:
        unit = self._unit
        self._staged.pop(path, None)
        async with unit.transaction() as conn:
            await conn.execute("DELETE FROM upload_staging WHERE path = ?", (path,))
        with contextlib.suppress(OSError):
            await anyio.to_thread.run_sync((unit.spool.staging / staged.file).unlink)


def _advance_hash(staged: _Staged, offset: int, data: bytes, truncate: bool) -> None:
    if staged.hasher is not None and staged.hashed == offset and not truncate:
        staged.hasher.update(data)
        staged.hashed = offset + len(data)
    else:
        # Out of order (a re-sent chunk): hash the whole file once at the end instead.
        staged.hasher = None


async def _guarded(write: Any, created: Path | None) -> None:
    """Run a blocking write; on ENOSPC remove what it created and report `SpoolFull`."""
    try:
        await anyio.to_thread.run_sync(write)
    except OSError as exc:
        if created is not None:
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync(created.unlink)
        if spool_io.is_space_error(exc):
            raise SpoolFull("no space left for the upload in the journal spool") from exc
        raise


def _read_range(path: Path, offset: int, length: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(length)
    except OSError:
        return b""


def _hash_file(path: Path) -> str:
    """The file's sha256, after fsyncing it."""
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        for piece in iter(lambda: f.read(spool_io.IO_CHUNK), b""):
            hasher.update(piece)
    _fsync_file(path)
    return hasher.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        spool_io.os_fsync(fd)
    finally:
        os.close(fd)


def _info(row: Any, staging_dir: Path) -> StagingInfo:
    return StagingInfo(
        path=row["path"],
        chunks=row["chunks"],
        size=row["size"],
        file=staging_dir / row["file"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
