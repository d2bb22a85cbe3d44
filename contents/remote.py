"""`RemoteView`: what the storage holds, as this server last saw it.

Every read of the storage by the contents side goes through here: Stats behind a short cache, folder
listings, file bytes. It also remembers what it saw for the times the storage cannot be asked:

* the **stat cache** answers repeated metadata calls for ``stat_cache_ttl`` seconds; our writes
  invalidate it (a Stat that started before the invalidation is not cached: read-your-writes);
* **last known** infos and the journal's ``remote_state`` answer for paths we know while the storage
  is unreachable or refuses our token (`KnownInfo`); the read cache and the spool blob of our own last
  write give their bytes (offline copies);
* what reads saw is **recorded** in the journal's ``remote_state`` after the reply (with the presented
  times that need persisting), so that offline answers and presented times survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tornado.web import HTTPError

from contents.errors import is_signed_out, is_unreachable, to_http_error
from contents.models import NOT_FOUND, Info, KnownInfo, Missing, Pending, Stat
from contents.pathcache import PathCache
from cs3sync.journal.types import RemoteState

if TYPE_CHECKING:
    import logging

    from contents.config import CS3Sync
    from contents.presented import PresentedTimes
    from contents.runtime import Runtime
    from cs3sync.cs3.downloads import DownloadStream
    from cs3sync.cs3.types import ResourceInfo

#: After a read found the storage unreachable, reads of paths we know answer from what we know for
#: this long without asking again (each attempt against a dead gateway costs its retries).
UNREACHABLE_GRACE = 5.0
#: Folders whose last listing is kept in memory (their children's names, to know a name is free offline).
LISTED_FOLDERS_MAX = 10_000
#: Paths whose last known info is kept in memory (the journal keeps the rest).
LAST_KNOWN_MAX = 50_000
#: Folders whose Stat is kept apart from the stat cache (`RemoteView.known_folder`).
KNOWN_FOLDERS_MAX = 10_000
#: Paths in the stat cache (expired ones stay until then: `cached_or_known` answers from them).
STAT_CACHE_MAX = 100_000


@dataclass(frozen=True)
class CachedStat:
    """A Stat's answer, kept until ``expires`` (monotonic s); ``observed_at`` is when it was asked
    (epoch s: the base time of a rename or delete judged against it)."""

    expires: float
    info: Stat
    observed_at: float

    def fresh(self) -> bool:
        return self.expires > time.monotonic()


@dataclass(frozen=True)
class Gone:
    """A path the storage said is gone, to drop from ``remote_state``."""

    path: str
    at: float


@dataclass(frozen=True)
class Listed:
    """The child names a listing of ``folder`` found at ``at`` (the journal forgets other children)."""

    folder: str
    at: float
    names: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    """A folder's children from one ListContainer, and the folder's own Stat when it was cached."""

    info: Stat | None
    children: list[ResourceInfo]
    observed_at: float


def child_name(info: Info) -> str:
    return info.name or posixpath.basename(info.path.rstrip("/"))


class ContentCache:
    """Bounded LRU of recently read file bytes, keyed by path and checked against the etag, for reads
    while the storage is unreachable (``cache_max_bytes``)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[str | None, bytes]] = OrderedDict()
        self._size = 0

    def put(self, path: str, etag: str | None, data: bytes) -> None:
        if len(data) > self.max_bytes // 4:
            return
        self.drop(path)
        self._items[path] = (etag, data)
        self._size += len(data)
        while self._size > self.max_bytes and self._items:
            _, (_, old) = self._items.popitem(last=False)
            self._size -= len(old)

    def get(self, path: str, etag: str | None = None) -> bytes | None:
        item = self._items.get(path)
        if item is None or (etag is not None and item[0] != etag):
            return None
        self._items.move_to_end(path)
        return item[1]

    def drop(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self._size -= len(item[1])


class RemoteView:
    """Stats, listings and bytes of the storage, with the caches and offline answers described above."""

    def __init__(
        self,
        settings: CS3Sync,
        runtime: Runtime,
        presented: PresentedTimes,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.presented = presented
        self.log = log
        self.content_cache = ContentCache(settings.cache_max_bytes)
        self._stat_cache: PathCache[CachedStat] = PathCache(STAT_CACHE_MAX)
        # A folder's Stat survives writes into it (`known_folder`).
        self._folders: PathCache[CachedStat] = PathCache(KNOWN_FOLDERS_MAX)
        # Time of the last invalidation: a Stat or listing that started before it may carry what the
        # storage held before our write landed, so its answer is not cached (read-your-writes).
        self._invalidated_at = 0.0
        self._last_known: dict[str, KnownInfo] = {}
        self._unreachable_at: float | None = None  # monotonic time of the last read that found no storage
        self._signed_out_at: float | None = None  # monotonic time of the last read refused for auth
        self._observed: dict[str, RemoteState] = {}  # rows to record in the journal
        self._observed_gone: list[Gone] = []
        self._observed_listed: list[Listed] = []
        self._listings: dict[str, frozenset[str]] = {}  # folder -> child names of its last listing
        self._recorder: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ reachability
    def storage_unreachable(self) -> bool:
        """A read found the storage unreachable moments ago, or the engine is offline."""
        engine = self.runtime.engine
        if engine is not None and engine.state == "offline":
            return True
        at = self._unreachable_at
        return at is not None and time.monotonic() - at < UNREACHABLE_GRACE

    def signed_out(self) -> bool:
        """A read found our token refused moments ago (the engine pauses when it meets the same)."""
        at = self._signed_out_at
        return at is not None and time.monotonic() - at < UNREACHABLE_GRACE

    def writing_blind(self) -> bool:
        """Writes are journaled without asking the storage first (unreachable or signed out)."""
        return self.signed_out() or self.storage_unreachable()

    def engine_online(self) -> bool:
        """Writes may wait for the engine to apply them (not signed out, engine online)."""
        engine = self.runtime.engine
        if self.signed_out():
            return False
        return engine is None or engine.state == "online"

    def mark_unreachable(self) -> None:
        self._unreachable_at = time.monotonic()

    def mark_signed_out(self) -> None:
        self._signed_out_at = time.monotonic()

    def _reached(self) -> None:
        """A request reached the storage: reads stop answering from what we know, and an offline
        engine reopens its queue at once (the proof it would otherwise wait for from its next probe)."""
        self._unreachable_at = None
        if self.runtime.engine is not None:
            self.runtime.engine.storage_answered()

    def nudge_engine(self) -> None:
        """A read answered from what we know instead of asking the storage: let the engine probe it
        now, so that the queue reopens within a moment of the storage coming back."""
        if self.runtime.engine is not None:
            self.runtime.engine.nudge()

    # ------------------------------------------------------------------ stat and its cache
    def invalidate(self, *cs3_paths: str) -> None:
        """Forget cached stats and bytes of these paths, their descendants and parents (after our writes)."""
        self._invalidated_at = time.time()
        for cs3_path in cs3_paths:
            self._folders.drop_tree(cs3_path)
            self._stat_cache.drop_tree(cs3_path)
            self._stat_cache.pop(posixpath.dirname(cs3_path))
            self.content_cache.drop(cs3_path)

    def cached(self, cs3_path: str) -> Stat | None:
        """The cached Stat of a path while it is fresh, else None."""
        seen = self._stat_cache.get(cs3_path)
        return seen.info if seen is not None and seen.fresh() else None

    def cached_or_known(self, cs3_path: str) -> Stat:
        """The last Stat this process made of a path (even expired), else what we last knew of it, else
        NOT_FOUND: a pending child's model in a listing, without an RPC."""
        seen = self._stat_cache.get(cs3_path)
        info = seen.info if seen is not None else NOT_FOUND
        if info is NOT_FOUND:
            return self._last_known.get(cs3_path, NOT_FOUND)
        return info

    def observed_at(self, cs3_path: str, info: Stat) -> float | None:
        """When ``info`` (the base of a rename/delete) was seen on the storage, if we know it."""
        if isinstance(info, KnownInfo):
            return info.observed_at or None
        seen = self._stat_cache.get(cs3_path)
        return seen.observed_at if seen is not None and seen.info is info else None

    async def stat(self, cs3_path: str, *, fresh: bool = False) -> Stat:
        """ResourceInfo, or NOT_FOUND; errors are CS3 errors (the caller maps them).

        While the storage is unreachable a path we know answers with a `KnownInfo`: what
        this process last saw of it, else the journal's ``remote_state``.
        """
        from cs3sync.cs3 import errors

        seen = self._stat_cache.get(cs3_path)
        if seen is not None and not fresh and seen.fresh():
            return seen.info
        if self.storage_unreachable():
            # Not asked again: each try against a dead gateway costs the client's retries (~1.6 s).
            self.nudge_engine()
            unasked = errors.Transient("not asked while unreachable", connectivity=True, op="stat")
            return await self._what_we_know(cs3_path, unasked)
        client = await self.runtime.get_client()
        observed = time.time()
        info: ResourceInfo | Literal[Missing.NOT_FOUND]
        try:
            info = await client.stat(cs3_path)
        except errors.NotFound:
            info = NOT_FOUND
        except Exception as exc:
            if is_signed_out(exc):
                self.mark_signed_out()  # answered like an outage: what we know
            elif not is_unreachable(exc):
                raise
            else:
                self.mark_unreachable()
            return await self._what_we_know(cs3_path, exc)
        self._reached()
        self._signed_out_at = None
        if observed > self._invalidated_at:
            expires = time.monotonic() + self.settings.stat_cache_ttl
            self._stat_cache.put(cs3_path, CachedStat(expires, info, observed))
            if info is not NOT_FOUND and info.type == "directory":
                self._folders.put(cs3_path, CachedStat(expires, info, observed))
        self._remember(cs3_path, info, observed)
        return info

    def known_folder(self, cs3_path: str) -> Stat | None:
        """A folder's Stat from the last stat_cache_ttl seconds, or None. Unlike the stat cache it
        survives writes *into* the folder (their landing changes its mtime, not that it exists or what
        we may do in it): 2,000 new files in one folder are not 2,000 Stats of that folder."""
        seen = self._folders.get(cs3_path)
        return seen.info if seen is not None and seen.fresh() else None

    async def _what_we_know(self, cs3_path: str, unanswered: Exception) -> Stat:
        """Stat's answer when the storage is not asked or did not answer: a path we know
        -> what we last saw; else `unanswered` is raised (a read answers 503, never 404; a save
        writes blind, checked when applied)."""
        known = await self.known(cs3_path)
        if known is not None:
            return known
        raise unanswered

    def saw(self, cs3_path: str, info: ResourceInfo, observed: float) -> None:
        """A listing (started at ``observed``) showed this child: it answers Stats of it for a while."""
        if observed > self._invalidated_at:
            expires = time.monotonic() + self.settings.stat_cache_ttl
            self._stat_cache.put(cs3_path, CachedStat(expires, info, observed))
            self._remember(cs3_path, info, observed)

    def moved(self, cs3_path: str, info: ResourceInfo) -> None:
        """Our rename landed at ``cs3_path`` and kept the resource: ``info`` is its Stat (no RPC)."""
        expires = time.monotonic() + self.settings.stat_cache_ttl
        self._stat_cache.put(cs3_path, CachedStat(expires, info, time.time()))
        self._remember(cs3_path, info, time.time())

    def landed(self, cs3_path: str, info: ResourceInfo) -> None:
        """Our save landed at ``cs3_path``: ``info`` is the engine's own Stat after the upload (no RPC;
        the engine recorded it in the journal's remote_state)."""
        observed = time.time()
        self._stat_cache.put(
            cs3_path, CachedStat(time.monotonic() + self.settings.stat_cache_ttl, info, observed)
        )
        if len(self._last_known) > LAST_KNOWN_MAX:
            self._last_known.clear()
        self._last_known[cs3_path] = KnownInfo.from_info(info, observed)

    # ------------------------------------------------------------------ what we knew
    def _remember(
        self, cs3_path: str, info: ResourceInfo | Literal[Missing.NOT_FOUND], observed: float
    ) -> None:
        """What we last saw of a path, kept across cache expiry (the base of writes made offline) and
        recorded in the journal's ``remote_state`` when it changed (offline reads after a restart)."""
        if observed <= self._invalidated_at:
            return  # seen before one of our writes landed: possibly the version it replaced
        previous = self._last_known.get(cs3_path)
        if info is NOT_FOUND:
            if self._last_known.pop(cs3_path, None) is not None:
                self._observed.pop(cs3_path, None)
                self._observed_gone.append(Gone(cs3_path, observed))
                self.schedule_recording()
            return
        if len(self._last_known) > LAST_KNOWN_MAX:
            self._last_known.clear()
        self._last_known[cs3_path] = KnownInfo.from_info(info, observed)
        if (
            previous is None
            or previous.etag != info.etag
            or previous.type != info.type
            or previous.size != info.size
        ):
            self._observed[cs3_path] = RemoteState.of(cs3_path, info, observed)
            self.schedule_recording()

    def last_known(self, cs3_path: str) -> KnownInfo | None:
        """What this process last saw of a path (no journal read)."""
        return self._last_known.get(cs3_path)

    def known_children(self, cs3_dir: str) -> list[KnownInfo]:
        """What this process last saw of a folder's children."""
        return [k for p, k in self._last_known.items() if posixpath.dirname(p) == cs3_dir]

    def forget_known(self, *cs3_paths: str) -> None:
        """Our delete or rename: what we knew of these paths and below is no one's version any more."""
        for cs3_path in cs3_paths:
            prefix = cs3_path.rstrip("/") + "/"
            for key in [k for k in self._last_known if k == cs3_path or k.startswith(prefix)]:
                del self._last_known[key]

    async def known(self, cs3_path: str) -> KnownInfo | None:
        """What we last knew of a path (this process, else the journal), or None."""
        known = self._last_known.get(cs3_path)
        if known is not None:
            return known
        row = await self.remote_state(cs3_path)
        return KnownInfo.from_remote(row) if row is not None else None

    async def remote_state(self, cs3_path: str) -> RemoteState | None:
        """What the owner journal recorded of a path, or None (also when the journal is not available)."""
        try:
            return await (await self.runtime.get_engine()).journal.remote_state(cs3_path)
        except Exception as exc:
            self.log.debug("cs3sync: journal remote_state unavailable: %s", exc)
            return None

    async def remote_children(self, cs3_dir: str) -> list[RemoteState]:
        """What the owner journal recorded of a folder's children ([] when the journal is not available)."""
        try:
            return await (await self.runtime.get_engine()).journal.remote_children(cs3_dir)
        except Exception as exc:
            self.log.debug("cs3sync: journal remote_children unavailable: %s", exc)
            return []

    # ------------------------------------------------------------------ listings
    async def list_folder(self, cs3_path: str) -> Listing | None:
        """A folder's children from one ListContainer; None when that is not the way to answer (a path
        cached as a file or missing, the storage unreachable, or any error: a Stat then reports it)."""
        seen = self._stat_cache.get(cs3_path)
        cached = seen.info if seen is not None and seen.fresh() else None
        if cached is not None and (cached is NOT_FOUND or cached.type != "directory"):
            return None
        if self.storage_unreachable():
            self.nudge_engine()
            return None
        client = await self.runtime.get_client()
        observed = time.time()
        try:
            children = await client.list(cs3_path)
        except Exception as exc:
            if is_unreachable(exc):
                self.mark_unreachable()
            return None
        self._reached()
        self._record_listing(cs3_path, observed, children)
        return Listing(seen.info if seen is not None and seen.fresh() else None, children, observed)

    async def list_children(self, cs3_path: str, api_path: str, observed: float) -> list[ResourceInfo] | None:
        """A folder's children (one ListContainer, started at ``observed``); None when the storage is
        unreachable; any other error as an HTTPError."""
        client = await self.runtime.get_client()
        try:
            children = await client.list(cs3_path)
        except Exception as exc:
            if not is_unreachable(exc):
                raise to_http_error(exc, api_path) from exc
            self.mark_unreachable()
            return None
        self._reached()
        self._record_listing(cs3_path, observed, children)
        return children

    def _record_listing(self, cs3_path: str, observed: float, children: list[ResourceInfo]) -> None:
        """A listing tells which children a folder holds: the journal forgets the known children it
        no longer holds, and only those (the children are recorded only when they changed, so the
        listing carries their names)."""
        names = tuple(child_name(c) for c in children)
        self._observed_listed.append(Listed(cs3_path, observed, names))
        if len(self._listings) > LISTED_FOLDERS_MAX:
            self._listings.clear()
        self._listings[cs3_path] = frozenset(names)

    def listed_without(self, cs3_path: str) -> bool:
        """The last listing of the folder of ``cs3_path`` did not hold it (so, offline, a rename to it
        is to a free name, not to a path we know nothing about)."""
        names = self._listings.get(posixpath.dirname(cs3_path))
        return names is not None and posixpath.basename(cs3_path) not in names

    # ------------------------------------------------------------------ recording in the journal
    def schedule_recording(self) -> None:
        """Write what reads saw to the journal soon (after the reply), on the loop that owns it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if not self.runtime.owns_loop(loop):
            return  # only the loop that owns the journal writes to it
        if self._recorder is None or self._recorder.done():
            self._recorder = loop.create_task(self.flush_observations(), name="cs3sync-remote-state")

    async def flush_observations(self) -> None:
        """Write what reads saw (and presented times that need it) to the journal, in one go."""
        while self._observed or self._observed_gone or self._observed_listed or self.presented.has_dirty():
            states, self._observed = list(self._observed.values()), {}
            gone, self._observed_gone = self._observed_gone, []
            listed, self._observed_listed = self._observed_listed, []
            dirty = self.presented.take_dirty()
            engine = self.runtime.local_engine()
            if engine is None:
                return
            try:
                await engine.journal.observe_remote(
                    states,
                    gone=[(g.path, g.at) for g in gone],
                    listed=[(x.folder, x.at, x.names) for x in listed],
                )
                for path, etag, seconds in dirty:
                    await engine.journal.set_presented_mtime(path, etag, seconds)
            except Exception as exc:  # a cache of what we saw: losing it costs only offline answers
                self.log.debug("cs3sync: could not record remote state: %s", exc)
                return

    # ------------------------------------------------------------------ bytes
    async def read(self, api_path: str, cs3_path: str, pending: Pending | None, info: Stat | None) -> bytes:
        """A file's bytes: a pending save of ours from the spool, else the storage (``info``: its Stat),
        else, unreachable, an offline copy."""
        if pending is not None and pending.blob_path is not None:
            return await asyncio.to_thread(pending.blob_path.read_bytes)
        found = info if info is not None and info is not NOT_FOUND else None
        etag = found.etag if found is not None else None
        cached = self.content_cache.get(cs3_path, etag)
        if cached is not None:
            return cached
        # Where the bytes are: info.path differs from cs3_path while a rename of ours is pending.
        remote = found.path if found is not None and found.path else cs3_path
        if isinstance(found, KnownInfo) or self.storage_unreachable():
            data = await self.offline_copy(remote, found)
            if data is not None:
                return data
            if isinstance(found, KnownInfo):
                raise HTTPError(503, f"Storage unreachable, no cached copy of {api_path}")
        try:
            chunks = []
            async with self.open_download(remote, info) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            data = b"".join(chunks)
        except Exception as exc:
            if is_unreachable(exc):
                self.mark_unreachable()
                stale = await self.offline_copy(remote, found)
                if stale is not None:
                    return stale
                raise HTTPError(503, f"Storage unreachable, no cached copy of {api_path}") from exc
            raise to_http_error(exc, api_path) from exc
        self.content_cache.put(cs3_path, etag, data)
        return data

    async def offline_copy(self, cs3_path: str, info: Info | None) -> bytes | None:
        """The bytes of the version we know, without the storage: the read cache, else the spool blob
        the journal kept for our own last write of it (``remote_state.cached_blob``)."""
        etag = info.etag if info is not None else None
        data = self.content_cache.get(cs3_path, etag)
        if data is not None:
            return data
        blob = info.cached_blob if isinstance(info, KnownInfo) else None
        if blob is None:
            row = await self.remote_state(cs3_path)
            if row is not None and row.cached_blob and (etag is None or row.etag == etag):
                blob = row.cached_blob
        engine = self.runtime.engine
        if blob is None or engine is None:
            return None
        try:
            return await asyncio.to_thread(engine.blob_path(blob).read_bytes)
        except OSError:
            return None

    @contextlib.asynccontextmanager
    async def open_download(self, cs3_path: str, info: Stat | None) -> AsyncIterator[DownloadStream]:
        """A download stream of a file we have just statted (no second Stat)."""
        client = await self.runtime.get_client()
        if info is None or info is NOT_FOUND:
            async with client.download(cs3_path) as stream:
                yield stream
            return
        from cs3sync.cs3.downloads import DownloadStream

        known = info.as_resource_info() if isinstance(info, KnownInfo) else info
        stream = DownloadStream(client, cs3_path, known, None)
        try:
            yield stream
        finally:
            await stream.aclose()
