"""The spool: content-addressed blobs, the staging area and the manifest.

Layout under ``<journal_dir>/spool``::

    tmp/                    blobs being written (garbage after a crash)
    <sha[:2]>/<sha256>      durable blobs, immutable once renamed into place
    staging/<key>           JupyterLab chunked uploads being received
    manifest.log            one JSON line per enqueue (fsynced before the commit), for re-import
                            after db corruption; plus best-effort "end" lines

Every blocking call runs in a worker thread. Writes and fsyncs go through ``os_write``/``os_fsync`` so
tests can inject failures (ENOSPC) and count bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from cs3sync.journal.crash import crash_point
from cs3sync.journal.errors import SpoolFull
from cs3sync.journal.fs import DIR_MODE, FILE_MODE, ensure_private_dir, fsync_dir
from cs3sync.journal.types import Blob

#: Size of the pieces written and hashed at once (bounded memory, interleaves with other threads).
IO_CHUNK = 1024 * 1024

# Indirections for fault injection in tests.
os_write = os.write
os_pwrite = os.pwrite
os_fsync = os.fsync

_SPACE_ERRORS = {errno.ENOSPC, errno.EDQUOT}

T = TypeVar("T")


def is_space_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _SPACE_ERRORS


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os_write(fd, view)
        view = view[written:]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os_pwrite(fd, view, offset)
        view = view[written:]
        offset += written


@contextlib.contextmanager
def _discarded_on_failure(tmp: Path) -> Iterator[None]:
    """A blob being written: on any failure its temporary file goes (an error path, as quick as a
    syscall), and no space left becomes `SpoolFull`, the one error the write path reports for it."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_space_error(exc):
            raise SpoolFull("no space left for the journal spool; nothing was saved") from exc
        raise


def _pieces(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), IO_CHUNK):
        yield view[start : start + IO_CHUNK]


