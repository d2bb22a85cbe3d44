"""The shapes the contents side works with: what the storage holds at a path (`Info`: a Stat, or what
we last knew of it, `KnownInfo`; `NOT_FOUND`), what the journal holds for it (`Pending`), and the
Jupyter model built from them (`base_model`, times as tz-aware datetimes, lock helpers). The times a
model presents are `contents/presented.py`'s.
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
) -> Model:
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


#: A Jupyter contents model: jupyter_server's dict of JSON values and datetimes (its REST shape).
Model: TypeAlias = dict[str, Any]

#: What the storage holds at a path: its Stat now, or what we last knew of it (`KnownInfo`).
Info: TypeAlias = ResourceInfo | KnownInfo
#: A Stat's answer: the path's `Info`, or `NOT_FOUND`.
Stat: TypeAlias = ResourceInfo | KnownInfo | Literal[Missing.NOT_FOUND]
