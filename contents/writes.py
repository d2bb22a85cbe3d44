"""`Writer`: the write path of the contents side, from a checked request to a journaled entry.

Every change (save, chunked upload, new folder, delete, rename, copy) is checked first against what we
know (someone else's lock: 423; the storage's permission set: 403; a missing parent folder: 404), then
submitted to the engine as a durable journal entry, then waited for up to ``write_through_timeout`` (0
while offline): applied in time, the reply describes the storage; otherwise the entry is durable and
the reply is optimistic (an honest 2xx), unless the storage keeps refusing it (507 quota, 423 lock).

A save is judged against the version its editor last loaded (the *editor base*), so that someone else's
change since then becomes a conflict copy instead of being overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tornado.web import HTTPError

from contents import paths as P
from contents.clients import CLIENT
from contents.errors import http_error, is_unreachable, to_http_error
from contents.models import NOT_FOUND, KnownInfo, Model, Pending, Stat, is_foreign_lock, lock_holder_name
from cs3sync.cs3.uploads import human_size

if TYPE_CHECKING:
    from contents.config import CS3Sync
    from contents.locks import LockManager
    from contents.lookup import Lookup
    from contents.pending import PendingView
    from contents.presented import Presenter
    from contents.remote import RemoteView
    from contents.runtime import Runtime
    from cs3sync.engine import SyncEngine

#: Editor bases kept in memory (a save without one is judged against what the storage holds).
EDITOR_BASES_MAX = 100_000


class Chunk(enum.Enum):
    """What a chunk of a chunked upload did."""

    STAGED = "staged"  # kept in the spool; the file on the storage is unchanged so far
    COMMITTED = "committed"  # the last chunk: the upload became one journaled save
    APPENDED = "appended"  # a later chunk without an upload in progress: appended as one save


@dataclass(frozen=True)
class CopyStep:
    """One entry of a folder copy's plan: make the folder ``dst``, or copy the file ``src`` to ``dst``."""

    src: str
    dst: str
    is_dir: bool


