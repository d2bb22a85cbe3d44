"""The presented-mtime rule: the ``last_modified`` (and hash) a model shows for a file. Its one owner on
the Jupyter side is `Presenter`; the engine applies the same rule to its own entries through
`cs3sync.journal.types.Entry.presented_at` and records the result in ``remote_state.presented_mtime``.

``last_modified`` must be stable: JupyterLab raises "File Changed" when the time on the server is more
than 500 ms newer than what its last save returned, and RTC compares with ``==``. So the time we
present for a file is remembered per etag (:class:`PresentedTimes`): a save presents a time (the time
the journal acknowledged it), and that same time is served until the etag changes by someone else's
hand; then the storage's time is served, never earlier than what we presented before (RTC reloads only
on a strictly newer time). A save the engine merged with someone else's change is presented at the
time the engine gave the merge, newer than the editor's save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from contents.models import (
    KnownInfo,
    Pending,
    Stat,
    datetime_from_ns,
    datetime_from_seconds,
    epoch_seconds,
    hash_from_checksum,
    now,
)

if TYPE_CHECKING:
    from contents.models import Info
    from contents.remote import RemoteView
    from contents.runtime import Runtime
    from cs3sync.journal import Entry
    from cs3sync.journal.types import RemoteState

ONE_MS = timedelta(milliseconds=1)
#: A version someone else made is presented at least this much later than what we presented before:
#: JupyterLab's "File Changed" check fires only for a time more than 500 ms newer than its own.
FOREIGN_STEP = timedelta(seconds=1)
#: The etag of a presented write of ours that never reached the storage (parked as a conflict...).
LOST = ""
#: Paths (and folders) seeded from the journal that are remembered as such in memory.
SEEDED_MAX = 100_000


@dataclass
class Presented:
    etag: str | None  # None while our own write is not applied yet (the next etag is ours)
    last_modified: datetime
    hash: str | None = None
    hash_algorithm: str | None = None
    #: The journal cannot derive this time by itself (it was moved forward to stay monotonic), so it
    #: is written to ``remote_state.presented_mtime`` once the etag is known.
    persist: bool = False
    #: The journal entry of our pending write (etag None): whether it landed is asked of the journal.
    entry_id: int | None = None


class PresentedTimes:
    """What we told clients about each path, so that repeated answers stay identical.

    Backed by the journal (``remote_state.presented_mtime`` per path and etag) so that the answers
    survive a server restart: the manager `seed`s a path from the journal before first presenting it
    in this process, and writes the entries `take_dirty` returns.
    """

    def __init__(self) -> None:
        self._by_path: dict[str, Presented] = {}
        self._dirty: dict[str, Presented] = {}
        self._unsettled: set[str] = set()  # paths of `ours` entries with an entry id, maybe stale

    def ours(
        self,
        cs3_path: str,
        last_modified: datetime,
        sha256: str | None,
        etag: str | None = None,
        entry_id: int | None = None,
    ) -> Presented:
        """Record a save of ours, presented at ``last_modified`` (the time the journal acknowledged it,
        which the engine records as the presented time); times never go backwards for a path."""
        previous = self._by_path.get(cs3_path)
        bumped = previous is not None and last_modified <= previous.last_modified
        if bumped:
            assert previous is not None
            last_modified = previous.last_modified + ONE_MS
        entry = Presented(
            etag, last_modified, sha256, "sha256" if sha256 else None, persist=bumped, entry_id=entry_id
        )
        self._by_path[cs3_path] = entry
        self._dirty.pop(cs3_path, None)
        if entry_id is not None and etag is None:
            self._unsettled.add(cs3_path)
        if etag is not None and bumped:
            self._dirty[cs3_path] = entry
        return entry

    def landed(self, cs3_path: str, etag: str) -> None:
        """Our pending write got this etag on the storage."""
        entry = self._by_path.get(cs3_path)
        if entry is not None and entry.etag is None:
            entry.etag = etag
            if entry.persist:
                self._dirty[cs3_path] = entry

    def unsettled(self, cs3_path: str) -> int | None:
        """The journal entry of a presented write of ours whose outcome we have not learnt yet."""
        entry = self._by_path.get(cs3_path)
        return entry.entry_id if entry is not None and entry.etag is None else None

    def unsettled_under(self, cs3_dir: str) -> list[str]:
        """Paths directly in ``cs3_dir`` whose write of ours has an outcome to learn."""
        self._unsettled = {p for p in self._unsettled if self.unsettled(p) is not None}
        prefix = cs3_dir.rstrip("/") + "/"
        return [p for p in self._unsettled if p.startswith(prefix) and "/" not in p[len(prefix) :]]

    def lost(self, cs3_path: str) -> None:
        """Our presented write did not land (conflict, failed, discarded): whatever the storage holds
        is someone else's version and is presented as a change (`observe`)."""
        entry = self._by_path.get(cs3_path)
        if entry is not None and entry.etag is None:
            entry.etag, entry.entry_id = LOST, None

    def seed(
        self, cs3_path: str, etag: str, last_modified: datetime, hash_value: str | None, algorithm: str | None
    ) -> None:
        """What an earlier process presented for this etag (from the journal)."""
        if cs3_path not in self._by_path:
            self._by_path[cs3_path] = Presented(etag, last_modified, hash_value, algorithm)

    def known(self, cs3_path: str) -> bool:
        return cs3_path in self._by_path

    def observe(
        self, cs3_path: str, etag: str | None, storage_time: datetime, checksum: str | None
    ) -> Presented:
        """The presented time and hash for a stat result."""
        entry = self._by_path.get(cs3_path)
        if entry is not None and (entry.etag is None or entry.etag == etag):
            if entry.etag is None and etag is not None:
                self.landed(cs3_path, etag)  # our pending write landed: this etag is ours
            if entry.hash is None:
                entry.hash, entry.hash_algorithm = hash_from_checksum(checksum)
            return entry
        hash_value, algorithm = hash_from_checksum(checksum)
        bumped = entry is not None and storage_time < entry.last_modified + FOREIGN_STEP
        if bumped:
            assert entry is not None
            # Changed by someone else: newer than anything we presented, by enough for JupyterLab.
            storage_time = entry.last_modified + FOREIGN_STEP
        fresh = Presented(etag, storage_time, hash_value, algorithm, persist=bumped)
        if entry is not None:
            self._by_path[cs3_path] = fresh
            if bumped and etag is not None:
                self._dirty[cs3_path] = fresh
        return fresh

    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def take_dirty(self) -> list[tuple[str, str, float]]:
        """(path, etag, presented seconds) to write to the journal; clears the list."""
        out = [(p, e.etag, epoch_seconds(e.last_modified)) for p, e in self._dirty.items() if e.etag]
        self._dirty.clear()
        return out

    def get(self, cs3_path: str) -> Presented | None:
        return self._by_path.get(cs3_path)

    def forget(self, cs3_path: str) -> None:
        prefix = cs3_path.rstrip("/") + "/"
        for key in [k for k in self._by_path if k == cs3_path or k.startswith(prefix)]:
            del self._by_path[key]
            self._dirty.pop(key, None)

    def move(self, src: str, dst: str) -> None:
        prefix = src.rstrip("/") + "/"
        for key in [k for k in self._by_path if k == src or k.startswith(prefix)]:
            self._by_path[dst + key[len(src) :]] = self._by_path.pop(key)
            self._dirty.pop(key, None)
        if len(self._by_path) > 100_000:  # bounded: the journal remembers the rest
            self._by_path.clear()


