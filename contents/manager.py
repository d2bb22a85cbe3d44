"""``CS3ContentsManager``: CS3 storage as the file system of Jupyter.

Reads go straight to CS3 through the client (one Stat per metadata call behind a short cache, one
ListContainer per listing) and then overlay the journal's pending entries, so every acknowledged
write is visible at once. Writes become durable journal entries through the `SyncEngine`; a write
waits up to ``write_through_timeout`` to be applied and otherwise replies optimistically (the entry
is durable, so the 2xx is honest). See docs/contents.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import fnmatch
import hashlib
import os
import posixpath
import re
import time
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError
from traitlets import Dict, Int, Unicode, default, observe

from contents import paths as P
from contents.checkpoints import CS3Checkpoints
from contents.clients import CLIENT
from contents.config import CS3Sync
from contents.errors import http_error, is_signed_out, is_unreachable, to_http_error
from contents.models import (
    NOT_FOUND,
    Info,
    KnownInfo,
    Pending,
    PresentedTimes,
    Stat,
    base_model,
    content_type,
    datetime_from_ns,
    datetime_from_seconds,
    hash_from_checksum,
    is_foreign_lock,
    lock_holder_name,
    now,
)
from contents.mounts import SHARES_FOLDER, SPACES_FOLDER, Mountable, MountTable, under
from contents.notebooks import NotebookCodec
from contents.remote import Listing, RemoteView
from contents.runtime import Runtime
from cs3sync.cs3.types import FileId
from cs3sync.cs3.uploads import human_size
from cs3sync.journal.types import Op

if TYPE_CHECKING:
    from cs3sync.cs3 import CS3Client, CS3Config
    from cs3sync.cs3.downloads import DownloadStream
    from cs3sync.engine import SyncEngine
    from cs3sync.journal.types import RemoteState
    from cs3sync.overlay import Overlay


#: A path under an unknown mount name lists spaces and shares again at most this often (seconds).
MOUNT_REFRESH_EVERY = 10.0

# A listing of LISTING_BATCHED entries or more builds its child models in batches of LISTING_BATCH,
# yielding to the event loop between them.
LISTING_BATCHED = 200
LISTING_BATCH = 100


class CS3ContentsManager(AsyncContentsManager):
    """Jupyter contents on CS3 storage (CERNBox/Reva), with a durable local operation journal."""

    hash_algorithm = Unicode(
        "sha256",
        help="Algorithm of hashes computed here; files we did not write show the storage's checksum.",
    )

    engine_options = Dict(help="Extra keyword arguments for the engine (backoff, probe intervals...).").tag(
        config=True
    )

    max_copy_folder_size_mb = Int(help="Largest folder (MiB) a copy may duplicate (default: CS3Sync's).").tag(
        config=True
    )

    @default("max_copy_folder_size_mb")
    def _max_copy_default(self) -> int:
        return self.cs3.max_copy_folder_size_mb

    @default("files_handler_class")
    def _files_handler_class_default(self) -> type:
        from contents.files import CS3FilesHandler

        return CS3FilesHandler

    @default("checkpoints_class")
    def _checkpoints_class_default(self) -> type:
        return CS3Checkpoints

    @observe("root_dir")
    def _root_dir_changed(self, change: dict[str, Any]) -> None:
        pass  # root_dir is a local notion; the CS3 root is CS3Sync.root_path

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cs3 = CS3Sync(parent=self)
        self.path_map: P.PathMapper | None = P.PathMapper(self.cs3.root_path) if self.cs3.root_path else None
        self.runtime = Runtime(self._client_config, self._engine_kwargs, self._entry_finished, self.log)
        # The etag of the version an editor last loaded from us (or our last landed write) per path:
        # the base of the next save there (JupyterLab does not send one).
        self._editor_bases: dict[str, str] = {}
        self._seeded: set[str] = set()
        self._seeded_dirs: set[str] = set()
        self.presented = PresentedTimes()
        self.remote = RemoteView(self.cs3, self.runtime, self.presented, self.log)
        self.mount_table = MountTable()
        self._mounts_lock = asyncio.Lock()
        self._mounts_refreshed_at: float | None = None  # monotonic time of the last listing by us
        #: Paths whose save the engine merged with a foreign change: (presented time, sha256) to show next.
        self._merged: dict[str, tuple[float, str | None]] = {}
        from contents.locks import LockManager

        self.locks = LockManager(self)
        self._hide_globs_re: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)
        self._notebooks: NotebookCodec | None = None

    # ------------------------------------------------------------------ runtime: client and engine
    def _client_config(self) -> CS3Config:
        from cs3sync.cs3 import CS3Config

        return CS3Config(**self.cs3.cs3_config_kwargs(CS3Config))

    async def get_client(self) -> CS3Client:
        """The CS3 client of the running event loop (`Runtime`)."""
        return await self.runtime.get_client()

    @property
    def client(self) -> CS3Client | None:
        return self.runtime.client

    @property
    def engine(self) -> SyncEngine | None:
        return self.runtime.engine

    async def get_path_map(self) -> P.PathMapper:
        if self.path_map is None:
            client = await self.get_client()
            with http_error(""):
                home = await client.home()
            self.path_map = P.PathMapper(home)
        if not self.mount_table.loaded:
            await self._load_mounts(self.path_map)
        return self.path_map

    # ------------------------------------------------------------------ virtual mounts
    async def _mount_store(self) -> Any:
        """The journal keeps the mount names (None while it cannot be opened: names are then kept in
        memory and saved with the next refresh)."""
        try:
            return (await self.get_engine()).journal
        except Exception as exc:
            self.log.debug("cs3sync: mount names not persisted: %s", exc)
            return None

    async def _load_mounts(self, path_map: P.PathMapper) -> None:
        """The names assigned before (this or an earlier process), so a path under a mount means the
        same folder from the first request on."""
        async with self._mounts_lock:
            if self.mount_table.loaded:
                return
            store = await self._mount_store()
            if store is None:
                return
            await self.locks.load_instance(store)
            await self.mount_table.load(store, (SPACES_FOLDER, SHARES_FOLDER))
            for folder, names in self.mount_table.folders.items():
                if names.names and folder not in path_map.mounts:
                    path_map.set_mounts(folder, names.live())

    async def refresh_mounts(
        self,
        spaces_folder: str = SPACES_FOLDER,
        shares_folder: str = SHARES_FOLDER,
        *,
        spaces: list[Any] | None = None,
        incoming: list[Any] | None = None,
    ) -> None:
        """Mount the spaces and accepted received shares outside the root under their stable names."""
        path_map = await self.get_path_map()
        client = await self.get_client()
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
        store = await self._mount_store()
        async with self._mounts_lock:
            for folder, items in found.items():
                path_map.set_mounts(folder, await self.mount_table.update(store, folder, items, owner_name))

    def _journal_dir(self) -> Path:
        return self.cs3.journal_path()

    async def get_engine(self) -> SyncEngine:
        """The one `SyncEngine` of this server, started on the server's loop at first use (`Runtime`)."""
        return await self.runtime.get_engine()

    def _entry_finished(self, entry: Any, landed: Any = None) -> None:
        """The engine ended a run of one of our writes, maybe with no request waiting for it (an
        optimistic answer, an entry from before a restart): what we cached of its paths is stale.
        A save that landed comes with what the storage holds now (the engine's own last Stat): that is
        the path's cached Stat, so the GET JupyterLab sends after every save asks the storage nothing."""
        self.invalidate(*[p for p in (entry.path, entry.src_path) if p])
        if entry.op == Op.SAVE and landed is not None and landed.type != "directory":
            self.remote.landed(entry.path, landed)
            if self.presented.unsettled(entry.path) == entry.id:
                self.presented.landed(entry.path, landed.etag)
        if entry.extra.get("merge", {}).get("merged") and entry.presented_mtime:
            # Merged with someone else's change (cs3sync.rebase): from the next read on, present the merge
            # at the time the engine gave it (newer than the editor's save) with its own hash, so
            # JupyterLab sees that the file changed. The reply to the save itself still describes what
            # the editor sent.
            self._merged[entry.path] = (entry.presented_mtime, entry.sha256)

    def _engine_kwargs(self) -> dict[str, Any]:
        """SyncEngine's arguments from the traits; ``engine_options`` adds or overrides any of them."""
        wanted: dict[str, Any] = {
            "journal_dir": self._journal_dir(),
            "workers": self.cs3.workers,
            "lock_provider": self.locks.lock_context,
            "allow_network_fs": self.cs3.allow_network_fs,
            "offline_probe_interval": self.cs3.offline_probe_interval,
            "offline_probe_max": self.cs3.offline_probe_max,
            "merge_conflicts": self.cs3.merge_conflicts,
            "account": f"{self.cs3.client_id or 'default'} @ {self.cs3.host or 'unconfigured'}",
        }
        wanted.update(self.engine_options)
        return wanted

    async def shutdown(self) -> None:
        """Stop lock sessions, the engine and the clients (server shutdown)."""
        with contextlib.suppress(Exception):
            await self.locks.close()
        if self._notebooks is not None:
            self._notebooks.close()
            self._notebooks = None
        with contextlib.suppress(Exception):
            await self.flush_observations()
        await self.runtime.aclose()

    # ------------------------------------------------------------------ paths
    async def locate(self, api_path: str) -> tuple[str, str]:
        """(normalised API path, CS3 path) of a Jupyter path (checkpoints, locks and /files use it too)."""
        api_path = P.normalize_api_path(api_path)
        await self.runtime.wait_started()  # the engine is starting: wait, so reads see pending entries
        path_map = await self.get_path_map()
        head, _, rest = api_path.partition("/")
        if head in (SPACES_FOLDER, SHARES_FOLDER):
            await self._ensure_mounts(path_map, head, rest.partition("/")[0])
        return api_path, path_map.to_cs3(api_path)

    async def _ensure_mounts(self, path_map: P.PathMapper, folder: str, name: str) -> None:
        """The virtual folders work without a panel having listed them: the first path under one (and a
        name not mounted yet, at most every MOUNT_REFRESH_EVERY seconds) lists spaces and shares."""
        known = folder in path_map.mounts and (not name or name in path_map.mounts[folder])
        now_ = time.monotonic()
        if known and self._mounts_refreshed_at is not None:
            return
        if self._mounts_refreshed_at is not None and now_ - self._mounts_refreshed_at < MOUNT_REFRESH_EVERY:
            return
        self._mounts_refreshed_at = now_
        try:
            await self.refresh_mounts()
        except Exception as exc:  # unreachable, signed out: the names from the journal still hold
            self.log.debug("cs3sync: could not list spaces and shares: %s", exc)

    # ------------------------------------------------------------------ stat (+ cache) and overlay
    def pending_of(self, cs3_path: str) -> Pending | None:
        engine = self.runtime.engine
        if engine is None:
            return None
        ov = engine.overlay(cs3_path)
        return _to_pending(engine, ov) if ov is not None else None

    def _pending_children(self, cs3_dir: str) -> dict[str, Pending]:
        engine = self.runtime.engine
        if engine is None:
            return {}
        return {name: _to_pending(engine, ov) for name, ov in engine.overlay_children(cs3_dir).items()}

    def invalidate(self, *cs3_paths: str) -> None:
        """Forget cached stats and bytes of these paths, their descendants and parents (after our writes)."""
        self.remote.invalidate(*cs3_paths)

    async def flush_observations(self) -> None:
        """Write what reads saw (and presented times that need it) to the journal (`RemoteView`)."""
        await self.remote.flush_observations()

    async def _seed_presented(self, cs3_path: str, info: Any = None) -> None:
        """Before presenting a path for the first time in this process, take what an earlier process
        presented for the same etag from the journal (stable last_modified across restarts)."""
        if self.presented.known(cs3_path) or cs3_path in self._seeded:
            return
        if len(self._seeded) > 100_000:
            self._seeded.clear()
            self._seeded_dirs.clear()
        self._seeded.add(cs3_path)
        row = info if isinstance(info, KnownInfo) else await self.remote.remote_state(cs3_path)
        if row is not None:
            self._seed_from(cs3_path, row)

    async def _seed_presented_children(self, cs3_dir: str) -> list[Any]:
        rows = await self.remote.remote_children(cs3_dir)
        for row in rows:
            if row.path not in self._seeded:
                self._seeded.add(row.path)
                self._seed_from(row.path, row)
        return rows

    def _seed_from(self, cs3_path: str, row: RemoteState | KnownInfo) -> None:
        presented = row.presented_mtime
        etag = row.etag
        if presented is None or not etag:
            return
        blob = row.cached_blob
        hash_value, algorithm = (blob, "sha256") if blob else hash_from_checksum(row.checksum)
        self.presented.seed(cs3_path, etag, datetime_from_seconds(presented), hash_value, algorithm)

    async def lookup(self, api_path: str, cs3_path: str) -> tuple[Pending | None, Any]:
        """(pending state, remote info or NOT_FOUND); raises HTTPError 404 when neither exists.

        An outage is a 503, never a 404: a path only reads as missing when the storage said so.
        """
        pending = self.pending_of(cs3_path)
        if pending is not None and pending.deleted:
            raise HTTPError(404, f"No such file or directory: {api_path}")
        if pending is not None and pending.kind == "directory" and pending.source is None:
            return pending, NOT_FOUND
        try:
            if pending is not None and pending.source is not None and pending.blob_path is None:
                info = await self.remote.stat(pending.source)  # pending rename/copy: read the source
                if info is not NOT_FOUND:
                    return None, info  # info.path names where the bytes are until the rename lands
            info = await self.remote.stat(cs3_path)
        except Exception as exc:
            if pending is not None and (is_unreachable(exc) or is_signed_out(exc)):
                return pending, NOT_FOUND
            if is_unreachable(exc):
                raise HTTPError(503, f"Storage unreachable, no cached copy of {api_path}") from exc
            raise to_http_error(exc, api_path) from exc
        if info is NOT_FOUND and pending is None:
            raise HTTPError(404, f"No such file or directory: {api_path}")
        return pending, info

    # ------------------------------------------------------------------ existence
    async def dir_exists(self, path: str = "") -> bool:
        try:
            api_path, cs3_path = await self.locate(path)
        except HTTPError as e:
            if e.status_code == 404:  # under an unknown mount name
                return False
            raise
        if not api_path or (self.path_map and self.path_map.is_virtual(api_path)):
            return True
        try:
            pending, info = await self.lookup(api_path, cs3_path)
        except HTTPError as e:
            if e.status_code == 404:
                return False
            raise
        if pending is not None:
            return pending.kind == "directory"
        return info.type == "directory"

    async def exists(self, path: str) -> bool:
        """A name never seen while the storage is unreachable counts as free, as in `file_exists`:
        JupyterLab's New Folder / New File pick an untitled name with it (was: 503 "no cached copy of
        Untitled Folder"); the engine finds out when applying (an existing file makes a conflict copy)."""
        if await self.file_exists(path):
            return True
        try:
            return await self.dir_exists(path)
        except HTTPError as e:
            if e.status_code in (503, 504):
                return False
            raise

    async def file_exists(self, path: str) -> bool:
        try:
            api_path, cs3_path = await self.locate(path)
        except HTTPError as e:
            if e.status_code == 404:  # under an unknown mount name
                return False
            raise
        if not api_path:
            return False
        try:
            pending, info = await self.lookup(api_path, cs3_path)
        except HTTPError as e:
            if e.status_code == 404:
                return False
            if e.status_code in (503, 504):
                return False  # offline and never seen: a PUT becomes a (journaled) new file
            raise
        if pending is not None:
            return pending.kind != "directory"
        return info.type != "directory"

    async def is_hidden(self, path: str) -> bool:
        return P.is_hidden_api_path(P.normalize_api_path(path))

    # ------------------------------------------------------------------ models
    def _our_lock_ids(self) -> frozenset[str]:
        return self.locks.our_lock_ids()

    def _lock_context(self) -> tuple[str, frozenset[str]]:
        """(our lock id prefix, our lock ids): read once per listing rather than per entry."""
        return self.locks.prefix, self._our_lock_ids()

    def _writable(self, info: Any, locks: tuple[str, frozenset[str]] | None = None) -> bool:
        if info is NOT_FOUND:
            return True
        if not getattr(info, "writable", True):
            return False
        lock = getattr(info, "lock", None)
        if lock is None:
            return True
        prefix, ours = locks if locks is not None else self._lock_context()
        return not is_foreign_lock(lock, prefix, ours)

    def _model_for(
        self,
        api_path: str,
        cs3_path: str,
        pending: Pending | None,
        info: Any,
        type_: str,
        locks: tuple[str, frozenset[str]] | None = None,
    ) -> dict[str, Any]:
        merged = self._merged.pop(cs3_path, None)
        if merged is not None:
            self.presented.forget(cs3_path)
            self.presented.ours(cs3_path, datetime_from_seconds(merged[0]), merged[1])
        if pending is not None and pending.kind != "directory" and pending.mtime is not None:
            presented = self.presented.get(cs3_path)
            if presented is None or presented.etag is not None:
                presented = self.presented.ours(cs3_path, pending.mtime, pending.sha256)
            model = base_model(
                api_path,
                type=type_,
                last_modified=presented.last_modified,
                writable=self._writable(info, locks),
                size=pending.size,
            )
            model["_hash"] = (presented.hash, presented.hash_algorithm)
            return model
        if info is NOT_FOUND:  # pending mkdir
            stamp = pending.mtime if pending and pending.mtime else now()
            return base_model(api_path, type=type_, last_modified=stamp)
        storage_time = datetime_from_ns(info.mtime_ns)
        if info.type == "directory":
            writable = self._writable(info, locks)
            return base_model(api_path, type=type_, last_modified=storage_time, writable=writable)
        presented = self.presented.get(cs3_path)
        if not (isinstance(info, KnownInfo) and presented is not None and presented.etag):
            presented = self.presented.observe(cs3_path, info.etag, storage_time, info.checksum)
        # else: what we knew before the storage became unreachable is older than our landed write
        if isinstance(info, KnownInfo) and info.cached_blob and presented.etag == info.etag:
            presented.hash, presented.hash_algorithm = info.cached_blob, "sha256"
        model = base_model(
            api_path,
            type=type_,
            last_modified=presented.last_modified,
            writable=self._writable(info, locks),
            size=info.size,
        )
        model["_hash"] = (presented.hash, presented.hash_algorithm)
        return model

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        api_path, cs3_path = await self.locate(path)
        if self.path_map is not None and self.path_map.is_virtual(api_path):
            return await self._virtual_dir_model(api_path, content)
        listed = None
        if not api_path:
            pending, info = None, None
            is_dir = True
        elif content and type in (None, "directory") and not api_path.endswith(".ipynb"):
            # One ListContainer answers a folder listing; a file or a pending path falls through.
            listed = await self._try_list(cs3_path)
        if listed is not None:
            pending, info, is_dir = None, listed.info, True
        elif api_path:
            pending, info = await self.lookup(api_path, cs3_path)
            is_dir = pending.kind == "directory" if pending is not None else info.type == "directory"
        if is_dir:
            if type not in (None, "directory"):
                raise HTTPError(400, f"{api_path} is a directory, not a {type}", reason="bad type")
            model = await self._dir_model(
                api_path,
                cs3_path,
                info,
                content,
                listed.children if listed else None,
                listed.observed_at if listed else 0.0,
            )
        else:
            if type == "directory":
                raise HTTPError(400, f"{api_path} is not a directory", reason="bad type")
            kind = content_type(api_path, False, type)
            await self._seed_presented(cs3_path, info)
            await self._settle_presented(cs3_path)
            model = self._model_for(api_path, cs3_path, pending, info, kind)
            hash_value, hash_algorithm = model.pop("_hash", (None, None))
            data: bytes | None = None
            if content or (require_hash and hash_value is None):
                data = await self.read_content(api_path, cs3_path, pending, info)
            if content and pending is None and info not in (None, NOT_FOUND):
                self._set_editor_base(cs3_path, info.etag)  # what an editor loading this now has
            if content and data is not None:
                if kind == "notebook":
                    await self._fill_notebook(model, data, api_path)
                else:
                    self._fill_file(model, data, format, api_path)
            if require_hash:
                if hash_value is None and data is not None:
                    hash_value, hash_algorithm = hashlib.sha256(data).hexdigest(), "sha256"
                model["hash"], model["hash_algorithm"] = hash_value, hash_algorithm
        model.pop("_hash", None)
        if self.presented.has_dirty():
            self.remote.schedule_recording()
        self.emit(data={"action": "get", "path": api_path})
        return model

    async def _virtual_dir_model(self, api_path: str, content: bool) -> dict[str, Any]:
        model = base_model(api_path, type="directory", last_modified=now(), writable=False)
        if content:
            assert self.path_map is not None
            stamp = model["last_modified"]
            model["content"] = [
                base_model(P.api_join(api_path, name), type="directory", last_modified=stamp, writable=False)
                for name in sorted(self.path_map.mounts.get(api_path, {}))
            ]
            model["format"] = "json"
        return model

    async def _try_list(self, cs3_path: str) -> Listing | None:
        """A folder's listing from one ListContainer; None when that is not the way to answer (a pending
        path, a file, or any error: the normal path then reports it)."""
        if self.pending_of(cs3_path) is not None:
            return None
        return await self.remote.list_folder(cs3_path)

    async def _dir_model(
        self,
        api_path: str,
        cs3_path: str,
        info: Any,
        content: bool,
        listing: list[Any] | None = None,
        listed_at: float = 0.0,
    ) -> dict[str, Any]:
        if info in (None, NOT_FOUND) and listing:
            stamp = datetime_from_ns(max(child.mtime_ns for child in listing))  # one datetime, not 10,000
        else:
            stamp = datetime_from_ns(info.mtime_ns) if info not in (None, NOT_FOUND) else now()
        writable = self._writable(info) if info not in (None, NOT_FOUND) else True
        model = base_model(api_path, type="directory", last_modified=stamp, writable=writable)
        if not content:
            return model
        children: dict[str, dict[str, Any]] = {}
        pending_children = self._pending_children(cs3_path)
        if listing is not None or info is not NOT_FOUND:
            infos: list[Info] | None = list(listing) if listing is not None else None
            observed = listed_at if listing is not None else time.time()
            if infos is None and not isinstance(info, KnownInfo) and not self.remote.storage_unreachable():
                listed = await self.remote.list_children(cs3_path, api_path, observed)
                infos = list(listed) if listed is not None else None
            known_rows: list[Any] = []
            if infos is None or cs3_path not in self._seeded_dirs:
                self._seeded_dirs.add(cs3_path)
                known_rows = await self._seed_presented_children(cs3_path)
            if infos is None:  # unreachable: the listing we know
                infos = [KnownInfo.from_remote(row) for row in known_rows]
                memory = {k.path: k for k in self.remote.known_children(cs3_path)}
                infos = list({**{i.path: i for i in infos}, **memory}.values())
                if not infos and not pending_children and not api_path:
                    raise HTTPError(503, "Storage unreachable, no cached copy of the folder list")
                self.log.info(
                    "cs3sync: storage unreachable; listing %s from the journal (may be partial)",
                    api_path or "/",
                )
            for unsettled in self.presented.unsettled_under(cs3_path):
                await self._settle_presented(unsettled)
            locks = self._lock_context()
            batched = len(infos) >= LISTING_BATCHED
            for index, child in enumerate(infos):
                if batched and index and index % LISTING_BATCH == 0:
                    await asyncio.sleep(0)  # let the loop run between batches of a long listing
                name = child.name or posixpath.basename(child.path.rstrip("/"))
                child_cs3 = posixpath.join(cs3_path, name)
                if not isinstance(child, KnownInfo):
                    self.remote.saw(child_cs3, child, observed)
                if name not in pending_children:  # (the remote version must not pass for our pending one)
                    children[name] = self._child_model(api_path, child_cs3, name, None, child, locks)
            self.remote.schedule_recording()
        locks = self._lock_context()
        for name, pending in pending_children.items():
            if pending.deleted:
                children.pop(name, None)
                continue
            child_cs3 = posixpath.join(cs3_path, name)
            info_child = self.remote.cached_or_known(child_cs3)
            children[name] = self._child_model(api_path, child_cs3, name, pending, info_child, locks)
        model["content"] = [m for name, m in sorted(children.items()) if self._listed(name)]
        model["format"] = "json"
        return model

    def _child_model(
        self,
        parent: str,
        cs3_path: str,
        name: str,
        pending: Pending | None,
        info: Any,
        locks: tuple[str, frozenset[str]] | None = None,
    ) -> dict[str, Any]:
        api_path = P.api_join(parent, name)
        is_dir = pending.kind == "directory" if pending is not None else info.type == "directory"
        model = self._model_for(
            api_path, cs3_path, pending, info, content_type(api_path, is_dir, None), locks
        )
        model.pop("_hash", None)
        return model

    def should_list(self, name: str) -> bool:
        """jupyter_server's ``should_list`` (no ``hide_globs`` pattern matches, as ``fnmatch``) with one
        regex compiled from the patterns, recompiled when they change."""
        globs = tuple(self.hide_globs)
        if globs != self._hide_globs_re[0]:
            joined = "|".join(fnmatch.translate(os.path.normcase(g)) for g in globs)
            self._hide_globs_re = (globs, re.compile(joined) if globs else None)
        pattern = self._hide_globs_re[1]
        return pattern is None or pattern.match(os.path.normcase(name)) is None

    def _listed(self, name: str) -> bool:
        if not self.should_list(name):
            return False
        return self.allow_hidden or not name.startswith(".")

    async def read_content(
        self, api_path: str, cs3_path: str, pending: Pending | None, info: Stat | None
    ) -> bytes:
        """The file's bytes: a pending save from the spool, else CS3 (else the offline cache)."""
        if pending is not None and pending.blob_path is not None:
            return await asyncio.to_thread(pending.blob_path.read_bytes)
        return await self.remote.read(api_path, cs3_path, info)

    def open_download(self, cs3_path: str, info: Stat | None) -> AbstractAsyncContextManager[DownloadStream]:
        """A download stream of a file we have just statted (no second Stat): `RemoteView.open_download`."""
        return self.remote.open_download(cs3_path, info)

    @property
    def notebooks(self) -> NotebookCodec:
        """Notebook parsing, validation and serialisation, in a worker thread (contents/notebooks.py)."""
        if self._notebooks is None:
            _ = self.notary.secret  # read (or created) here, not first by the worker thread
            self._notebooks = NotebookCodec(self.notary, self.log)
        return self._notebooks

    async def trust_notebook(self, path: str) -> None:
        """Explicitly trust a notebook (jupyter_server's ``trust_notebook``, with the signing and the
        signature store in the notebook worker thread, where saves and reads use the store)."""
        model = await self.get(path)
        self.log.warning("Trusting notebook %s", path)
        await self.notebooks.trust(model["content"], model["path"])

    async def _fill_notebook(self, model: dict[str, Any], data: bytes, api_path: str) -> None:
        try:
            nb, validation_error, trusted = await self.notebooks.read(data, api_path)  # mark_trusted_cells
        except Exception as e:
            raise HTTPError(400, f"Unreadable Notebook: {api_path} is not valid notebook JSON") from e
        if not trusted:
            self.log.warning("Notebook %s is not trusted", api_path)
        model["content"] = nb
        model["format"] = "json"
        self.validate_notebook_model(model, validation_error)

    def _fill_file(self, model: dict[str, Any], data: bytes, format: str | None, api_path: str) -> None:
        if format not in (None, "text", "base64"):
            raise HTTPError(400, f"Unknown format {format!r} for {api_path}", reason="bad format")
        if format != "base64":
            try:
                model["content"] = data.decode("utf-8")
                model["format"] = "text"
            except UnicodeDecodeError:
                if format == "text":
                    raise HTTPError(400, f"{api_path} is not UTF-8 encoded", reason="bad format") from None
        if model["content"] is None:
            model["content"] = base64.encodebytes(data).decode("ascii")
            model["format"] = "base64"
        if model["mimetype"] is None:
            model["mimetype"] = "text/plain" if model["format"] == "text" else "application/octet-stream"

    # ------------------------------------------------------------------ writes
    async def _apply(self, entry_id: int, api_path: str) -> bool:
        """Wait up to write_through_timeout (0 while offline) for an entry; True when applied."""
        engine = await self.get_engine()
        timeout = self.cs3.write_through_timeout if self.remote.engine_online() else 0.0
        try:
            done = bool(await engine.wait(entry_id, timeout))
        except Exception as exc:
            await self._raise_if_refused(engine, entry_id, api_path)
            raise to_http_error(exc, api_path) from exc
        if not done and timeout > 0:
            await self._raise_if_refused(engine, entry_id, api_path)
        return done

    async def _raise_if_refused(self, engine: SyncEngine, entry_id: int, api_path: str) -> None:
        """A write the storage keeps refusing (no space: 507; someone else's lock: 423 naming them) is
        kept and retried by the engine, or parked once it gave up, but the user must hear of it instead
        of an optimistic 2xx."""
        try:
            entry = await engine.journal.outcome(entry_id)
        except Exception:
            return
        # An entry between two retries may be caught running again: its last error still says why.
        retried = entry.state in ("running", "queued") and entry.attempts > 0
        if entry.state not in ("retrying", "blocked", "failed") and not retried:
            return
        # A failed entry gave up after its retries (engine max_attempts): the user retries it.
        later = "retry it from the sync panel" if entry.state == "failed" else "it will be written"
        if entry.last_error_kind == "quota_exceeded":
            raise HTTPError(
                507,
                f"Storage quota exceeded{await self._quota_figures(entry.path)}: {api_path} is kept on the "
                f"Jupyter server; {later} when space is freed",
            )
        if entry.last_error_kind == "locked":
            # EOS refuses a write under someone else's lock with a bare 500; the client found the holder
            # with GetLock (storage behaviours row 2). Name them again for the user.
            raise HTTPError(
                423,
                f"{api_path} is locked by {await self._holder_of(entry.path)}: your version is kept on the "
                f"Jupyter server; {later} when the lock is released",
            )

    async def _quota_figures(self, cs3_path: str) -> str:
        """ " (990 B of 1.0 kB used)", or "" when the storage does not say."""
        try:
            quota = await (await self.get_client()).quota(posixpath.dirname(cs3_path))
        except Exception:
            return ""
        if not quota.total:
            return ""
        return f" ({human_size(quota.used)} of {human_size(quota.total)} used)"

    async def _holder_of(self, cs3_path: str) -> str:
        try:
            lock = await (await self.get_client()).get_lock(cs3_path)
        except Exception:
            lock = None
        return lock_holder_name(lock) if lock is not None else "another application"

    async def _check_lock(self, api_path: str, info: Any) -> None:
        if info is NOT_FOUND or info is None:
            return
        lock = info.lock
        if lock is not None and is_foreign_lock(lock, self.locks.prefix, self._our_lock_ids()):
            raise HTTPError(423, f"{api_path} is locked by {lock_holder_name(lock)}")

    async def _refuse_virtual(self, path: str) -> None:
        """The virtual folders (``Spaces``, ``Shared with me``) and their mount points are read-only."""
        api_path = P.normalize_api_path(path)
        path_map = await self.get_path_map()
        if path_map.is_virtual(api_path) or path_map.is_virtual(P.api_parent(api_path)):
            raise HTTPError(403, f"Read-only folder: {P.api_parent(api_path) or api_path}")

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        await self._refuse_virtual(path)
        api_path, cs3_path = await self.locate(path)
        chunk = model.get("chunk")
        if chunk is not None:
            return await self._save_chunk(model, api_path, cs3_path, _chunk_number(chunk))
        self.run_pre_save_hooks(model=model, path=api_path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if "content" not in model and model["type"] != "directory":
            raise HTTPError(400, "No file content provided")
        if not api_path:
            raise HTTPError(400, "Can't save to the root")

        validation_message = None
        if model["type"] == "directory":
            await self._save_directory(api_path, cs3_path)
        elif model["type"] in ("notebook", "file"):
            # The Stat of the target runs while the content is serialised (and signed).
            lookup = asyncio.ensure_future(self._lookup_for_write(api_path, cs3_path))
            try:
                data, validation_error, signing = await self._serialize(model, api_path)
            except BaseException:
                lookup.cancel()
                with contextlib.suppress(BaseException):
                    await lookup
                raise
            try:
                size = await self.save_bytes(api_path, cs3_path, data, lookup=lookup)
            finally:
                if signing is not None:  # recorded while the bytes were stored and journaled
                    await signing
            if model["type"] == "notebook":
                self.validate_notebook_model(model, validation_error=validation_error)
                validation_message = model.get("message")
                if isinstance(self.checkpoints, CS3Checkpoints):
                    exists = await self.checkpoints.has_checkpoint(api_path)
                else:  # another checkpoints class configured
                    exists = bool(await self.checkpoints.list_checkpoints(api_path))
                if not exists:
                    await self.create_checkpoint(api_path)
        else:
            raise HTTPError(400, f"Unhandled contents type: {model['type']}")

        if model["type"] == "directory":
            result = await self.get(api_path, content=False)
        else:  # the model of what we just wrote, without asking the storage again
            presented = self.presented.get(cs3_path)
            assert presented is not None
            result = base_model(
                api_path, type=model["type"], last_modified=presented.last_modified, size=size
            )
        if validation_message:
            result["message"] = validation_message
        self.run_post_save_hooks(model=result, os_path=self.local_path(api_path) or cs3_path)
        self.emit(data={"action": "save", "path": api_path})
        return result

    async def _serialize(
        self, model: dict[str, Any], api_path: str
    ) -> tuple[bytes, dict[str, Any], asyncio.Future[None] | None]:
        """(bytes, validation error, the signature's recording to await) of a model's content."""
        if model["type"] == "notebook":
            try:
                # check_and_sign: hashing and the signature store in the notebook worker thread.
                data, validation_error, trusted, signing = await self.notebooks.serialize(
                    model["content"], api_path
                )
            except HTTPError:
                raise
            except Exception as e:
                raise HTTPError(400, f"Unreadable Notebook: {api_path} is not a valid notebook") from e
            if not trusted:
                self.log.warning("Notebook %s is not trusted", api_path)
            return data, validation_error, signing
        return _decode_file_content(model.get("content"), model.get("format"), api_path), {}, None

    async def _save_directory(self, api_path: str, cs3_path: str) -> None:
        if not self.allow_hidden and P.is_hidden_api_path(api_path):
            raise HTTPError(400, f"Cannot create hidden directory {api_path!r}")
        pending = self.pending_of(cs3_path)
        if pending is not None and not pending.deleted:
            if pending.kind != "directory":
                raise HTTPError(400, f"Not a directory: {api_path}")
            return
        try:
            info = await self.remote.stat(cs3_path)
        except Exception as exc:
            if not is_unreachable(exc):
                raise to_http_error(exc, api_path) from exc
            info = NOT_FOUND
        if info is not NOT_FOUND and (pending is None or not pending.deleted):
            if info.type != "directory":
                raise HTTPError(400, f"Not a directory: {api_path}")
            return
        await self._require_parent(api_path, cs3_path)
        await self.require_writable(api_path, cs3_path, NOT_FOUND)
        engine = await self.get_engine()
        with http_error(api_path):
            entry_id = await engine.submit_mkdir(cs3_path)
        self.invalidate(cs3_path)
        await self._apply(entry_id, api_path)
        self.invalidate(cs3_path)

    async def _require_parent(self, api_path: str, cs3_path: str) -> None:
        parent = P.api_parent(api_path)
        if parent and self.remote.known_folder(posixpath.dirname(cs3_path)) is not None:
            pending = self.pending_of(posixpath.dirname(cs3_path))
            if pending is None or not pending.deleted:
                return
        try:
            exists = not parent or await self.dir_exists(parent)
        except HTTPError as e:
            if e.status_code != 503 or not self.remote.writing_blind():
                raise
            exists = True  # unreachable or signed out: the engine creates missing folders on apply
        if not exists:
            raise HTTPError(404, f"No such directory: {parent}")

    async def require_writable(self, api_path: str, cs3_path: str, info: Any) -> None:
        """Refuse (403) before journaling a change the storage says we may not make: the permission set
        of the item (``writable``), or of its folder when the item does not exist yet (a share's role
        shows there). Unknown (unreachable, signed out): the engine finds out and parks the entry."""
        if info not in (None, NOT_FOUND) and not isinstance(info, KnownInfo):
            if not getattr(info, "writable", True):
                raise HTTPError(403, f"Permission denied: {api_path} is read-only for you")
            return
        parent_api = P.api_parent(api_path)
        try:
            parent = self.remote.known_folder(posixpath.dirname(cs3_path)) or await self.remote.stat(
                posixpath.dirname(cs3_path)
            )
        except Exception:
            return
        if (
            parent is not NOT_FOUND
            and not isinstance(parent, KnownInfo)
            and not getattr(parent, "writable", True)
        ):
            raise HTTPError(403, f"Permission denied: the folder {parent_api or '/'} is read-only for you")

    async def save_bytes(
        self,
        api_path: str,
        cs3_path: str,
        data: bytes | Path,
        sha256: str | None = None,
        lookup: asyncio.Future[tuple[Pending | None, Any]] | None = None,
    ) -> int | None:
        """Journal a save of these bytes and wait for it (write-through, else optimistic). ``lookup``:
        the `_lookup_for_write` of the path if the caller started it already."""
        pending, info = await (lookup if lookup is not None else self._lookup_for_write(api_path, cs3_path))
        if info is not NOT_FOUND and info.type == "directory":
            raise HTTPError(400, f"{api_path} is a directory")
        if pending is None and info is NOT_FOUND:
            await self._require_parent(api_path, cs3_path)
        await self._check_lock(api_path, info)
        await self.require_writable(api_path, cs3_path, info)
        # The version the saving editor last loaded (or our last write), else what the storage holds
        # now: a save is judged against what its editor had, so a change or delete by someone else
        # since then becomes a conflict copy instead of being overwritten or undone.
        base_etag = self._editor_bases.get(cs3_path) or (info.etag if info is not NOT_FOUND else None)
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        # No hashing here, on the loop: the spool hashes the bytes in its worker thread, and
        # _present_ours takes the sha256 from the pending entry.
        engine = await self.get_engine()
        await self._seed_presented(cs3_path, info if info is not NOT_FOUND else None)
        with http_error(api_path):
            entry_id = await engine.submit_save(cs3_path, data, base_etag=base_etag, base_fileid=base_fileid)
        # The cached Stat stays: until the save lands, reads answer from the journal's overlay on top of
        # it (no RPC for the GET JupyterLab sends after every save), and the landing forgets it
        # (_entry_finished), so nothing stale outlives the pending entry.
        self.remote.content_cache.drop(cs3_path)
        self._present_ours(cs3_path, sha256, entry_id)
        if await self._apply(entry_id, api_path):
            self.invalidate(cs3_path)
            result = await self._entry_result(engine, entry_id)
            if result is not None:
                self.presented.landed(cs3_path, result[0])
                self._set_editor_base(cs3_path, result[0])
        if self.presented.has_dirty():
            self.remote.schedule_recording()  # a cache of presented times: written after the reply
        return len(data) if isinstance(data, bytes) else None

    def _present_ours(self, cs3_path: str, sha256: str | None, entry_id: int | None = None) -> None:
        """Present a write of ours at the time the journal acknowledged it: the engine records that
        same time as the presented mtime when it applies the write, so the answer survives restarts."""
        pending = self.pending_of(cs3_path)
        stamp = pending.mtime if pending is not None and pending.mtime is not None else now()
        self.presented.ours(
            cs3_path, stamp, sha256 or (pending.sha256 if pending else None), entry_id=entry_id
        )

    async def _settle_presented(self, cs3_path: str) -> None:
        """Before presenting a path whose write of ours has left the queue: did it land? If it was
        parked (a conflict...) the storage holds someone else's version, presented as a change."""
        entry_id = self.presented.unsettled(cs3_path)
        if entry_id is None or self.pending_of(cs3_path) is not None:
            return
        engine = self.runtime.local_engine()
        if engine is None:
            return
        try:
            entry = await engine.journal.outcome(entry_id)
        except Exception as exc:
            self.log.debug("cs3sync: outcome of entry %s unknown: %s", entry_id, exc)
            return
        if entry.state == "done" and entry.op == "save" and entry.result_etag:
            self.presented.landed(cs3_path, entry.result_etag)
        elif entry.state in ("conflict", "failed", "cancelled"):
            self.presented.lost(cs3_path)

    def _set_editor_base(self, cs3_path: str, etag: str | None) -> None:
        if len(self._editor_bases) > 100_000:
            self._editor_bases.clear()
        if etag:
            self._editor_bases[cs3_path] = etag

    def _forget_editor_bases(self, *cs3_paths: str) -> None:
        """Our own delete or rename: the next save at these paths creates, it changes no one's version."""
        self.remote.forget_known(*cs3_paths)
        for cs3_path in cs3_paths:
            prefix = cs3_path.rstrip("/") + "/"
            for key in [k for k in self._editor_bases if k == cs3_path or k.startswith(prefix)]:
                del self._editor_bases[key]

    async def _entry_result(self, engine: SyncEngine, entry_id: int) -> tuple[str, datetime] | None:
        """(etag, storage mtime) of our applied write, from the journal (no RPC)."""
        try:
            entry = await engine.journal.outcome(entry_id)
        except Exception:
            return None
        etag, mtime = entry.result_etag, entry.result_mtime
        if not etag or not mtime:
            return None
        return etag, datetime_from_ns(int(mtime * 1_000_000_000))

    async def _lookup_for_write(self, api_path: str, cs3_path: str) -> tuple[Pending | None, Any]:
        """Like _lookup, but a missing path is fine and an outage means "write blind" (journaled)."""
        pending = self.pending_of(cs3_path)
        try:
            info = await self.remote.stat(cs3_path)  # offline: what we last knew of it (the write's base)
        except Exception as exc:
            if is_signed_out(exc):
                # Signed out (token refused): the save is journaled like an offline one and waits in
                # the engine's auth pause; what we last knew of the file is its base.
                self.remote.mark_signed_out()
                info = await self.remote.known(cs3_path) or NOT_FOUND
            elif not is_unreachable(exc):
                raise to_http_error(exc, api_path) from exc
            else:
                info = NOT_FOUND  # offline and never seen: a new file (the engine checks on apply)
        if pending is not None and pending.deleted:
            pending = None
        return pending, info

    async def _save_chunk(
        self, model: dict[str, Any], api_path: str, cs3_path: str, chunk: int
    ) -> dict[str, Any]:
        """JupyterLab's chunked upload (1, 2, ..., -1): staged in the spool, one journaled save at -1."""
        if chunk == 1:
            self.run_pre_save_hooks(model=model, path=api_path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if model["type"] != "file":
            raise HTTPError(400, f'File type "{model["type"]}" is not supported for large file transfer')
        if "content" not in model:
            raise HTTPError(400, "No file content provided")
        if chunk != 1 and model.get("format") not in ("text", "base64"):
            raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")
        data = _decode_file_content(model["content"], model.get("format"), api_path)
        engine = await self.get_engine()
        if chunk == 1:
            pending, info = await self._lookup_for_write(api_path, cs3_path)
            if pending is None and info is NOT_FOUND:
                await self._require_parent(api_path, cs3_path)
            await self._check_lock(api_path, info)
            await self.require_writable(api_path, cs3_path, info)
        if chunk != 1 and not await self._staging_in_progress(engine, cs3_path):
            # A later chunk with no upload in progress (not something JupyterLab sends): append to the
            # file as jupyter_server's LargeFileManager does, as one journaled save.
            pending, info = await self._lookup_for_write(api_path, cs3_path)
            current = (
                b""
                if info is NOT_FOUND and pending is None
                else await self.read_content(api_path, cs3_path, pending, info)
            )
            await self.save_bytes(api_path, cs3_path, current + data)
            result = await self.get(api_path, content=False)
            self.emit(data={"action": "save", "path": api_path})
            return result
        with http_error(api_path):
            await engine.stage_chunk(cs3_path, chunk, data, CLIENT.get())
        if chunk == -1:
            pending, info = await self._lookup_for_write(api_path, cs3_path)
            await self._check_lock(api_path, info)
            base_etag = info.etag if info is not NOT_FOUND else None
            with http_error(api_path):
                entry_id = await engine.commit_staged(cs3_path, base_etag, client=CLIENT.get())
            self.invalidate(cs3_path)
            self._present_ours(cs3_path, None)
            await self._apply(entry_id, api_path)
            self.invalidate(cs3_path)
            result = await self.get(api_path, content=False)
            self.run_post_save_hooks(model=result, os_path=self.local_path(api_path) or cs3_path)
        else:
            result = await self._staging_model(api_path, cs3_path, engine)
        self.emit(data={"action": "save", "path": api_path})
        return result

    async def _staging_in_progress(self, engine: SyncEngine, cs3_path: str) -> bool:
        with http_error(cs3_path):
            return await engine.journal.staging(cs3_path, CLIENT.get()) is not None

    async def _staging_model(self, api_path: str, cs3_path: str, engine: Any) -> dict[str, Any]:
        """The model during an upload: the file as it is on the storage (never half-written)."""
        try:
            return await self.get(api_path, content=False)
        except HTTPError as e:
            if e.status_code != 404:
                raise
        return base_model(api_path, type="file", last_modified=now(), size=0)

    async def update(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        """A rename (PATCH): the new path must be a string (jupyter_server would fail on anything else)."""
        if not isinstance(model, dict) or not isinstance(model.get("path", path), str):
            raise HTTPError(400, "The new path must be a string")
        return await super().update(model, path)

    async def delete_file(self, path: str) -> None:
        await self._refuse_virtual(path)
        api_path, cs3_path = await self.locate(path)
        if not api_path:
            raise HTTPError(400, "Can't delete root")
        if not self.allow_hidden and P.is_hidden_api_path(api_path):
            raise HTTPError(400, f"Cannot delete file or directory {api_path!r}")
        pending, info = await self.lookup(api_path, cs3_path)
        await self._check_lock(api_path, info)
        await self.require_writable(api_path, cs3_path, info)
        base_etag = info.etag if info is not NOT_FOUND else None
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        engine = await self.get_engine()
        with http_error(api_path):
            entry_id = await engine.submit_delete(
                cs3_path,
                base_etag=base_etag,
                base_fileid=base_fileid,
                kind=_kind(pending, info),
                base_observed_at=self.remote.observed_at(cs3_path, info),
            )
        self.invalidate(cs3_path)
        self.presented.forget(cs3_path)
        self._forget_editor_bases(cs3_path)
        await self._apply(entry_id, api_path)
        self.invalidate(cs3_path)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        await self._refuse_virtual(old_path)
        await self._refuse_virtual(new_path)
        old_api, old_cs3 = await self.locate(old_path)
        new_api, new_cs3 = await self.locate(new_path)
        if old_api == new_api:
            return
        if not old_api or not new_api:
            raise HTTPError(400, "Can't rename the root")
        pending, info = await self.lookup(old_api, old_cs3)
        if await self._target_exists(new_api, new_cs3):
            raise HTTPError(409, f"File already exists: {new_api}")
        if new_api.startswith(old_api + "/"):
            raise HTTPError(400, "Can't move a folder into itself")
        path_map = await self.get_path_map()
        if path_map.space_of(old_api) != path_map.space_of(new_api):
            raise HTTPError(
                400, f"Can't move {old_api} to another space ({new_api}): copy it, then delete it"
            )
        if P.api_parent(new_api) != P.api_parent(old_api):
            await self._require_parent(new_api, new_cs3)
        await self._check_lock(old_api, info)
        await self.require_writable(old_api, old_cs3, info)
        if P.api_parent(new_api) != P.api_parent(old_api):  # (its folder was just looked at: no RPC)
            await self.require_writable(new_api, new_cs3, NOT_FOUND)
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        engine = await self.get_engine()
        with http_error(old_api):
            entry_id = await engine.submit_rename(
                old_cs3,
                new_cs3,
                base_fileid=base_fileid,
                kind=_kind(pending, info),
                base_observed_at=self.remote.observed_at(old_cs3, info),
            )
        self.invalidate(old_cs3, new_cs3)
        self.presented.move(old_cs3, new_cs3)
        self._forget_editor_bases(old_cs3, new_cs3)
        self.locks.moved(old_api, new_api)
        applied = await self._apply(entry_id, new_api)
        self.invalidate(old_cs3, new_cs3)
        if applied and pending is None and info is not NOT_FOUND and not isinstance(info, KnownInfo):
            # A Move keeps the resource (file id, etag, mtime): the model of the new path needs no Stat.
            with contextlib.suppress(TypeError, ValueError):
                moved = dataclasses.replace(info, path=new_cs3, name=posixpath.basename(new_cs3))
                self.remote.moved(new_cs3, moved)

    async def _target_exists(self, api_path: str, cs3_path: str) -> bool:
        """Whether a rename's target is taken. Offline, a name the folder's last listing did not hold
        (and that nothing pending created) is free; the engine checks again when it applies the rename."""
        try:
            return bool(await self.exists(api_path))
        except HTTPError as e:
            if (
                e.status_code == 503
                and self.pending_of(cs3_path) is None
                and self.remote.listed_without(cs3_path)
            ):
                return False
            raise

    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy a file, or a folder recursively (up to max_copy_folder_size_mb), through the journal.

        Naming follows jupyter_server: into a folder as ``<name>-Copy<n><ext>``, else to the given path.
        """
        from_api, from_cs3 = await self.locate(from_path)
        pending, info = await self.lookup(from_api, from_cs3)
        is_dir = pending.kind == "directory" if pending is not None else info.type == "directory"
        to_api = await self._copy_target(from_api, to_path)
        await self._refuse_virtual(to_api)
        to_api, to_cs3 = await self.locate(to_api)
        await self.require_writable(to_api, to_cs3, NOT_FOUND)
        if await self.exists(to_api):
            raise HTTPError(409, f"File already exists: {to_api}")
        if is_dir:
            await self._copy_tree(from_api, from_cs3, to_api, to_cs3)
        else:
            await self._copy_one(from_api, from_cs3, to_api, to_cs3)
        model = await self.get(to_api, content=False)
        self.emit(data={"action": "copy", "path": to_api, "source_path": from_api})
        return model

    async def _copy_target(self, from_api: str, to_path: str | None) -> str:
        from jupyter_server.services.contents.manager import copy_pat

        from_dir, from_name = P.api_parent(from_api), P.api_name(from_api)
        target = P.normalize_api_path(to_path) if to_path is not None else from_dir
        if await self.dir_exists(target):
            name = copy_pat.sub(".", from_name)
            return P.api_join(target, await self.increment_filename(name, target, insert="-Copy"))
        if to_path is None:
            raise HTTPError(404, f"No such directory: {target}")
        parent = P.api_parent(target)
        if parent and not await self.dir_exists(parent):
            raise HTTPError(404, f"No such parent directory: {parent} to copy file in")
        return target

    async def _copy_one(self, from_api: str, from_cs3: str, to_api: str, to_cs3: str) -> None:
        engine = await self.get_engine()
        with http_error(to_api):
            entry_id = await engine.submit_copy(from_cs3, to_cs3)
        self.invalidate(to_cs3)
        self._present_ours(to_cs3, None)
        await self._apply(entry_id, to_api)
        self.invalidate(to_cs3)

    async def _copy_tree(self, from_api: str, from_cs3: str, to_api: str, to_cs3: str) -> None:
        limit = self.max_copy_folder_size_mb * 1024 * 1024
        plan: list[tuple[str, str, bool]] = []
        total = 0
        queue = [(from_api, from_cs3, to_api, to_cs3)]
        while queue:
            src_api, src_cs3, dst_api, dst_cs3 = queue.pop()
            plan.append((src_cs3, dst_cs3, True))
            listing = await self.get(src_api, content=True)
            for child in listing["content"]:
                child_src_cs3 = posixpath.join(src_cs3, child["name"])
                child_dst_api = P.api_join(dst_api, child["name"])
                child_dst_cs3 = posixpath.join(dst_cs3, child["name"])
                if child["type"] == "directory":
                    queue.append((child["path"], child_src_cs3, child_dst_api, child_dst_cs3))
                else:
                    total += child["size"] or 0
                    plan.append((child_src_cs3, child_dst_cs3, False))
            if total > limit:
                raise HTTPError(
                    400, f"Can't copy folders larger than {self.max_copy_folder_size_mb} MB: {from_api}"
                )
        engine = await self.get_engine()
        last = None
        for src, dst, is_dir in plan:
            with http_error(to_api):
                last = await (engine.submit_mkdir(dst) if is_dir else engine.submit_copy(src, dst))
            self.invalidate(dst)
        if last is not None:
            await self._apply(last, to_api)
        self.invalidate(to_cs3)

    # ------------------------------------------------------------------ resource ids (RTC's file ids)
    def seen_file_id(self, api_path: str) -> FileId | None:
        """The CS3 resource id this process last saw at a Jupyter path, without asking the storage
        (jupyter_server_fileid asks synchronously, on the event loop); None if it saw none."""
        if self.path_map is None:
            return None
        try:
            cs3_path = self.path_map.to_cs3(api_path)
        except HTTPError:
            return None
        seen = self.remote.cached_or_known(cs3_path)
        return FileId.parse(str(seen.file_id)) if seen is not NOT_FOUND and seen.file_id else None

    async def file_id_of(self, api_path: str) -> FileId | None:
        """The CS3 resource id at a Jupyter path now (one Stat, or the stat cache); None when nothing
        is there on the storage yet (a file whose creation is still pending) or it cannot be asked."""
        try:
            _, cs3_path = await self.locate(api_path)
            info = await self.remote.stat(cs3_path)
        except Exception as exc:  # unreachable, refused: asked again later
            self.log.debug("cs3sync: resource id of %s unknown: %s", api_path, exc)
            return None
        if info is NOT_FOUND or not info.file_id:
            return None
        return FileId.parse(str(info.file_id))

    async def api_path_of(self, file_id: FileId) -> str | None:
        """Where a resource is now, as a Jupyter path (a Stat by resource id): it follows a rename made
        by anyone. None when it is gone, outside what this server shows, or the storage cannot say."""
        client = await self.get_client()
        path_map = await self.get_path_map()
        try:
            info = await client.stat(file_id)
        except Exception as exc:
            self.log.debug("cs3sync: no path for resource %s: %s", file_id, exc)
            return None
        return path_map.to_api(info.path)

    def has_pending(self, api_path: str) -> bool:
        """Whether a journaled change of ours at this Jupyter path has not reached the storage yet."""
        if self.path_map is None:
            return False
        try:
            return self.pending_of(self.path_map.to_cs3(api_path)) is not None
        except HTTPError:
            return False

    # ------------------------------------------------------------------ kernels
    def local_path(self, api_path: str) -> str | None:
        """The file's path on the local mount of root_path, when one is configured."""
        if not self.cs3.local_mount:
            return None
        return str(Path(self.cs3.local_mount).expanduser() / api_path)

    def get_kernel_path(self, path: str, model: Any = None) -> str:
        from contents.kernels import kernel_path

        return kernel_path(self, path)

    def info_string(self) -> str:
        root = self.path_map.root if self.path_map else "(the user's home)"
        return f"Serving CS3 contents from {self.cs3.host or '(no host configured)'}:{root}"


def _kind(pending: Pending | None, info: Any) -> str:
    if pending is not None:
        return pending.kind
    return "directory" if info is not NOT_FOUND and info.type == "directory" else "file"


#: Highest chunk number of a chunked upload (JupyterLab's 1 MiB chunks: a 100 GiB file).
MAX_CHUNK = 100_000


def _chunk_number(value: Any) -> int:
    """JupyterLab numbers chunks 1, 2, ... and -1 for the last; anything else is a bad request."""
    if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or 1 <= value <= MAX_CHUNK):
        raise HTTPError(400, f"'chunk' must be -1 or a whole number from 1 to {MAX_CHUNK}")
    return value


def _decode_file_content(content: Any, format: str | None, api_path: str) -> bytes:
    if format == "text":
        if not isinstance(content, str):
            raise HTTPError(400, f"Text content of {api_path} must be a string")
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(400, f"Text content of {api_path} is not valid Unicode") from None
    if format == "base64":
        if not isinstance(content, str):
            raise HTTPError(400, f"Base64 content of {api_path} must be a string")
        try:  # strict: "!!!!" must not become an empty file (line breaks are allowed)
            return base64.b64decode("".join(content.split()).encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise HTTPError(400, f"Content of {api_path} is not valid base64") from None
    raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")


def _to_pending(engine: SyncEngine, ov: Overlay) -> Pending:
    """The engine's `Overlay` of a path as the contents side's `Pending` view (datetimes, blob paths)."""
    return Pending(
        kind="directory" if ov.kind == "directory" else "file",
        deleted=ov.deleted,
        size=ov.size,
        mtime=datetime_from_seconds(ov.mtime) if ov.mtime is not None else None,
        sha256=ov.blob,
        blob_path=engine.blob_path(ov.blob) if ov.blob else None,
        source=ov.renamed_from or ov.copied_from,
    )
