"""`Places`: where a Jupyter path lives on the storage.

Jupyter paths are relative to ``CS3Sync.root_path`` (else the user's home, asked of the storage once).
Spaces and accepted received shares outside the root are mounted under the virtual folders ``Spaces``
and ``Shared with me`` with names that never change while they exist (contents/mounts.py); the names
are kept in the journal's ``meta`` table, loaded before the first path is resolved, and refreshed when
a path names a mount we do not know yet (at most every MOUNT_REFRESH_EVERY seconds) or a panel lists
them.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from contents import paths as P
from contents.errors import http_error
from contents.mounts import SHARES_FOLDER, SPACES_FOLDER, MetaStore, Mountable, MountTable, under

if TYPE_CHECKING:
    import logging

    from contents.runtime import Runtime
    from cs3sync.cs3.types import ReceivedShare, Space

#: A path under an unknown mount name lists spaces and shares again at most this often (seconds).
MOUNT_REFRESH_EVERY = 10.0


class Places:
    """The path map of this server (root and mounts) and the mounts' stable names."""

    def __init__(
        self,
        root_path: str,
        runtime: Runtime,
        on_store: Callable[[MetaStore], Awaitable[None]],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.path_map: P.PathMapper | None = P.PathMapper(root_path) if root_path else None
        self.runtime = runtime
        self.on_store = on_store  # told of the journal's meta store when it is first opened
        self.log = log
        self.mount_table = MountTable()
        self._lock = asyncio.Lock()
        self._refreshed_at: float | None = None  # monotonic time of the last listing by us

    async def get_path_map(self) -> P.PathMapper:
        """The path map, with the mount names from the journal (the home asked of the storage once)."""
        if self.path_map is None:
            client = await self.runtime.get_client()
            with http_error(""):
                home = await client.home()
            self.path_map = P.PathMapper(home)
        if not self.mount_table.loaded:
            await self._load(self.path_map)
        return self.path_map

    async def locate(self, api_path: str) -> tuple[str, str]:
        """(normalised API path, CS3 path) of a Jupyter path."""
        api_path = P.normalize_api_path(api_path)
        path_map = await self.get_path_map()
        head, _, rest = api_path.partition("/")
        if head in (SPACES_FOLDER, SHARES_FOLDER):
            await self._ensure(path_map, head, rest.partition("/")[0])
        return api_path, path_map.to_cs3(api_path)

    async def _store(self) -> MetaStore | None:
        """The journal keeps the mount names (None while it cannot be opened: names are then kept in
        memory and saved with the next refresh)."""
        try:
            return (await self.runtime.get_engine()).journal
        except Exception as exc:
            self.log.debug("cs3sync: mount names not persisted: %s", exc)
            return None

    async def _load(self, path_map: P.PathMapper) -> None:
        """The names assigned before (this or an earlier process), so a path under a mount means the
        same folder from the first request on."""
        async with self._lock:
            if self.mount_table.loaded:
                return
            store = await self._store()
            if store is None:
                return
            await self.on_store(store)
            await self.mount_table.load(store, (SPACES_FOLDER, SHARES_FOLDER))
            for folder, names in self.mount_table.folders.items():
                if names.names and folder not in path_map.mounts:
                    path_map.set_mounts(folder, names.live())

    async def _ensure(self, path_map: P.PathMapper, folder: str, name: str) -> None:
        """The virtual folders work without a panel having listed them: the first path under one (and a
        name not mounted yet, at most every MOUNT_REFRESH_EVERY seconds) lists spaces and shares."""
        known = folder in path_map.mounts and (not name or name in path_map.mounts[folder])
        now_ = time.monotonic()
        if known and self._refreshed_at is not None:
            return
        if self._refreshed_at is not None and now_ - self._refreshed_at < MOUNT_REFRESH_EVERY:
            return
        self._refreshed_at = now_
        try:
            await self.refresh()
        except Exception as exc:  # unreachable, signed out: the names from the journal still hold
            self.log.debug("cs3sync: could not list spaces and shares: %s", exc)

    async def refresh(
        self,
        spaces_folder: str = SPACES_FOLDER,
        shares_folder: str = SHARES_FOLDER,
        *,
        spaces: list[Space] | None = None,
        incoming: list[ReceivedShare] | None = None,
    ) -> None:
        """Mount the spaces and accepted received shares outside the root under their stable names
        (``spaces``, ``incoming``: the listings if the caller has them)."""
        path_map = await self.get_path_map()
        client = await self.runtime.get_client()
        root = path_map.root
        owners: dict[str, str] = {}

        async def owner_name(user_id: str) -> str:
            if user_id not in owners:
                try:
                    user = await client.get_user(user_id)
                    owners[user_id] = user.username or user.display_name or user_id
                except Exception:  # a suffix is cosmetic: the id still tells the names apart
                    owners[user_id] = user_id[:12]
            return owners[user_id]

        found: dict[str, list[Mountable]] = {}
        if spaces_folder:
            if spaces is None:
                spaces = await client.spaces()
            # A space that holds the root (the user's personal space when root_path is a folder of it)
            # is what Jupyter already shows: mounting it again would open the home above root_path.
            found[spaces_folder] = [
                Mountable(s.id, s.name, s.path, s.owner)
                for s in spaces
                if s.path and not under(s.path, root) and not under(root, s.path)
            ]
        if shares_folder:
            if incoming is None:
                incoming = await client.list_incoming_shares()
            items = []
            for rs in incoming:
                res = rs.resource or rs.share.resource
                if rs.state != "accepted" or res is None or not res.path or under(res.path, root):
                    continue
                key = str(rs.share.resource_id) if rs.share.resource_id else f"share:{rs.share.id}"
                items.append(
                    Mountable(key, res.name or posixpath.basename(res.path), res.path, rs.share.owner)
                )
            found[shares_folder] = items
        store = await self._store()
        async with self._lock:
            for folder, items in found.items():
                path_map.set_mounts(folder, await self.mount_table.update(store, folder, items, owner_name))
