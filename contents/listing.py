"""`ModelBuilder`: Jupyter contents models (without file content) of files and folders.

A model combines what the storage holds (`RemoteView`: a Stat, a listing, or what we last knew while it
is unreachable), what the journal holds (`PendingView`: read-your-writes), the time and hash presented
for a file (`Presenter`) and whether the user may write it (the permission set and someone else's lock).
A folder listing is one ListContainer; offline it is what the journal and this process knew, said to
be partial in the log.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tornado.web import HTTPError

from contents import paths as P
from contents.models import (
    NOT_FOUND,
    Info,
    KnownInfo,
    Model,
    Pending,
    Stat,
    base_model,
    content_type,
    datetime_from_ns,
    is_foreign_lock,
    now,
)
from contents.remote import child_name

if TYPE_CHECKING:
    import logging

    from contents.locks import LockManager
    from contents.pending import PendingView
    from contents.presented import Presenter
    from contents.remote import RemoteView
    from cs3sync.cs3.types import ResourceInfo

#: A listing of LISTING_BATCHED entries or more builds its child models in batches of LISTING_BATCH,
#: yielding to the event loop between them.
LISTING_BATCHED = 200
LISTING_BATCH = 100

#: (our lock id prefix, our lock ids): read once per listing rather than per entry.
LockContext = tuple[str, frozenset[str]]
#: A file's (hash, hash algorithm) as presented; (None, None) when unknown (a folder).
Hash = tuple[str | None, str | None]


class ModelBuilder:
    """Models of paths from their pending and remote state; folder listings with their children."""

    def __init__(
        self,
        remote: RemoteView,
        pending: PendingView,
        presenter: Presenter,
        locks: LockManager,
        listed: Callable[[str], bool],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.remote = remote
        self.pending = pending
        self.presenter = presenter
        self.locks = locks
        self.listed = listed  # the manager's hide rules (hide_globs, allow_hidden)
        self.log = log

    def lock_context(self) -> LockContext:
        return self.locks.prefix, self.locks.our_lock_ids()

    def writable(self, info: Stat, locks: LockContext | None = None) -> bool:
        """The storage lets us write it (its permission set) and nobody else holds a lock on it."""
        if info is NOT_FOUND:
            return True
        if not info.writable:
            return False
        if info.lock is None:
            return True
        prefix, ours = locks if locks is not None else self.lock_context()
        return not is_foreign_lock(info.lock, prefix, ours)

    def model(
        self,
        api_path: str,
        cs3_path: str,
        pending: Pending | None,
        info: Stat,
        type_: str,
        locks: LockContext | None = None,
    ) -> tuple[Model, Hash]:
        """The model of a path (no content) and the hash presented for it."""
        self.presenter.take_merge(cs3_path)
        if pending is not None and pending.kind != "directory" and pending.mtime is not None:
            presented = self.presenter.of_pending(cs3_path, pending, pending.mtime)
            model = base_model(
                api_path,
                type=type_,
                last_modified=presented.last_modified,
                writable=self.writable(info, locks),
                size=pending.size,
            )
            return model, (presented.hash, presented.hash_algorithm)
        if info is NOT_FOUND:  # pending mkdir
            stamp = pending.mtime if pending and pending.mtime else now()
            return base_model(api_path, type=type_, last_modified=stamp), (None, None)
        if info.type == "directory":
            storage_time = datetime_from_ns(info.mtime_ns)
            writable = self.writable(info, locks)
            return base_model(api_path, type=type_, last_modified=storage_time, writable=writable), (
                None,
                None,
            )
        presented = self.presenter.of_stat(cs3_path, info)
        model = base_model(
            api_path,
            type=type_,
            last_modified=presented.last_modified,
            writable=self.writable(info, locks),
            size=info.size,
        )
        return model, (presented.hash, presented.hash_algorithm)

    def virtual_dir(self, api_path: str, content: bool, mounts: list[str]) -> Model:
        """A virtual folder (``Spaces``, ``Shared with me``): read-only, listing its mount names."""
        model = base_model(api_path, type="directory", last_modified=now(), writable=False)
        if content:
            stamp = model["last_modified"]
            model["content"] = [
                base_model(P.api_join(api_path, name), type="directory", last_modified=stamp, writable=False)
                for name in sorted(mounts)
            ]
            model["format"] = "json"
        return model

    async def folder(
        self,
        api_path: str,
        cs3_path: str,
        info: Stat | None,
        content: bool,
        listing: list[ResourceInfo] | None = None,
        listed_at: float = 0.0,
    ) -> Model:
        """A folder's model; with ``content``, its children (``listing`` if the caller listed it)."""
        if (info is None or info is NOT_FOUND) and listing:
            # (one datetime, not 10,000: the newest child's time, as datetime_from_ns keeps the order)
            stamp = datetime_from_ns(max(child.mtime_ns or 0 for child in listing))
        else:
            stamp = datetime_from_ns(info.mtime_ns) if info is not None and info is not NOT_FOUND else now()
        writable = self.writable(info) if info is not None and info is not NOT_FOUND else True
        model = base_model(api_path, type="directory", last_modified=stamp, writable=writable)
        if not content:
            return model
        children: dict[str, Model] = {}
        pending_children = self.pending.children(cs3_path)
        batched = False
        if listing is not None or info is not NOT_FOUND:
            infos: list[Info] | None = list(listing) if listing is not None else None
            observed = listed_at if listing is not None else time.time()
            if infos is None and not isinstance(info, KnownInfo) and not self.remote.storage_unreachable():
                listed = await self.remote.list_children(cs3_path, api_path, observed)
                infos = list(listed) if listed is not None else None
            known_rows = await self.presenter.seed_folder(cs3_path, rows_wanted=infos is None)
            if infos is None:  # unreachable: the listing we know
                self.remote.nudge_engine()  # answered without asking: let the engine check the storage
                infos = [KnownInfo.from_remote(row) for row in known_rows]
                memory = {k.path: k for k in self.remote.known_children(cs3_path)}
                infos = list({**{i.path: i for i in infos}, **memory}.values())
                if not infos and not pending_children and not api_path:
                    raise HTTPError(503, "Storage unreachable, no cached copy of the folder list")
                self.log.info(
                    "cs3sync: storage unreachable; listing %s from the journal (may be partial)",
                    api_path or "/",
                )
            await self.presenter.settle_folder(cs3_path)
            locks = self.lock_context()
            batched = len(infos) >= LISTING_BATCHED
            for index, child in enumerate(infos):
                if batched and index and index % LISTING_BATCH == 0:
                    await asyncio.sleep(0)  # let the loop run between batches of a long listing
                name = child_name(child)
                child_cs3 = posixpath.join(cs3_path, name)
                if not isinstance(child, KnownInfo):
                    self.remote.saw(child_cs3, child, observed)
                # (the remote version must not pass for our pending one)
                if name not in pending_children and self.listed(name):
                    children[name] = self._child(api_path, child_cs3, name, None, child, locks)
            self.remote.schedule_recording()
        locks = self.lock_context()
        for name, pending in pending_children.items():
            if pending.deleted:
                children.pop(name, None)
                continue
            if not self.listed(name):
                continue
            child_cs3 = posixpath.join(cs3_path, name)
            info_child = self.remote.cached_or_known(child_cs3)
            children[name] = self._child(api_path, child_cs3, name, pending, info_child, locks)
        model["content"] = [children[name] for name in sorted(children)]
        model["format"] = "json"
        if batched:
            await asyncio.sleep(0)  # jupyter_server encodes the reply in the step that follows: not with ours
        return model

    def _child(
        self,
        parent: str,
        cs3_path: str,
        name: str,
        pending: Pending | None,
        info: Stat,
        locks: LockContext,
    ) -> Model:
        api_path = P.api_join(parent, name)
        if pending is not None:
            is_dir = pending.kind == "directory"
        else:
            is_dir = info is not NOT_FOUND and info.type == "directory"
        model, _ = self.model(api_path, cs3_path, pending, info, content_type(api_path, is_dir, None), locks)
        return model