class Writer:
    """Checks, journals and waits for the changes the Jupyter side makes."""

    def __init__(
        self,
        settings: CS3Sync,
        runtime: Runtime,
        remote: RemoteView,
        pending: PendingView,
        lookups: Lookup,
        presenter: Presenter,
        locks: LockManager,
        dir_exists: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.remote = remote
        self.pending = pending
        self.lookups = lookups
        self.presenter = presenter
        self.locks = locks
        self.dir_exists = dir_exists  # the manager's (an API path: mounts and virtual folders count)
        # The etag of the version an editor last loaded from us (or our last landed write) per path:
        # the base of the next save there (JupyterLab does not send one).
        self._editor_bases: dict[str, str] = {}

    # ------------------------------------------------------------------ checks
    def check_lock(self, api_path: str, info: Stat | None) -> None:
        """423 when someone else holds a lock on the item."""
        if info is NOT_FOUND or info is None:
            return
        lock = info.lock
        if lock is not None and is_foreign_lock(lock, self.locks.prefix, self.locks.our_lock_ids()):
            raise HTTPError(423, f"{api_path} is locked by {lock_holder_name(lock)}")

    async def require_writable(self, api_path: str, cs3_path: str, info: Stat | None) -> None:
        """Refuse (403) before journaling a change the storage says we may not make: the permission set
        of the item (``writable``), or of its folder when the item does not exist yet (a share's role
        shows there). Unknown (unreachable, signed out): the engine finds out and parks the entry."""
        if info is not None and info is not NOT_FOUND and not isinstance(info, KnownInfo):
            if not info.writable:
                raise HTTPError(403, f"Permission denied: {api_path} is read-only for you")
            return
        parent_api = P.api_parent(api_path)
        try:
            parent = self.remote.known_folder(posixpath.dirname(cs3_path)) or await self.remote.stat(
                posixpath.dirname(cs3_path)
            )
        except Exception:
            return
        if parent is not NOT_FOUND and not isinstance(parent, KnownInfo) and not parent.writable:
            raise HTTPError(403, f"Permission denied: the folder {parent_api or '/'} is read-only for you")

    async def require_parent(self, api_path: str, cs3_path: str) -> None:
        """404 when the item's folder does not exist (unknown while writing blind: the engine creates
        missing folders when it applies the write)."""
        parent = P.api_parent(api_path)
        if parent and self.remote.known_folder(posixpath.dirname(cs3_path)) is not None:
            pending = self.pending.of(posixpath.dirname(cs3_path))
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

    # ------------------------------------------------------------------ waiting for the engine
    def requests_first(self) -> contextlib.AbstractContextManager[None]:
        """Around a save's work up to its reply: the engine's workers hold back meanwhile
        (`cs3sync.engine.priority`); nothing to do before the engine has started."""
        engine = self.runtime.local_engine()
        return engine.priority.request() if engine is not None else contextlib.nullcontext()

    async def apply(self, entry_id: int, api_path: str) -> bool:
        """Wait up to write_through_timeout (0 while offline) for an entry; True when applied."""
        engine = await self.runtime.get_engine()
        timeout = self.settings.write_through_timeout if self.remote.engine_online() else 0.0
        try:
            with engine.priority.waiting():  # the engine must not hold back for a request waiting on it
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
            quota = await (await self.runtime.get_client()).quota(posixpath.dirname(cs3_path))
        except Exception:
            return ""
        if not quota.total:
            return ""
        return f" ({human_size(quota.used)} of {human_size(quota.total)} used)"

    async def _holder_of(self, cs3_path: str) -> str:
        try:
            lock = await (await self.runtime.get_client()).get_lock(cs3_path)
        except Exception:
            lock = None
        return lock_holder_name(lock) if lock is not None else "another application"

    # ------------------------------------------------------------------ editor bases
    def loaded(self, cs3_path: str, etag: str | None) -> None:
        """An editor loaded (or we wrote) the version ``etag`` of a path: the base of its next save."""
        if len(self._editor_bases) > EDITOR_BASES_MAX:
            self._editor_bases.clear()
        if etag:
            self._editor_bases[cs3_path] = etag

    def _forget(self, *cs3_paths: str) -> None:
        """Our own delete or rename: the next save at these paths creates, it changes no one's version."""
        self.remote.forget_known(*cs3_paths)
        for cs3_path in cs3_paths:
            prefix = cs3_path.rstrip("/") + "/"
            for key in [k for k in self._editor_bases if k == cs3_path or k.startswith(prefix)]:
                del self._editor_bases[key]

    # ------------------------------------------------------------------ saves
    async def save_bytes(
        self,
        api_path: str,
        cs3_path: str,
        data: bytes | Path,
        sha256: str | None = None,
        lookup: asyncio.Future[tuple[Pending | None, Stat]] | None = None,
    ) -> int | None:
        """Journal a save of these bytes and wait for it (write-through, else optimistic). ``lookup``:
        the `Lookup.write` of the path if the caller started it already."""
        pending, info = await (lookup if lookup is not None else self.lookups.write(api_path, cs3_path))
        if info is not NOT_FOUND and info.type == "directory":
            raise HTTPError(400, f"{api_path} is a directory")
        if pending is None and info is NOT_FOUND:
            await self.require_parent(api_path, cs3_path)
        self.check_lock(api_path, info)
        await self.require_writable(api_path, cs3_path, info)
        # The version the saving editor last loaded (or our last write), else what the storage holds
        # now: a save is judged against what its editor had, so a change or delete by someone else
        # since then becomes a conflict copy instead of being overwritten or undone.
        base_etag = self._editor_bases.get(cs3_path) or (info.etag if info is not NOT_FOUND else None)
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        # No hashing here, on the loop: the spool hashes the bytes in its worker thread, and
        # Presenter.ours takes the sha256 from the pending entry.
        engine = await self.runtime.get_engine()
        await self.presenter.seed(cs3_path, info if info is not NOT_FOUND else None)
        # The storage said there is no file here (a Stat, not an outage): a create, which the engine
        # turns into a conflict copy if someone else makes the file before it is applied.
        create = info is NOT_FOUND and not self.remote.writing_blind()
        with http_error(api_path):
            entry_id = await engine.submit_save(
                cs3_path, data, base_etag=base_etag, base_fileid=base_fileid, create=create
            )
        # The cached Stat stays: until the save lands, reads answer from the journal's overlay on top of
        # it (no RPC for the GET JupyterLab sends after every save), and the landing forgets it
        # (the manager's entry listener), so nothing stale outlives the pending entry.
        self.remote.content_cache.drop(cs3_path)
        self.presenter.ours(cs3_path, sha256, entry_id)
        if await self.apply(entry_id, api_path):
            self.remote.invalidate(cs3_path)
            etag = await self._result_etag(engine, entry_id)
            if etag is not None:
                self.presenter.landed(cs3_path, etag)
                self.loaded(cs3_path, etag)
        if self.presenter.times.has_dirty():
            self.remote.schedule_recording()  # a cache of presented times: written after the reply
        return len(data) if isinstance(data, bytes) else None

    async def _result_etag(self, engine: SyncEngine, entry_id: int) -> str | None:
        """The etag our applied write got, from the journal (no RPC)."""
        try:
            entry = await engine.journal.outcome(entry_id)
        except Exception:
            return None
        if not entry.result_etag or not entry.result_mtime:
            return None
        return entry.result_etag

    async def save_directory(self, api_path: str, cs3_path: str) -> None:
        """Make a folder (nothing to do when it exists; 400 when a file has its name)."""
        pending = self.pending.of(cs3_path)
        if pending is not None and not pending.deleted:
            if pending.kind != "directory":
                raise HTTPError(400, f"Not a directory: {api_path}")
            return
        info: Stat
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
        await self.require_parent(api_path, cs3_path)
        await self.require_writable(api_path, cs3_path, NOT_FOUND)
        engine = await self.runtime.get_engine()
        with http_error(api_path):
            entry_id = await engine.submit_mkdir(cs3_path)
        self.remote.invalidate(cs3_path)
        await self.apply(entry_id, api_path)
        self.remote.invalidate(cs3_path)

    async def chunk(self, api_path: str, cs3_path: str, chunk: int, data: bytes) -> Chunk:
        """JupyterLab's chunked upload (1, 2, ..., -1): staged in the spool, one journaled save at -1."""
        engine = await self.runtime.get_engine()
        if chunk == 1:
            pending, info = await self.lookups.write(api_path, cs3_path)
            if pending is None and info is NOT_FOUND:
                await self.require_parent(api_path, cs3_path)
            self.check_lock(api_path, info)
            await self.require_writable(api_path, cs3_path, info)
        if chunk != 1 and not await self._staging_in_progress(engine, cs3_path):
            # A later chunk with no upload in progress (not something JupyterLab sends): append to the
            # file as jupyter_server's LargeFileManager does, as one journaled save.
            pending, info = await self.lookups.write(api_path, cs3_path)
            current = (
                b""
                if info is NOT_FOUND and pending is None
                else await self.remote.read(api_path, cs3_path, pending, info)
            )
            await self.save_bytes(api_path, cs3_path, current + data)
            return Chunk.APPENDED
        with http_error(api_path):
            await engine.stage_chunk(cs3_path, chunk, data, CLIENT.get())
        if chunk != -1:
            return Chunk.STAGED
        pending, info = await self.lookups.write(api_path, cs3_path)
        self.check_lock(api_path, info)
        base_etag = info.etag if info is not NOT_FOUND else None
        with http_error(api_path):
            entry_id = await engine.commit_staged(cs3_path, base_etag, client=CLIENT.get())
        self.remote.invalidate(cs3_path)
        self.presenter.ours(cs3_path, None)
        await self.apply(entry_id, api_path)
        self.remote.invalidate(cs3_path)
        return Chunk.COMMITTED

    async def _staging_in_progress(self, engine: SyncEngine, cs3_path: str) -> bool:
        with http_error(cs3_path):
            return await engine.journal.staging(cs3_path, CLIENT.get()) is not None

    # ------------------------------------------------------------------ delete, rename, copy
    async def delete(self, api_path: str, cs3_path: str, pending: Pending | None, info: Stat) -> None:
        """Journal the delete of an item we looked up, judged against the version we saw."""
        self.check_lock(api_path, info)
        await self.require_writable(api_path, cs3_path, info)
        base_etag = info.etag if info is not NOT_FOUND else None
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        engine = await self.runtime.get_engine()
        with http_error(api_path):
            entry_id = await engine.submit_delete(
                cs3_path,
                base_etag=base_etag,
                base_fileid=base_fileid,
                kind=_kind(pending, info),
                base_observed_at=self.remote.observed_at(cs3_path, info),
            )
        self.remote.invalidate(cs3_path)
        self.presenter.forget(cs3_path)
        self._forget(cs3_path)
        await self.apply(entry_id, api_path)
        self.remote.invalidate(cs3_path)

    async def rename(
        self, old: tuple[str, str], new: tuple[str, str], pending: Pending | None, info: Stat
    ) -> None:
        """Journal the rename of an item we looked up (``old``, ``new``: API path and CS3 path); its
        presented time, lock session and what we knew of it follow it."""
        (old_api, old_cs3), (new_api, new_cs3) = old, new
        other_folder = P.api_parent(new_api) != P.api_parent(old_api)
        if other_folder:
            await self.require_parent(new_api, new_cs3)
        self.check_lock(old_api, info)
        await self.require_writable(old_api, old_cs3, info)
        if other_folder:  # (its folder was just looked at: no RPC)
            await self.require_writable(new_api, new_cs3, NOT_FOUND)
        base_fileid = str(info.file_id) if info is not NOT_FOUND and info.file_id else None
        engine = await self.runtime.get_engine()
        with http_error(old_api):
            entry_id = await engine.submit_rename(
                old_cs3,
                new_cs3,
                base_fileid=base_fileid,
                kind=_kind(pending, info),
                base_observed_at=self.remote.observed_at(old_cs3, info),
            )
        self.remote.invalidate(old_cs3, new_cs3)
        self.presenter.move(old_cs3, new_cs3)
        self._forget(old_cs3, new_cs3)
        self.locks.moved(old_api, new_api, new_cs3)
        applied = await self.apply(entry_id, new_api)
        self.remote.invalidate(old_cs3, new_cs3)
        if applied and pending is None and info is not NOT_FOUND and not isinstance(info, KnownInfo):
            # A Move keeps the resource (file id, etag, mtime): the model of the new path needs no Stat.
            with contextlib.suppress(TypeError, ValueError):
                moved = dataclasses.replace(info, path=new_cs3, name=posixpath.basename(new_cs3))
                self.remote.moved(new_cs3, moved)

    async def copy_file(self, from_cs3: str, to_api: str, to_cs3: str) -> None:
        engine = await self.runtime.get_engine()
        with http_error(to_api):
            entry_id = await engine.submit_copy(from_cs3, to_cs3)
        self.remote.invalidate(to_cs3)
        self.presenter.ours(to_cs3, None)
        await self.apply(entry_id, to_api)
        self.remote.invalidate(to_cs3)

    async def copy_folder(
        self,
        source: tuple[str, str],
        target: tuple[str, str],
        max_mb: int,
        list_folder: Callable[[str], Awaitable[Model]],
    ) -> None:
        """Copy a folder (``source``, ``target``: API path and CS3 path) as a plan of journaled mkdirs
        and copies, made from its listings (``list_folder``: the model with content of an API path),
        refused (400) when its files add up to more than ``max_mb`` MiB."""
        plan = await self._copy_plan(source, target, max_mb, list_folder)
        to_api, to_cs3 = target
        engine = await self.runtime.get_engine()
        last = None
        for step in plan:
            with http_error(to_api):
                last = await (
                    engine.submit_mkdir(step.dst) if step.is_dir else engine.submit_copy(step.src, step.dst)
                )
            self.remote.invalidate(step.dst)
        if last is not None:
            await self.apply(last, to_api)
        self.remote.invalidate(to_cs3)

    async def _copy_plan(
        self,
        source: tuple[str, str],
        target: tuple[str, str],
        max_mb: int,
        list_folder: Callable[[str], Awaitable[Model]],
    ) -> list[CopyStep]:
        limit = max_mb * 1024 * 1024
        plan: list[CopyStep] = []
        total = 0
        queue = [(*source, *target)]
        while queue:
            src_api, src_cs3, dst_api, dst_cs3 = queue.pop()
            plan.append(CopyStep(src_cs3, dst_cs3, True))
            listing = await list_folder(src_api)
            for child in listing["content"]:
                child_src_cs3 = posixpath.join(src_cs3, child["name"])
                child_dst_api = P.api_join(dst_api, child["name"])
                child_dst_cs3 = posixpath.join(dst_cs3, child["name"])
                if child["type"] == "directory":
                    queue.append((child["path"], child_src_cs3, child_dst_api, child_dst_cs3))
                else:
                    total += child["size"] or 0
                    plan.append(CopyStep(child_src_cs3, child_dst_cs3, False))
            if total > limit:
                raise HTTPError(400, f"Can't copy folders larger than {max_mb} MB: {source[0]}")
        return plan


def _kind(pending: Pending | None, info: Stat) -> str:
    if pending is not None:
        return pending.kind
    return "directory" if info is not NOT_FOUND and info.type == "directory" else "file"