#: The spool's blocking calls in flight at once. anyio starts a worker thread for a call when none is
#: idle, and starting one holds the event loop until the new thread runs: 50 saves at once made it start
#: about 40 of them, stalling the loop 40-60 ms on a busy machine (issue 14). A few threads keep the disk
#: as busy as it gets; the calls beyond them wait their turn off the loop.
SPOOL_THREADS = 6


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.staging = root / "staging"
        self.manifest = root / "manifest.log"
        #: Serialises renames into place with gc unlinks, so a blob re-stored while gc runs survives.
        self.install_lock = anyio.Lock()
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use, in the event loop

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, at most `SPOOL_THREADS` of them at once."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(SPOOL_THREADS)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def setup(self) -> None:
        for path in (self.root, self.tmp, self.staging):
            ensure_private_dir(path)
        # The 256 blob folders (``<sha[:2]>``) up front, with one fsync of the spool for all of them: made
        # on demand, a young journal's saves each paid a mkdir and a second directory fsync (25 of 30).
        created = False
        for prefix in range(256):
            folder = self.root / f"{prefix:02x}"
            if not folder.is_dir():
                folder.mkdir(mode=DIR_MODE, exist_ok=True)
                created = True
        if created:
            fsync_dir(self.root)

    def blob_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    # ------------------------------------------------------------ blobs
    async def store(self, source: bytes | Path | AsyncIterable[bytes]) -> Blob:
        """tmp -> fsync -> rename to ``<sha[:2]>/<sha>`` -> fsync dir. Raises `SpoolFull` on ENOSPC."""
        tmp = self.tmp / f"{secrets.token_hex(8)}.tmp"
        hasher = hashlib.sha256()
        size = 0
        if isinstance(source, bytes | bytearray | memoryview):
            # Bytes in hand (a save): create, write, hash and fsync in one trip to a worker thread.
            with _discarded_on_failure(tmp):
                size = await self._in_thread(self._write_new, tmp, hasher, bytes(source))
                sha = hasher.hexdigest()
                async with self.install_lock:
                    await self._in_thread(self._install, tmp, sha)
            crash_point("blob_written")
            return Blob(sha256=sha, size=size, path=self.blob_path(sha))
        fd = await self._in_thread(lambda: os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        with _discarded_on_failure(tmp):
            try:
                if isinstance(source, Path):
                    size = await self._in_thread(self._copy_file, fd, hasher, source)
                else:
                    async for chunk in source:
                        size += await self._in_thread(self._write_pieces, fd, hasher, [chunk])
                await self._in_thread(os_fsync, fd)
            finally:
                os.close(fd)
            sha = hasher.hexdigest()
            async with self.install_lock:
                await self._in_thread(self._install, tmp, sha)
        crash_point("blob_written")
        return Blob(sha256=sha, size=size, path=self.blob_path(sha))

    async def write(self, data: bytes) -> tuple[Blob, asyncio.Task[None]]:
        """Write and hash ``data`` into ``tmp/`` (one trip to a worker thread), and start making it
        durable in place (`installing`: fsync, rename to ``<sha[:2]>/<sha>``, fsync of the folder) while
        the caller goes on: an enqueue writes its rows meanwhile and commits once `installing` is done,
        instead of waiting for the fsyncs before it starts. Raises `SpoolFull` on ENOSPC (from
        `installing` too), leaving nothing behind."""
        tmp = self.tmp / f"{secrets.token_hex(8)}.tmp"
        hasher = hashlib.sha256()
        with _discarded_on_failure(tmp), anyio.CancelScope(shield=True):
            # (shielded: a cancellation must not lose the open descriptor)
            fd, size = await self._in_thread(self._write_unsynced, tmp, hasher, data)
        sha = hasher.hexdigest()
        installing = asyncio.ensure_future(self._make_durable(fd, tmp, sha))
        return Blob(sha256=sha, size=size, path=self.blob_path(sha)), installing

    def _write_unsynced(self, tmp: Path, hasher: Any, data: bytes) -> tuple[int, int]:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            return fd, self._write_pieces(fd, hasher, _pieces(data))
        except BaseException:
            os.close(fd)
            raise

    async def _make_durable(self, fd: int, tmp: Path, sha: str) -> None:
        with _discarded_on_failure(tmp):
            try:
                await self._in_thread(os_fsync, fd)
            finally:
                os.close(fd)
            async with self.install_lock:
                await self._in_thread(self._install, tmp, sha)
        crash_point("blob_written")

    def _write_new(self, tmp: Path, hasher: Any, data: bytes) -> int:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            size = self._write_pieces(fd, hasher, _pieces(data))
            os_fsync(fd)
        finally:
            os.close(fd)
        return size

    @staticmethod
    def _write_pieces(fd: int, hasher: Any, pieces: Iterable[bytes | memoryview]) -> int:
        size = 0
        for piece in pieces:
            hasher.update(piece)
            write_all(fd, piece)
            size += len(piece)
        return size

    def _copy_file(self, fd: int, hasher: Any, source: Path) -> int:
        with source.open("rb") as f:
            return self._write_pieces(fd, hasher, iter(lambda: f.read(IO_CHUNK), b""))

    def _install(self, tmp: Path, sha: str) -> None:
        """Rename a fully written, fsynced file into its content address and make the rename durable.
        Replacing an existing copy is harmless (same bytes) and refreshes it against gc."""
        final = self.blob_path(sha)
        if not final.parent.exists():
            final.parent.mkdir(mode=DIR_MODE, exist_ok=True)
            fsync_dir(self.root)
        os.replace(tmp, final)
        fsync_dir(final.parent)

    async def install_file(self, path: Path, sha: str) -> None:
        """Move an already fsynced file (a finished staging file) into place as blob ``sha``."""
        async with self.install_lock:
            await self._in_thread(self._install, path, sha)

    async def unlink_blobs(self, shas: Iterable[str], keep: Callable[[str], bool]) -> int:
        """Unlink blob files unless ``keep(sha)`` (checked under the install lock). Returns how many."""
        removed = 0
        async with self.install_lock:
            for sha in shas:
                if keep(sha):
                    continue
                path = self.blob_path(sha)
                try:
                    await self._in_thread(path.unlink)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    # ------------------------------------------------------------ manifest
    async def append_manifest(self, records: Sequence[Mapping[str, Any]], *, durable: bool) -> None:
        """Append JSON lines; ``durable`` fsyncs them (enqueue lines, written before the commit)."""
        data = "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in records).encode()

        def append() -> None:
            fd = os.open(self.manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                write_all(fd, data)
                if durable:
                    os_fsync(fd)
            finally:
                os.close(fd)

        try:
            await self._in_thread(append)
        except OSError as exc:
            if is_space_error(exc):
                raise SpoolFull("no space left for the journal manifest; nothing was saved") from exc
            raise

    def read_manifest(self) -> list[dict[str, Any]]:
        """Every parseable line (a torn last line after a crash is skipped). Blocking."""
        try:
            text = self.manifest.read_text(errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def rewrite_manifest(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Atomically replace the manifest (compaction). Blocking; call under the journal write lock."""
        tmp = self.root / "manifest.log.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            for record in records:
                write_all(fd, (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode())
            os_fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.manifest)
        fsync_dir(self.root)
