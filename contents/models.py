"""CS3 resource info -> Jupyter contents models, and the presented-mtime rule.

``last_modified`` must be stable: JupyterLab raises "File Changed" when the time on the server is more
than 500 ms newer than what its last save returned, and RTC compares with ``==``. So the time we
present for a file is remembered per etag (:class:`PresentedTimes`): a save presents a time, and that
same time is served until the etag changes by someone else's hand; then the storage's time is served,
never earlier than what we presented before (RTC reloads only on a strictly newer time).
"""

from __future__ import annotations

import enum
import mimetypes
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from contents.paths import api_name
from cs3sync.cs3.types import FileId, Lock, ResourceInfo

if TYPE_CHECKING:
    from cs3sync.journal.types import RemoteState

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)
#: A version someone else made is presented at least this much later than what we presented before:
#: JupyterLab's "File Changed" check fires only for a time more than 500 ms newer than its own.
FOREIGN_STEP = timedelta(seconds=1)
#: The etag of a presented write of ours that never reached the storage (parked as a conflict...).
LOST = ""


def datetime_from_ns(mtime_ns: int | None) -> datetime:
    """tz-aware UTC datetime with microsecond precision (the finest a datetime holds)."""
    if not mtime_ns:
        return EPOCH
    seconds, ns = divmod(int(mtime_ns), 1_000_000_000)
    return EPOCH + timedelta(seconds=seconds, microseconds=ns // 1000)


def now() -> datetime:
    return datetime_from_ns(time.time_ns())


def hash_from_checksum(checksum: str | None) -> tuple[str | None, str | None]:
    """``"adler32:0a1b"`` -> ``("0a1b", "adler32")``."""
    if not checksum or ":" not in checksum:
        return None, None
    algorithm, _, value = checksum.partition(":")
    return (value or None), (algorithm.lower() or None) if value else None


def guess_mimetype(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]


def content_type(api_path: str, is_dir: bool, requested: str | None) -> str:
    """The model type for a path: directory, notebook or file (the FCM rule)."""
    if is_dir:
        return "directory"
    if requested == "notebook" or (requested is None and api_path.endswith(".ipynb")):
        return "notebook"
    return "file"


def base_model(
    api_path: str,
    *,
    type: str,
    last_modified: datetime,
    created: datetime | None = None,
    writable: bool = True,
    size: int | None = None,
) -> dict[str, Any]:
    """A model without content; every key the REST handler requires is present."""
    return {
        "name": api_name(api_path),
        "path": api_path,
        "type": type,
        "writable": writable,
        "created": created or last_modified,
        "last_modified": last_modified,
        "size": size if type != "directory" else None,
        "mimetype": guess_mimetype(api_name(api_path)) if type == "file" else None,
        "content": None,
        "format": None,
        "hash": None,
        "hash_algorithm": None,
    }


def is_foreign_lock(
    lock: Lock | None, our_prefix: str, our_lock_ids: set[str] | frozenset[str] = frozenset()
) -> bool:
    """A valid lock that is not ours. Ours means a lock id we issued: one we hold now, or one with our
    journal's lock id prefix (issued before a restart). The app name proves nothing: with bearer tokens
    every user's Jupyter presents the same one (``jupyter-rtc``)."""
    if lock is None:
        return False
    if lock.expiration and lock.expiration < time.time():
        return False
    lock_id = lock.lock_id or ""
    return not (lock_id in our_lock_ids or (our_prefix and lock_id.startswith(our_prefix)))


def lock_holder_name(lock: Lock) -> str:
    app, user = lock.app_name, lock.user
    return " ".join(str(p) for p in (app, f"({user})" if user else "") if p) or "another application"


def epoch_seconds(value: datetime) -> float:
    """A presented datetime as the float the journal stores (inverse of `datetime_from_seconds`)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) + delta.microseconds / 1_000_000


def datetime_from_seconds(value: float) -> datetime:
    return datetime_from_ns(round(value * 1_000_000) * 1000)


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


class Missing(enum.Enum):
    """The storage said the path does not exist (a Stat's answer, as opposed to "not asked")."""

    NOT_FOUND = "not found"


NOT_FOUND: Final = Missing.NOT_FOUND


@dataclass
class Pending:
    """The journal's view of a path with active entries (read-your-writes)."""

    kind: str  # "file" | "directory"
    deleted: bool = False
    size: int | None = None
    mtime: datetime | None = None
    sha256: str | None = None
    blob_path: Path | None = None
    source: str | None = None  # pending rename/copy: the remote path that holds it until applied


@dataclass
class KnownInfo:
    """What we last knew of a path on the storage while it cannot be asked: from this
    process's earlier Stats and listings, or from the journal's ``remote_state``. Duck-types the
    client's ``ResourceInfo`` for the model code (the fields both have: `Info`); ``observed_at`` is when
    it was seen (epoch s)."""

    path: str
    name: str
    type: str
    size: int | None
    mtime_ns: int
    etag: str | None
    file_id: str | None = None
    checksum: str | None = None
    writable: bool = True
    lock: Lock | None = None
    presented_mtime: float | None = None
    cached_blob: str | None = None
    observed_at: float = 0.0

    @classmethod
    def from_info(cls, info: ResourceInfo | KnownInfo, observed_at: float) -> KnownInfo:
        return cls(
            path=info.path,
            name=info.name,
            type=info.type,
            size=info.size,
            mtime_ns=info.mtime_ns,
            etag=info.etag,
            file_id=str(info.file_id) if info.file_id else None,
            checksum=info.checksum,
            writable=info.writable,
            lock=info.lock,
            observed_at=observed_at,
        )

    @classmethod
    def from_remote(cls, row: RemoteState) -> KnownInfo:
        mtime = row.mtime if row.mtime is not None else row.presented_mtime
        return cls(
            path=row.path,
            name=row.path.rstrip("/").rpartition("/")[2],
            type="directory" if row.kind == "directory" else "file",
            size=row.size,
            mtime_ns=round(mtime * 1_000_000) * 1000 if mtime else 0,
            etag=row.etag,
            file_id=row.fileid,
            checksum=row.checksum,
            presented_mtime=row.presented_mtime,
            cached_blob=row.cached_blob,
            observed_at=row.updated_at,
        )

    def as_resource_info(self) -> ResourceInfo:
        """The client's shape of what we know (a download of it checks the size and etag we knew)."""
        return ResourceInfo(
            path=self.path,
            name=self.name,
            type="directory" if self.type == "directory" else "file",
            size=self.size or 0,
            mtime_ns=self.mtime_ns,
            etag=self.etag or "",
            file_id=FileId.parse(self.file_id) if self.file_id else FileId(),
            checksum=self.checksum,
            writable=self.writable,
            lock=self.lock,
        )


#: What the storage holds at a path: its Stat now, or what we last knew of it (`KnownInfo`).
Info: TypeAlias = ResourceInfo | KnownInfo
#: A Stat's answer: the path's `Info`, or `NOT_FOUND`.
Stat: TypeAlias = ResourceInfo | KnownInfo | Literal[Missing.NOT_FOUND]
