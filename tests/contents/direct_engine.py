"""A test double of the `SyncEngine` facade that applies every write at once through the client.

It lets the contents manager's own logic be tested in isolation (``CS3ContentsManager.engine_class``);
the durability, ordering and offline guarantees are the real engine's and are tested with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class CheckpointRow:
    checkpoint_id: str
    path: str
    blob: str
    size: int
    remote_path: str | None
    entry_id: int | None
    created_at: float


class MemoryJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._checkpoints: dict[str, dict[str, CheckpointRow]] = {}

    def blob_path(self, sha256: str) -> Path:
        return self.directory / "spool" / sha256

    async def store_blob(self, source: bytes | Path) -> Blob:
        data = await asyncio.to_thread(source.read_bytes) if isinstance(source, Path) else source
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return Blob(sha, len(data), path)

    async def add_checkpoint(
        self, path: str, checkpoint_id: str, blob: Blob, *, remote_path=None, entry_id=None
    ):
        row = CheckpointRow(checkpoint_id, path, blob.sha256, blob.size, remote_path, entry_id, time.time())
        self._checkpoints.setdefault(path, {})[checkpoint_id] = row
        return row

    async def checkpoints(self, path: str) -> list[CheckpointRow]:
        return list(self._checkpoints.get(path, {}).values())

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        self._checkpoints.get(path, {}).pop(checkpoint_id, None)

    async def move_checkpoints(self, src: str, dst: str) -> None:
        for key in [k for k in self._checkpoints if k == src or k.startswith(src + "/")]:
            rows = self._checkpoints.pop(key)
            new = dst + key[len(src) :]
            self._checkpoints[new] = {
                i: CheckpointRow(
                    i,
                    new,
                    *[getattr(r, f) for f in ("blob", "size", "remote_path", "entry_id", "created_at")],
                )
                for i, r in rows.items()
            }


class DirectEngine:
    """Applies each submitted command immediately; ``wait`` is always True."""

    def __init__(self, client: Any, journal_dir: Path | None = None, **_: Any) -> None:
        self.client = client
        self._tmp = tempfile.TemporaryDirectory()
        self.journal = MemoryJournal(Path(journal_dir or self._tmp.name))
        self.state = "online"
        self.health = "ok"
        self._next = 0
        self._staging: dict[str, Path] = {}

    async def __aenter__(self) -> DirectEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def on_finished(self, listener: Any) -> None:
        """Every write is applied before its submit returns: nothing lands in the background."""

    def nudge(self) -> None:
        """Never offline."""

    def storage_answered(self) -> None:
        """Never offline."""

    async def wait_ended(self) -> None:
        await asyncio.Event().wait()  # nothing runs in the background, so nothing dies

    def _id(self) -> int:
        self._next += 1
        return self._next

    def overlay(self, path: str) -> None:
        return None

    def overlay_children(self, path: str) -> dict[str, Any]:
        return {}

    def blob_path(self, sha256: str) -> Path:
        return self.journal.blob_path(sha256)

    async def wait(self, entry_id: int, timeout: float) -> bool:
        return True

    async def submit_save(self, path: str, data: bytes | Path, base_etag=None, base_fileid=None) -> int:
        await self.client.upload(path, data)
        return self._id()

    async def submit_mkdir(self, path: str) -> int:
        await self.client.mkdir(path)
        return self._id()

    async def submit_delete(self, path: str, base_etag=None, base_fileid=None, kind=None) -> int:
        await self.client.delete(path)
        return self._id()

    async def submit_rename(self, src: str, dst: str, base_fileid=None, kind=None) -> int:
        await self.client.move(src, dst)
        return self._id()

    async def submit_copy(self, src: str, dst: str) -> int:
        await self.client.upload(dst, await self.client.read_bytes(src))
        return self._id()

    async def submit_checkpoint(
        self, path: str, checkpoint_path: str, data: bytes, checkpoint_id=None
    ) -> int:
        parent = posixpath.dirname(checkpoint_path)
        if await self.client.stat_or_none(parent) is None:
            await self.client.mkdir(parent)
        await self.client.upload(checkpoint_path, data)
        entry_id = self._id()
        if checkpoint_id is not None:
            blob = await self.journal.store_blob(data)
            await self.journal.add_checkpoint(path, checkpoint_id, blob, remote_path=checkpoint_path)
        return entry_id

    async def stage_chunk(self, path: str, chunk: int, data: bytes) -> None:
        staged = self._staging.get(path)
        if chunk == 1 or staged is None:
            staged = Path(self._tmp.name) / hashlib.sha256(path.encode()).hexdigest()
            staged.write_bytes(b"")
            self._staging[path] = staged
        with staged.open("ab") as f:
            f.write(data)

    async def commit_staged(self, path: str, base_etag=None) -> int:
        staged = self._staging.pop(path)
        await self.client.upload(path, staged)
        return self._id()
