"""CS3 resource info -> Jupyter contents models, and the presented-mtime rule.

``last_modified`` must be stable: JupyterLab raises "File Changed" when the time on the server is more
than 500 ms newer than what its last save returned, and RTC compares with ``==``. So the time we
present for a file is remembered per etag (:class:`PresentedTimes`): a save presents a time, and that
same time is served until the etag changes by someone else's hand; then the storage's time is served,
never earlier than what we presented before (RTC reloads only on a strictly newer time).
"""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from contents.paths import api_name

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)


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
    lock: Any, our_holder: str, our_lock_ids: set[str] | frozenset[str] = frozenset()
) -> bool:
    """A valid lock that is not ours: neither one of our lock ids nor our holder (EOS compares the app)."""
    if lock is None:
        return False
    expiration = getattr(lock, "expiration", None)
    if expiration and expiration < time.time():
        return False
    if getattr(lock, "lock_id", None) in our_lock_ids:
        return False
    app = (getattr(lock, "app_name", "") or "").lower()
    return app != our_holder.lower()


def lock_holder_name(lock: Any) -> str:
    app = getattr(lock, "app_name", "") or ""
    user = getattr(lock, "user", "") or ""
    user = getattr(user, "opaque_id", user)
    return " ".join(str(p) for p in (app, f"({user})" if user else "") if p) or "another application"


@dataclass
class Presented:
    etag: str | None  # None while our own write is not applied yet (the next etag is ours)
    last_modified: datetime
    hash: str | None = None
    hash_algorithm: str | None = None


class PresentedTimes:
    """What we told clients about each path, so that repeated answers stay identical."""

    def __init__(self) -> None:
        self._by_path: dict[str, Presented] = {}

    def ours(
        self, cs3_path: str, last_modified: datetime, sha256: str | None, etag: str | None = None
    ) -> Presented:
        """Record a save of ours; times never go backwards for a path."""
        previous = self._by_path.get(cs3_path)
        if previous is not None and last_modified <= previous.last_modified:
            last_modified = previous.last_modified + ONE_MS
        entry = Presented(etag, last_modified, sha256, "sha256" if sha256 else None)
        self._by_path[cs3_path] = entry
        return entry

    def observe(
        self, cs3_path: str, etag: str | None, storage_time: datetime, checksum: str | None
    ) -> Presented:
        """The presented time and hash for a stat result."""
        entry = self._by_path.get(cs3_path)
        if entry is not None and (entry.etag is None or entry.etag == etag):
            if entry.etag is None:
                entry.etag = etag  # our pending write landed: this etag is ours
            if entry.hash is None:
                entry.hash, entry.hash_algorithm = hash_from_checksum(checksum)
            return entry
        hash_value, algorithm = hash_from_checksum(checksum)
        if entry is not None and storage_time <= entry.last_modified:
            storage_time = entry.last_modified + ONE_MS  # changed by someone else: strictly newer
        fresh = Presented(etag, storage_time, hash_value, algorithm)
        if entry is not None:
            self._by_path[cs3_path] = fresh
        return fresh

    def get(self, cs3_path: str) -> Presented | None:
        return self._by_path.get(cs3_path)

    def forget(self, cs3_path: str) -> None:
        prefix = cs3_path.rstrip("/") + "/"
        for key in [k for k in self._by_path if k == cs3_path or k.startswith(prefix)]:
            del self._by_path[key]

    def move(self, src: str, dst: str) -> None:
        prefix = src.rstrip("/") + "/"
        for key in [k for k in self._by_path if k == src or k.startswith(prefix)]:
            self._by_path[dst + key[len(src) :]] = self._by_path.pop(key)
