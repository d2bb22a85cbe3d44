"""Test hooks: what other clients do to the storage behind our back (edit, touch, create, remove a file,
hold a lock), and reads for assertions. Reached as ``emu.storage.external_write(...)`` etc."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable

from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .auth import user_id_proto
from .backing import Backing
from .config import UserSpec
from .ids import Ids
from .locks import LockTable
from .nodes import Node
from .versions import Versions


class ExternalChanges:
    def __init__(
        self,
        backing: Backing,
        ids: Ids,
        versions: Versions,
        locks: LockTable,
        resolve_path: Callable[[str, UserSpec | None], Node],
    ) -> None:
        self._b = backing
        self._ids = ids
        self._versions = versions
        self._locks = locks
        self._resolve_path = resolve_path

    def external_write(
        self, path: str, data: bytes, *, mtime: float | None = None, version: bool = True
    ) -> None:
        """Another client writes ``path`` (a CS3 path): new content, new etag, a version of the old."""
        node = self._resolve_path(path, None)
        assert node.disk is not None
        with self._b.mutex:
            node.disk.parent.mkdir(parents=True, exist_ok=True)
            if node.disk.exists() and version:
                self._versions.archive(node.disk)
            tmp = self._b.state_dir / "tmp" / uuid.uuid4().hex
            tmp.write_bytes(data)
            os.replace(tmp, node.disk)
            mtime_ns = int((mtime if mtime is not None else self._b.clock.now()) * 1e9)
            os.utime(node.disk, ns=(mtime_ns, mtime_ns))
            self._ids.bump_content(node.disk)
            self._ids.bump_tree(node.disk)

    def external_touch(self, path: str) -> None:
        """Another client touches ``path``: mtime moves forward (and the etag with it)."""
        node = self._resolve_path(path, None)
        assert node.disk is not None
        with self._b.mutex:
            if not node.disk.exists():
                node.disk.parent.mkdir(parents=True, exist_ok=True)
                node.disk.touch()
            now_ns = max(int(self._b.clock.now() * 1e9), os.stat(node.disk).st_mtime_ns + 1)
            os.utime(node.disk, ns=(now_ns, now_ns))
            self._ids.bump_tree(node.disk)

    def external_mkdir(self, path: str) -> None:
        node = self._resolve_path(path, None)
        assert node.disk is not None
        with self._b.mutex:
            node.disk.mkdir(parents=True, exist_ok=True)
            self._ids.bump_tree(node.disk)

    def external_delete(self, path: str) -> None:
        """Another client removes ``path`` for good (no recycle entry); its id is dropped."""
        node = self._resolve_path(path, None)
        assert node.disk is not None
        with self._b.mutex:
            parent = node.disk.parent
            if node.disk.is_dir() and not node.disk.is_symlink():
                shutil.rmtree(node.disk)
            else:
                node.disk.unlink(missing_ok=True)
            self._ids.drop(node.disk)
            self._ids.bump_tree(parent)

    def read(self, path: str) -> bytes:
        """The current content of ``path`` (for assertions)."""
        node = self._resolve_path(path, None)
        assert node.disk is not None
        return node.disk.read_bytes()

    def exists(self, path: str) -> bool:
        node = self._resolve_path(path, None)
        return node.disk is not None and node.disk.exists()

    def file_id_of(self, path: str) -> str:
        node = self._resolve_path(path, None)
        assert node.disk is not None
        return self._ids.file_id(node.disk)

    def lock(
        self,
        path: str,
        app: str = "other-app",
        lock_id: str = "foreign-lock",
        user: str | None = "marie",
        expiration: float | None = 3600.0,
        lock_type: int = res.LOCK_TYPE_WRITE,
    ) -> None:
        """A lock held by another app or user; ``expiration`` is seconds from now (None = no expiry)."""
        node = self._resolve_path(path, None)
        assert node.disk is not None
        spec = self._b.config.user(user) if user else None
        lock = res.Lock(lock_id=lock_id, type=lock_type, app_name=app)
        if spec is not None:
            lock.user.CopyFrom(user_id_proto(spec))
        if expiration is not None:
            lock.expiration.CopyFrom(types_pb2.Timestamp(seconds=int(self._b.clock.now() + expiration)))
        with self._b.mutex:
            self._locks.put(self._ids.file_id(node.disk), lock)
