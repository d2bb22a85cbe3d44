"""File ids for real-time collaboration (jupyter_server_fileid) that are CS3 resource ids.

jupyter-collaboration keys each shared document ("room") by a file id, and finds the room's file by
asking the file id manager for that id's current path. jupyter_server_fileid's own managers number
paths in a local SQLite file and follow only renames made through this Jupyter server. A CS3 storage
already has stable ids: the resource id survives a rename by anyone (CERNBox web, sync client, another
Jupyter). So the file id here is the resource id (encoded to be safe in a room name), and a room keeps
its document when the file is renamed, through Jupyter or on the storage.

jupyter_server_fileid calls its manager synchronously on the event loop, so nothing here waits for the
storage: ids come from what the contents manager saw (a file is always read before it is opened), and
the storage is asked in background tasks (the resource id of a file not seen yet, the new place of a
renamed one). A file that is not on the storage yet (its creation is still journaled) gets a provisional
id, linked to its resource id once it is there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jupyter_server_fileid.manager import BaseFileIdManager
from traitlets import Float

from contents.paths import normalize_api_path
from cs3sync.cs3.types import FileId

#: Jupyter file ids made from a CS3 resource id start with this; provisional ones with `NEW`.
PREFIX = "cs3-"
NEW = "new-"


class ResourceIndex(Protocol):
    """What the file id manager needs of the contents manager (its `ResourceIds`, contents/resources.py)."""

    def seen_file_id(self, api_path: str) -> FileId | None: ...

    async def file_id_of(self, api_path: str) -> FileId | None: ...

    async def api_path_of(self, file_id: FileId) -> str | None: ...

    def has_pending(self, api_path: str) -> bool: ...


def encode(file_id: FileId) -> str:
    """A resource id as a Jupyter file id: room names are ``format:type:id`` and end at a ``/``, and a
    CS3 id may hold ``:`` or ``/`` (base64 opaque ids), so the id is base64url-encoded."""
    return PREFIX + base64.urlsafe_b64encode(str(file_id).encode()).decode().rstrip("=")


def decode(jupyter_id: str) -> FileId | None:
    """The resource id of a Jupyter file id made by `encode`, else None (provisional or foreign)."""
    if not jupyter_id.startswith(PREFIX):
        return None
    text = jupyter_id[len(PREFIX) :]
    try:
        return FileId.parse(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass
class Entry:
    path: str  # the Jupyter path, as far as we know
    resource: FileId | None  # None while the file is not on the storage yet (a provisional id)
    checked_at: float = 0.0  # monotonic time of the last background check against the storage
    checking: bool = False


class CS3FileIdManager(BaseFileIdManager):
    """jupyter_server_fileid's manager over CS3 resource ids; see the module docstring.

    The cs3sync server extension selects it (``FileIdExtension.file_id_manager_class``) and `attach`es
    the contents manager when the server starts. The map lives in memory: ids made from resource ids
    are the same after a restart (rooms' stored updates still match); provisional ones are not.
    """

    follow_interval = Float(
        5.0,
        config=True,
        help="At most this often (seconds) per open document, ask the storage where the resource is "
        "now, so that a rename made outside Jupyter moves the room along.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index: ResourceIndex | None = None
        self._by_id: dict[str, Entry] = {}
        self._by_path: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, index: ResourceIndex) -> None:
        self._index = index

    # --- jupyter_server_fileid's API ------------------------------------------------------------
    def _normalize_path(self, path: str) -> str:
        return normalize_api_path(path)

    def _from_normalized_path(self, path: str | None) -> str | None:
        return path

    def index(self, path: str) -> str | None:
        path = self._normalize_path(path)
        existing = self.get_id(path)
        if existing is not None:
            return existing
        resource = self._index.seen_file_id(path) if self._index is not None else None
        if resource is None:
            jupyter_id = NEW + uuid.uuid4().hex
        else:
            jupyter_id = encode(resource)
            moved = self._by_id.get(jupyter_id)
            if moved is not None:  # renamed outside Jupyter and opened at its new path: same room
                self._by_path.pop(moved.path, None)
        self._by_id[jupyter_id] = Entry(path, resource)
        self._by_path[path] = jupyter_id
        if resource is None:
            self._check(jupyter_id)
        return jupyter_id

    def get_id(self, path: str) -> str | None:
        return self._by_path.get(self._normalize_path(path))

    def get_path(self, id: str) -> str | None:
        entry = self._by_id.get(id)
        if entry is None:
            return None
        if time.monotonic() - entry.checked_at >= self.follow_interval:
            self._check(id)
        return entry.path

    def move(self, old_path: str, new_path: str) -> str | None:
        old_path, new_path = self._normalize_path(old_path), self._normalize_path(new_path)
        prefix = old_path + "/"
        for path in [p for p in self._by_path if p == old_path or p.startswith(prefix)]:
            jupyter_id = self._by_path.pop(path)
            moved = new_path + path[len(old_path) :]
            self._by_path[moved] = jupyter_id
            self._by_id[jupyter_id].path = moved
        return self._by_path.get(new_path)

    def copy(self, from_path: str, to_path: str) -> str | None:
        return None  # a copy is another resource: it gets its own id when opened

    def delete(self, path: str) -> None:
        path = self._normalize_path(path)
        prefix = path + "/"
        for gone in [p for p in self._by_path if p == path or p.startswith(prefix)]:
            self._by_id.pop(self._by_path.pop(gone), None)

    def save(self, path: str) -> str | None:
        return None

    def get_handlers_by_action(self) -> dict[str, Callable[[dict[str, Any]], Any] | None]:
        return {
            "get": None,
            "save": None,
            "rename": lambda data: self.move(data["source_path"], data["path"]),
            "copy": None,
            "delete": lambda data: self.delete(data["path"]),
        }

    # --- asking the storage in the background ---------------------------------------------------
    def _check(self, jupyter_id: str) -> None:
        entry = self._by_id.get(jupyter_id)
        if entry is None or entry.checking or self._index is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the server's loop (a command-line tool): nothing to follow
        entry.checking = True
        task = loop.create_task(self._follow(jupyter_id, entry, self._index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, jupyter_id: str, entry: Entry, index: ResourceIndex) -> None:
        """Learn the resource id of a provisional entry, and where the resource is now."""
        try:
            path = entry.path
            if entry.resource is None:
                entry.resource = await index.file_id_of(path)
                return
            now_at = await index.api_path_of(entry.resource)
            # Ours to apply only if nothing moved the entry meanwhile and no change of ours at the old
            # path is still on its way (the storage shows a rename of ours only once it is applied).
            if now_at is None or now_at == path or entry.path != path or index.has_pending(path):
                return
            if self._by_id.get(jupyter_id) is entry and now_at not in self._by_path:
                self.log.info("cs3sync: %s was renamed to %s on the storage", path, now_at)
                self._by_path.pop(path, None)
                self._by_path[now_at] = jupyter_id
                entry.path = now_at
        except Exception as exc:  # a background check: the next one tries again
            self.log.debug("cs3sync: could not follow %s: %s", entry.path, exc)
        finally:
            entry.checking = False
            entry.checked_at = time.monotonic()

    async def settle(self) -> None:
        """Wait for the background checks started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