@dataclass(frozen=True)
class MergedSave:
    """A save of ours the engine merged with someone else's change: shown from the next read on at the
    time the engine gave the merge, with the merge's own hash."""

    presented_at: float
    sha256: str | None


class Presenter:
    """What a model presents for a path: seeded from the journal before a path's first answer in this
    process, a write of ours at the time the journal acknowledged it, its outcome learnt from the
    journal, a merged save at the engine's time, the storage's time for someone else's version."""

    def __init__(
        self,
        times: PresentedTimes,
        remote: RemoteView,
        runtime: Runtime,
        pending_of: Callable[[str], Pending | None],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.times = times
        self.remote = remote
        self.runtime = runtime
        self.pending_of = pending_of
        self.log = log
        self._seeded: set[str] = set()
        self._seeded_dirs: set[str] = set()
        #: Paths whose save the engine merged with a foreign change: what to show there next.
        self._merged: dict[str, MergedSave] = {}

    # ------------------------------------------------------------------ from the journal
    async def seed(self, cs3_path: str, info: Stat | None = None) -> None:
        """Before presenting a path for the first time in this process, take what an earlier process
        presented for the same etag from the journal (stable last_modified across restarts)."""
        if self.times.known(cs3_path) or cs3_path in self._seeded:
            return
        if len(self._seeded) > SEEDED_MAX:
            self._seeded.clear()
            self._seeded_dirs.clear()
        self._seeded.add(cs3_path)
        row = info if isinstance(info, KnownInfo) else await self.remote.remote_state(cs3_path)
        if row is not None:
            self._seed_from(cs3_path, row)

    async def seed_folder(self, cs3_dir: str, *, rows_wanted: bool = False) -> list[RemoteState]:
        """Seed a folder's children from the journal once per folder (``rows_wanted``: read them again
        and return them, for an offline listing)."""
        if not rows_wanted and cs3_dir in self._seeded_dirs:
            return []
        self._seeded_dirs.add(cs3_dir)
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
        self.times.seed(cs3_path, etag, datetime_from_seconds(presented), hash_value, algorithm)

    async def settle(self, cs3_path: str) -> None:
        """Before presenting a path whose write of ours has left the queue: did it land? If it was
        parked (a conflict...) the storage holds someone else's version, presented as a change."""
        entry_id = self.times.unsettled(cs3_path)
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
            self.times.landed(cs3_path, entry.result_etag)
        elif entry.state in ("conflict", "failed", "cancelled"):
            self.times.lost(cs3_path)

    async def settle_folder(self, cs3_dir: str) -> None:
        """`settle` every child of a folder with a write of ours whose outcome we have not learnt."""
        for unsettled in self.times.unsettled_under(cs3_dir):
            await self.settle(unsettled)

    # ------------------------------------------------------------------ our writes
    def ours(self, cs3_path: str, sha256: str | None, entry_id: int | None = None) -> None:
        """Present a write of ours at the time the journal acknowledged it: the engine records that
        same time as the presented mtime when it applies the write, so the answer survives restarts."""
        pending = self.pending_of(cs3_path)
        stamp = pending.mtime if pending is not None and pending.mtime is not None else now()
        self.times.ours(cs3_path, stamp, sha256 or (pending.sha256 if pending else None), entry_id=entry_id)

    def landed(self, cs3_path: str, etag: str) -> None:
        """Our write at ``cs3_path`` was applied and got ``etag``."""
        self.times.landed(cs3_path, etag)

    def finished(self, entry: Entry, landed_etag: str | None = None) -> None:
        """The engine ended a run of one of our writes (``landed_etag``: the etag a save got, if it
        landed). Merged with someone else's change (cs3sync.rebase): from the next read on, present the
        merge at the time the engine gave it (newer than the editor's save) with its own hash, so
        JupyterLab sees that the file changed. The reply to the save itself still describes what the
        editor sent."""
        if landed_etag is not None and self.times.unsettled(entry.path) == entry.id:
            self.times.landed(entry.path, landed_etag)
        if entry.extra.get("merge", {}).get("merged") and entry.presented_mtime:
            self._merged[entry.path] = MergedSave(entry.presented_mtime, entry.sha256)

    def forget(self, cs3_path: str) -> None:
        self.times.forget(cs3_path)

    def move(self, src: str, dst: str) -> None:
        self.times.move(src, dst)

    # ------------------------------------------------------------------ what a model shows
    def last_modified(self, cs3_path: str) -> datetime | None:
        """The time presented for a path (the reply to our own save), if any."""
        presented = self.times.get(cs3_path)
        return presented.last_modified if presented is not None else None

    def of_pending(self, cs3_path: str, pending: Pending, mtime: datetime) -> Presented:
        """What a file with a pending write of ours (acknowledged at ``mtime``) presents."""
        presented = self.times.get(cs3_path)
        if presented is None or presented.etag is not None:
            presented = self.times.ours(cs3_path, mtime, pending.sha256)
        return presented

    def of_stat(self, cs3_path: str, info: Info) -> Presented:
        """What a file on the storage (``info``: its Stat, or what we last knew of it) presents."""
        storage_time = datetime_from_ns(info.mtime_ns)
        presented = self.times.get(cs3_path)
        if not (isinstance(info, KnownInfo) and presented is not None and presented.etag):
            presented = self.times.observe(cs3_path, info.etag, storage_time, info.checksum)
        # else: what we knew before the storage became unreachable is older than our landed write
        if isinstance(info, KnownInfo) and info.cached_blob and presented.etag == info.etag:
            presented.hash, presented.hash_algorithm = info.cached_blob, "sha256"
        return presented

    def take_merge(self, cs3_path: str) -> None:
        """Before building a model of ``cs3_path``: a merge the engine made there is presented from now on."""
        merged = self._merged.pop(cs3_path, None)
        if merged is not None:
            self.times.forget(cs3_path)
            self.times.ours(cs3_path, datetime_from_seconds(merged.presented_at), merged.sha256)
