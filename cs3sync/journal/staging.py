"""Staging of JupyterLab chunked uploads.

JupyterLab sends a large file as sequential base64 chunks numbered 1, 2, ..., -1 (the last). Each chunk
is written at its recorded offset in a staging file in the spool, and then its (offset, length)
committed in ``upload_staging_chunks``. Chunk 1 starts over in a fresh file; a chunk received
again overwrites its own range (a client retry); a chunk beyond the next one is refused. Nothing reaches
CS3 until the last chunk: then the staging file is renamed into the spool as a normal blob and the
caller enqueues a save. Every chunk costs O(chunk): one positioned write, one small transaction, and an
incremental hash while chunks arrive in order (in the same worker thread as the write).

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


class StagingArea:
    """Part of `Journal` (``journal.staging_area``). The public methods take the Jupyter path and the
    uploading client; the others work on a staging key (`staging_key`)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self._unit = unit
        self._locks: dict[str, anyio.Lock] = {}
        #: path -> (sha256 object, bytes hashed so far): valid only while chunks arrive in order.
        self._hashers: dict[str, tuple[Any, int]] = {}

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
        rows = await self._unit.read("SELECT * FROM upload_staging WHERE path = ?", (path,))
        return rows[0] if rows else None

    async def info(self, path: str) -> StagingInfo | None:
        row = await self._row(path)
        return _info(row, self._unit.spool.staging) if row else None

    async def stage(self, path: str, chunk: int, data: bytes, *, refuse_busy: bool = False) -> StagingInfo:
        if chunk == 0 or chunk < LAST_CHUNK:
            raise StagingError(f"invalid chunk number {chunk}")
        if not self._unit.owner:
            raise NotOwner("only the journal owner stages uploads")
        async with self._lock(path):
            if chunk == 1:
                row = await self._row(path)
                if refuse_busy and row is not None and self._unit.now() - row["updated_at"] < BUSY_SECONDS:
                    raise StagingBusy(f"another upload of {path} is in progress")
                return await self._restart(path, data)
            return await self._continue(path, chunk, data)

    async def _restart(self, path: str, data: bytes) -> StagingInfo:
        unit = self._unit
        old = await self._row(path)
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
        if old is not None:
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync((unit.spool.staging / old["file"]).unlink)
        self._hashers[path] = (hasher, len(data))
        return StagingInfo(path, 1, len(data), file, now, now)

    async def _continue(self, path: str, chunk: int, data: bytes) -> StagingInfo:
        unit = self._unit
        row = await self._row(path)
        if row is None:
            raise StagingError(f"no upload in progress for {path}: start again at chunk 1")
        recorded = await unit.read(
            "SELECT offset, length FROM upload_staging_chunks WHERE path = ? AND chunk = ?", (path, chunk)
        )
        has_last = await unit.read(
            "SELECT 1 FROM upload_staging_chunks WHERE path = ? AND chunk = ?", (path, LAST_CHUNK)
        )
        file = unit.spool.staging / row["file"]
        if recorded:
            # A re-sent chunk: it goes back exactly where it was. If its length changed, whatever
            # followed it is no longer valid. Other bytes of the same length are not a retry but
            # another upload's chunk: the staged upload is dropped rather than mixed.
            offset, old_length = recorded[0]
            truncate = len(data) != old_length
            if not truncate and await anyio.to_thread.run_sync(_read_range, file, offset, old_length) != data:
                await self._drop_locked(path, row)
                raise StagingBusy(f"two uploads of {path} at once: start again")
        elif (chunk == LAST_CHUNK or chunk == row["chunks"] + 1) and not has_last:
            offset, truncate = row["size"], False
        else:
            raise StagingError(f"chunk {chunk} does not follow chunk {row['chunks']} of {path}")
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
            self._advance_hash(path, offset, data, truncate)  # this thread; the path's lock is held

        await _guarded(write, None)
        now = unit.now()
        size = end if truncate else max(row["size"], end)
        chunks = row["chunks"] if chunk == LAST_CHUNK else max(row["chunks"], chunk)
        async with unit.transaction(durable=False) as conn:
            if truncate:
                await conn.execute(
                    "DELETE FROM upload_staging_chunks WHERE path = ? AND offset > ?", (path, offset)
                )
                if chunk != LAST_CHUNK:
                    chunks = chunk
            await conn.execute(
                "INSERT INTO upload_staging_chunks (path, chunk, offset, length) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (path, chunk) DO UPDATE SET offset = excluded.offset, length = excluded.length",
                (path, chunk, offset, len(data)),
            )
            await conn.execute(
                "UPDATE upload_staging SET size = ?, chunks = ?, updated_at = ? WHERE path = ?",
                (size, chunks, now, path),
            )
        return StagingInfo(path, chunks, size, file, row["created_at"], now)

    def _advance_hash(self, path: str, offset: int, data: bytes, truncate: bool) -> None:
        state = self._hashers.get(path)
        if state is not None and state[1] == offset and not truncate:
            state[0].update(data)
            self._hashers[path] = (state[0], offset + len(data))
        else:
            # Out of order (a re-sent chunk): hash the whole file once at the end instead.
            self._hashers.pop(path, None)

    async def finish(self, path: str) -> Blob:
        unit = self._unit
        if not unit.owner:
            raise NotOwner("only the journal owner stages uploads")
        async with self._lock(path):
            row = await self._row(path)
            if row is None:
                raise StagingError(f"no upload in progress for {path}")
            file = unit.spool.staging / row["file"]
            state = self._hashers.pop(path, None)
            if state is not None and state[1] == row["size"]:
                sha = state[0].hexdigest()
                await anyio.to_thread.run_sync(_fsync_file, file)
            else:
                sha = await anyio.to_thread.run_sync(_hash_file, file)
            # Durable before it becomes a blob: the last chunk's reply acknowledges the whole upload.
            await unit.spool.install_file(file, sha)
            async with unit.transaction() as conn:
                await conn.execute("DELETE FROM upload_staging WHERE path = ?", (path,))
        return Blob(sha256=sha, size=row["size"], path=unit.blob_path(sha))

    async def drop(self, path: str) -> None:
        async with self._lock(path):
            row = await self._row(path)
            if row is not None:
                await self._drop_locked(path, row)

    async def _drop_locked(self, path: str, row: Any) -> None:
        unit = self._unit
        async with unit.transaction() as conn:
            await conn.execute("DELETE FROM upload_staging WHERE path = ?", (path,))
        self._hashers.pop(path, None)
        with contextlib.suppress(OSError):
            await anyio.to_thread.run_sync((unit.spool.staging / row["file"]).unlink)


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
