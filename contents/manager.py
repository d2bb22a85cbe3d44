"""``CS3ContentsManager``: CS3 storage as the file system of Jupyter (docs/contents.md).

Reads go to CS3 through the client (one Stat per metadata call behind a short cache, one ListContainer per
listing), overlaid with the journal's pending entries, so every acknowledged write is visible at once.
Writes become durable journal entries through the `SyncEngine`; a write waits up to
``write_through_timeout`` to be applied and otherwise replies optimistically (the entry is durable, so the
2xx is honest).

This class keeps Jupyter's ContentsManager API and the order of each request's steps. Its collaborators
have one job each (the module map is in docs/contents.md): `Runtime` (client and engine lifecycle),
`Places` (paths, mounts), `PendingView` (pending entries), `Lookup` (what is at a path), `RemoteView`
(Stats, listings, bytes, their caches, offline answers, ``remote_state``), `Presenter` (presented times),
`ModelBuilder` (models, listings), `Writer` (the write path), `Notebooks` and formats.py (content in and
out), `ResourceIds` (RTC's file ids). `LockManager` and `CS3Checkpoints` use the manager's public methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import re
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError
from traitlets import Dict, Int, Unicode, default, observe

from contents import paths as P
from contents.checkpoints import CS3Checkpoints
from contents.config import CS3Sync
from contents.formats import chunk_number, decode_file_content, fill_file
from contents.listing import ModelBuilder
from contents.lookup import Lookup
from contents.models import (
    NOT_FOUND,
    Model,
    Pending,
    Stat,
    base_model,
    content_type,
    now,
)
from contents.mounts import SHARES_FOLDER, SPACES_FOLDER
from contents.notebooks import Notebooks
from contents.pending import PendingView
from contents.places import Places
from contents.presented import PresentedTimes, Presenter
from contents.remote import Listing, RemoteView
from contents.resources import ResourceIds
from contents.runtime import Runtime
from contents.writes import Chunk, Writer
from cs3sync.journal.types import Op

if TYPE_CHECKING:
    from cs3sync.cs3 import CS3Client, CS3Config
    from cs3sync.cs3.downloads import DownloadStream
    from cs3sync.cs3.types import ReceivedShare, ResourceInfo, Space
    from cs3sync.engine import SyncEngine
    from cs3sync.journal import Entry


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
    def _root_dir_changed(self, change: dict[str, object]) -> None:
        pass  # root_dir is a local notion; the CS3 root is CS3Sync.root_path

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cs3 = CS3Sync(parent=self)
        self.runtime = Runtime(self._client_config, self._engine_kwargs, self._entry_finished, self.log)
        self.pending = PendingView(self.runtime)
        times = PresentedTimes()
        self.remote = RemoteView(self.cs3, self.runtime, times, self.log)
        self.presenter = Presenter(times, self.remote, self.runtime, self.pending.of, self.log)
        from contents.locks import LockManager

        self.locks = LockManager(self)
        self.places = Places(self.cs3.root_path, self.runtime, self.locks.load_instance, self.log)
        self.lookups = Lookup(self.pending, self.remote)
        self.writes = Writer(
            self.cs3,
            self.runtime,
            self.remote,
            self.pending,
            self.lookups,
            self.presenter,
            self.locks,
            self.dir_exists,
        )
        self.models = ModelBuilder(
            self.remote, self.pending, self.presenter, self.locks, self._listed, self.log
        )
        self.resource_ids = ResourceIds(self.places, self.runtime, self.remote, self.pending, self.log)
        self._hide_globs_re: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)
        self.notebooks = Notebooks(lambda: self.notary, self.log)

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

    @property
    def path_map(self) -> P.PathMapper | None:
        """Jupyter paths <-> CS3 paths (`Places`); None until the user's home is known."""
        return self.places.path_map

    async def get_path_map(self) -> P.PathMapper:
        return await self.places.get_path_map()

    # ------------------------------------------------------------------ virtual mounts
    async def refresh_mounts(
        self,
        spaces_folder: str = SPACES_FOLDER,
        shares_folder: str = SHARES_FOLDER,
        *,
        spaces: list[Space] | None = None,
        incoming: list[ReceivedShare] | None = None,
    ) -> None:
        """Mount the spaces and accepted received shares outside the root under their stable names."""
        await self.places.refresh(spaces_folder, shares_folder, spaces=spaces, incoming=incoming)

    async def get_engine(self) -> SyncEngine:
        """The one `SyncEngine` of this server, started on the server's loop at first use (`Runtime`)."""
        return await self.runtime.get_engine()

    def _entry_finished(self, entry: Entry, landed: ResourceInfo | None = None) -> None:
        """The engine ended a run of one of our writes, maybe with no request waiting for it (an
        optimistic answer, an entry from before a restart): what we cached of its paths is stale.
        A save that landed comes with what the storage holds now (the engine's own last Stat): that is
        the path's cached Stat, so the GET JupyterLab sends after every save asks the storage nothing."""
        self.invalidate(*[p for p in (entry.path, entry.src_path) if p])
        landed_save = entry.op == Op.SAVE and landed is not None and landed.type != "directory"
        if landed is not None and landed_save:
            self.remote.landed(entry.path, landed)
        self.presenter.finished(entry, landed.etag if landed is not None and landed_save else None)

    def _engine_kwargs(self) -> dict[str, Any]:
        """SyncEngine's arguments from the traits; ``engine_options`` (configuration: any of its
        keyword arguments) adds or overrides any of them."""
        wanted: dict[str, Any] = {
            "journal_dir": self.cs3.journal_path(),
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
        self.notebooks.close()
        with contextlib.suppress(Exception):
            await self.flush_observations()
        await self.runtime.aclose()

    # ------------------------------------------------------------------ paths
    async def locate(self, api_path: str) -> tuple[str, str]:
        """(normalised API path, CS3 path) of a Jupyter path (checkpoints, locks and /files use it too)."""
        api_path = P.normalize_api_path(api_path)
        await self.runtime.wait_started()  # the engine is starting: wait, so reads see pending entries
        return await self.places.locate(api_path)

    # ------------------------------------------------------------------ stat (+ cache) and overlay
    def pending_of(self, cs3_path: str) -> Pending | None:
        """The journal's pending state of a path (`PendingView`), or None."""
        return self.pending.of(cs3_path)

    def invalidate(self, *cs3_paths: str) -> None:
        """Forget cached stats and bytes of these paths, their descendants and parents (after our writes)."""
        self.remote.invalidate(*cs3_paths)

    async def flush_observations(self) -> None:
        """Write what reads saw (and presented times that need it) to the journal (`RemoteView`)."""
        await self.remote.flush_observations()

    async def lookup(self, api_path: str, cs3_path: str) -> tuple[Pending | None, Stat]:
        """(pending state, remote info or NOT_FOUND) for a read; 404 when neither exists, 503 for an
        outage with nothing known (`Lookup.read`)."""
        return await self.lookups.read(api_path, cs3_path)

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
        return _is_dir(info)

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
        return not _is_dir(info)

    async def is_hidden(self, path: str) -> bool:
        return P.is_hidden_api_path(P.normalize_api_path(path))

    # ------------------------------------------------------------------ models
    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> Model:
        if content:
            return await self._get(path, content, type, format, require_hash)
        # A GET without content is answered from our caches in a few ms (JupyterLab asks right after
        # each save): the engine's workers hold back their next step meanwhile, as for a save, else
        # the GET waits on the loop behind the engine landing that save (cs3sync.engine.priority).
        # Not a GET with content: a download may take long and needs no priority over the engine.
        with self.writes.requests_first():
            return await self._get(path, content, type, format, require_hash)

    async def _get(
        self, path: str, content: bool, type: str | None, format: str | None, require_hash: bool
    ) -> Model:
        api_path, cs3_path = await self.locate(path)
        if self.path_map is not None and self.path_map.is_virtual(api_path):
            return self.models.virtual_dir(api_path, content, list(self.path_map.mounts.get(api_path, {})))
        if not api_path:
            model = await self._folder(api_path, cs3_path, None, content, type)
        elif (
            content
            and type in (None, "directory")
            and not api_path.endswith(".ipynb")
            and (listed := await self._try_list(cs3_path)) is not None
        ):
            # One ListContainer answers a folder listing; a file or a pending path falls through.
            model = await self._folder(api_path, cs3_path, listed.info, content, type, listed)
        else:
            pending, info = await self.lookup(api_path, cs3_path)
            if pending.kind == "directory" if pending is not None else _is_dir(info):
                model = await self._folder(api_path, cs3_path, info, content, type)
            else:
                model = await self._file(
                    api_path, cs3_path, pending, info, content, type, format, require_hash
                )
        if self.presenter.times.has_dirty():
            self.remote.schedule_recording()
        self.emit(data={"action": "get", "path": api_path})
        return model

    async def _folder(
        self,
        api_path: str,
        cs3_path: str,
        info: Stat | None,
        content: bool,
        type: str | None,
        listed: Listing | None = None,
    ) -> Model:
        if type not in (None, "directory"):
            raise HTTPError(400, f"{api_path} is a directory, not a {type}", reason="bad type")
        if listed is None:
            return await self.models.folder(api_path, cs3_path, info, content)
        return await self.models.folder(
            api_path, cs3_path, info, content, listed.children, listed.observed_at
        )

    async def _file(
        self,
        api_path: str,
        cs3_path: str,
        pending: Pending | None,
        info: Stat,
        content: bool,
        type: str | None,
        format: str | None,
        require_hash: bool,
    ) -> Model:
        if type == "directory":
            raise HTTPError(400, f"{api_path} is not a directory", reason="bad type")
        kind = content_type(api_path, False, type)
        await self.presenter.seed(cs3_path, info)
        await self.presenter.settle(cs3_path)
        model, (hash_value, hash_algorithm) = self.models.model(api_path, cs3_path, pending, info, kind)
        data: bytes | None = None
        if content or (require_hash and hash_value is None):
            data = await self.read_content(api_path, cs3_path, pending, info)
        if content and pending is None and info is not NOT_FOUND:
            self.writes.loaded(cs3_path, info.etag)  # what an editor loading this now has
        if content and data is not None:
            if kind == "notebook":
                await self._fill_notebook(model, data, api_path)
            else:
                fill_file(model, data, format, api_path)
        if require_hash:
            if hash_value is None and data is not None:
                hash_value, hash_algorithm = hashlib.sha256(data).hexdigest(), "sha256"
            model["hash"], model["hash_algorithm"] = hash_value, hash_algorithm
        return model

    async def _try_list(self, cs3_path: str) -> Listing | None:
        """A folder's listing from one ListContainer; None when that is not the way to answer (a pending
        path, a file, or any error: the normal path then reports it)."""
        if self.pending_of(cs3_path) is not None:
            return None
        return await self.remote.list_folder(cs3_path)

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
        return await self.remote.read(api_path, cs3_path, pending, info)

    def open_download(self, cs3_path: str, info: Stat | None) -> AbstractAsyncContextManager[DownloadStream]:
        """A download stream of a file we have just statted (no second Stat): `RemoteView.open_download`."""
        return self.remote.open_download(cs3_path, info)

    async def trust_notebook(self, path: str) -> None:
        """Explicitly trust a notebook (jupyter_server's ``trust_notebook``, with the signing and the
        signature store in the notebook worker thread, where saves and reads use the store)."""
        model = await self.get(path)
        self.log.warning("Trusting notebook %s", path)
        await self.notebooks.trust(model["content"], model["path"])

    async def _fill_notebook(self, model: Model, data: bytes, api_path: str) -> None:
        model["content"], validation_error = await self.notebooks.read(data, api_path)
        model["format"] = "json"
        self.validate_notebook_model(model, validation_error)

    # ------------------------------------------------------------------ writes
    async def _refuse_virtual(self, path: str) -> None:
        """The virtual folders (``Spaces``, ``Shared with me``) and their mount points are read-only."""
        api_path = P.normalize_api_path(path)
        path_map = await self.get_path_map()
        if path_map.is_virtual(api_path) or path_map.is_virtual(P.api_parent(api_path)):
            raise HTTPError(403, f"Read-only folder: {P.api_parent(api_path) or api_path}")

    async def save(self, model: Model, path: str = "") -> Model:
        await self._refuse_virtual(path)
        api_path, cs3_path = await self.locate(path)
        chunk = model.get("chunk")
        if chunk is not None:
            return await self._save_chunk(model, api_path, cs3_path, chunk_number(chunk))
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
            with self.writes.requests_first():
                # The Stat of the target runs while the content is serialised (and signed).
                lookup = asyncio.ensure_future(self.lookups.write(api_path, cs3_path))
                try:
                    data, validation_error, signing = await self._serialize(model, api_path)
                except BaseException:
                    lookup.cancel()
                    with contextlib.suppress(BaseException):
                        await lookup
                    raise
                try:
                    size = await self.writes.save_bytes(api_path, cs3_path, data, lookup=lookup)
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
            last_modified = self.presenter.last_modified(cs3_path)
            assert last_modified is not None, "save_bytes presents the write"
            result = base_model(api_path, type=model["type"], last_modified=last_modified, size=size)
        if validation_message:
            result["message"] = validation_message
        self.run_post_save_hooks(model=result, os_path=self.local_path(api_path) or cs3_path)
        self.emit(data={"action": "save", "path": api_path})
        return result

    async def _serialize(
        self, model: Model, api_path: str
    ) -> tuple[bytes, dict[str, Any], asyncio.Future[None] | None]:
        """(bytes, validation error, the signature's recording to await) of a model's content."""
        if model["type"] == "notebook":
            return await self.notebooks.write(model["content"], api_path)
        return decode_file_content(model.get("content"), model.get("format"), api_path), {}, None

    async def _save_directory(self, api_path: str, cs3_path: str) -> None:
        if not self.allow_hidden and P.is_hidden_api_path(api_path):
            raise HTTPError(400, f"Cannot create hidden directory {api_path!r}")
        await self.writes.save_directory(api_path, cs3_path)

    async def require_writable(self, api_path: str, cs3_path: str, info: Stat | None) -> None:
        """403 before journaling a change the storage says we may not make (`Writer.require_writable`)."""
        await self.writes.require_writable(api_path, cs3_path, info)

    async def save_bytes(
        self, api_path: str, cs3_path: str, data: bytes | Path, sha256: str | None = None
    ) -> int | None:
        """Journal a save of these bytes and wait for it (`Writer.save_bytes`)."""
        return await self.writes.save_bytes(api_path, cs3_path, data, sha256)

    async def _save_chunk(self, model: Model, api_path: str, cs3_path: str, chunk: int) -> Model:
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
        with self.writes.requests_first():  # as a save: the engine's workers hold back meanwhile
            data = decode_file_content(model["content"], model.get("format"), api_path)
            done = await self.writes.chunk(api_path, cs3_path, chunk, data)
        if done is Chunk.STAGED:
            result = await self._staging_model(api_path)
        else:
            result = await self.get(api_path, content=False)
        if done is Chunk.COMMITTED:
            self.run_post_save_hooks(model=result, os_path=self.local_path(api_path) or cs3_path)
        self.emit(data={"action": "save", "path": api_path})
        return result

    async def _staging_model(self, api_path: str) -> Model:
        """The model during an upload: the file as it is on the storage (never half-written)."""
        try:
            return await self.get(api_path, content=False)
        except HTTPError as e:
            if e.status_code != 404:
                raise
        return base_model(api_path, type="file", last_modified=now(), size=0)

    async def update(self, model: Model, path: str) -> Model:
        """A rename (PATCH): the new path must be a string (jupyter_server would fail on anything else)."""
        if not isinstance(model, dict) or not isinstance(model.get("path", path), str):
            raise HTTPError(400, "The new path must be a string")
        # (super() hides that the method is jupyter_server's: untyped_calls_exclude cannot see it)
        renamed: Model = await super().update(model, path)  # type: ignore[no-untyped-call]
        return renamed

    async def delete_file(self, path: str) -> None:
        await self._refuse_virtual(path)
        api_path, cs3_path = await self.locate(path)
        if not api_path:
            raise HTTPError(400, "Can't delete root")
        if not self.allow_hidden and P.is_hidden_api_path(api_path):
            raise HTTPError(400, f"Cannot delete file or directory {api_path!r}")
        pending, info = await self.lookup(api_path, cs3_path)
        await self.writes.delete(api_path, cs3_path, pending, info)

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
        await self.writes.rename((old_api, old_cs3), (new_api, new_cs3), pending, info)

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

    async def copy(self, from_path: str, to_path: str | None = None) -> Model:
        """Copy a file, or a folder recursively (up to max_copy_folder_size_mb), through the journal.

        Naming follows jupyter_server: into a folder as ``<name>-Copy<n><ext>``, else to the given path.
        """
        from_api, from_cs3 = await self.locate(from_path)
        pending, info = await self.lookup(from_api, from_cs3)
        is_dir = pending.kind == "directory" if pending is not None else _is_dir(info)
        to_api = await self._copy_target(from_api, to_path)
        await self._refuse_virtual(to_api)
        to_api, to_cs3 = await self.locate(to_api)
        await self.require_writable(to_api, to_cs3, NOT_FOUND)
        if await self.exists(to_api):
            raise HTTPError(409, f"File already exists: {to_api}")
        if is_dir:
            await self.writes.copy_folder(
                (from_api, from_cs3), (to_api, to_cs3), self.max_copy_folder_size_mb, self._listing
            )
        else:
            await self.writes.copy_file(from_cs3, to_api, to_cs3)
        model = await self.get(to_api, content=False)
        self.emit(data={"action": "copy", "path": to_api, "source_path": from_api})
        return model

    async def _listing(self, api_path: str) -> Model:
        return await self.get(api_path, content=True)

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

    # ------------------------------------------------------------------ kernels
    def local_path(self, api_path: str) -> str | None:
        """The file's path on the local mount of root_path, when one is configured."""
        if not self.cs3.local_mount:
            return None
        return str(Path(self.cs3.local_mount).expanduser() / api_path)

    def get_kernel_path(self, path: str, model: Model | None = None) -> str:
        from jupyter_server.serverapp import ServerApp  # loaded already: the server asks this

        from contents.kernels import kernel_path

        server_root = self.parent.root_dir if isinstance(self.parent, ServerApp) else None
        return kernel_path(self.cs3.local_mount, server_root, path)

    def info_string(self) -> str:
        root = self.path_map.root if self.path_map else "(the user's home)"
        return f"Serving CS3 contents from {self.cs3.host or '(no host configured)'}:{root}"


def _is_dir(info: Stat) -> bool:
    return info is not NOT_FOUND and info.type == "directory"
