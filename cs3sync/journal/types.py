"""Plain values the journal hands out: entries, blobs, upload sessions, remote state, control.

Everything here is a frozen dataclass built from one SQLite row, so callers can keep them without
holding a connection, and nothing mutates behind their back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cs3sync.cs3.types import ResourceInfo


class Op:
    """Command kinds. ``path`` is the target; ``src_path`` is set for rename, copy and checkpoint."""

    SAVE = "save"
    MKDIR = "mkdir"
    DELETE = "delete"
    RENAME = "rename"
    COPY = "copy"
    CHECKPOINT = "checkpoint"
    ALL = frozenset({SAVE, MKDIR, DELETE, RENAME, COPY, CHECKPOINT})


class State:
    """Entry states."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    BLOCKED = "blocked"
    CONFLICT = "conflict"
    FAILED = "failed"
    DONE = "done"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"

    #: Still to be applied; these hold back later entries on intersecting paths.
    ACTIVE = frozenset({QUEUED, RUNNING, RETRYING, BLOCKED})
    #: Parked for the user: never deleted automatically, do not hold back later entries.
    PARKED = frozenset({CONFLICT, FAILED})
    #: Finished; removed by retention after a while.
    TERMINAL = frozenset({DONE, SUPERSEDED, CANCELLED})
    ALL = ACTIVE | PARKED | TERMINAL


class BlockedReason:
    OFFLINE = "offline"
    AUTH = "auth"
    PREDECESSOR = "predecessor"
    QUOTA = "quota"
    ALL = frozenset({OFFLINE, AUTH, PREDECESSOR, QUOTA})


class Resolution:
    """Why a terminal entry ended the way it did (``Entry.resolution``)."""

    SUPERSEDED = "superseded"  # a later save of the same path replaced it
    ANNIHILATED = "annihilated"  # create-then-delete while both queued
    DISCARDED = "discarded"  # `cs3sync discard`
    RESOLVED = "resolved"  # `cs3sync resolve` on a conflict / failure


@dataclass(frozen=True)
class Blob:
    """A content-addressed file in the spool: durable (fsynced and renamed into place), or being made so
    (`Spool.write`: the enqueue that references it commits once it is)."""

    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class Entry:
    """One journaled command. ``id`` is the global journal order."""

    id: int
    op: str
    path: str
    src_path: str | None
    kind: str  # "file" or "directory" (what the command acts on)
    state: str
    blocked_reason: str | None
    #: Live reference to the spool blob (None once released, e.g. after done).
    blob: str | None
    #: sha256 of the content this command carried (kept for history after the blob is released).
    sha256: str | None
    size: int | None
    base_etag: str | None
    base_fileid: str | None
    #: Failed attempts counted for backoff (the engine decides; the offline breaker does not count).
    attempts: int
    #: How often the entry was claimed. >0 means it may have reached the storage.
    claims: int
    next_attempt_at: float | None
    lease_owner: str | None
    lease_expires: float | None
    last_error: str | None
    last_error_kind: str | None
    result_etag: str | None
    result_mtime: float | None
    result_fileid: str | None
    presented_mtime: float | None
    superseded_by: int | None
    conflict_path: str | None
    resolution: str | None
    #: Set when the entry was found `running` at restart (or its lease expired): the engine must run
    #: the postcondition check ("already done?") before acting.
    needs_check: bool
    #: Large upload (size >= the journal's large threshold): claimed by the large-upload workers.
    large: bool
    #: sha256 of earlier saves of this path that this one superseded after they had been claimed
    #: (they may have reached the storage): remote content equal to one of them is our own write,
    #: not a foreign edit.
    prior_blobs: tuple[str, ...]
    extra: Mapping[str, Any]
    created_at: float
    updated_at: float
    finished_at: float | None

    @property
    def presented_at(self) -> float:
        """The modification time Jupyter is shown for this write (epoch s): the time the journal
        acknowledged it, unless the engine gave it another (a save merged with someone else's change is
        shown newer than the editor's). The one rule for it: the overlay shows it while the write is
        pending, the engine records it as ``remote_state.presented_mtime`` when the write lands, and the
        contents side presents it (contents/presented.py)."""
        return self.presented_mtime or self.created_at

    @property
    def active(self) -> bool:
        return self.state in State.ACTIVE

    @property
    def parked(self) -> bool:
        return self.state in State.PARKED

    @property
    def terminal(self) -> bool:
        return self.state in State.TERMINAL

    def paths(self) -> tuple[str, ...]:
        """Every path this entry touches (used for ordering)."""
        return (self.path,) if self.src_path is None else (self.path, self.src_path)

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> Entry:
        return cls(
            id=row["id"],
            op=row["op"],
            path=row["path"],
            src_path=row["src_path"],
            kind=row["kind"],
            state=row["state"],
            blocked_reason=row["blocked_reason"],
            blob=row["blob"],
            sha256=row["sha256"],
            size=row["size"],
            base_etag=row["base_etag"],
            base_fileid=row["base_fileid"],
            attempts=row["attempts"],
            claims=row["claims"],
            next_attempt_at=row["next_attempt_at"],
            lease_owner=row["lease_owner"],
            lease_expires=row["lease_expires"],
            last_error=row["last_error"],
            last_error_kind=row["last_error_kind"],
            result_etag=row["result_etag"],
            result_mtime=row["result_mtime"],
            result_fileid=row["result_fileid"],
            presented_mtime=row["presented_mtime"],
            superseded_by=row["superseded_by"],
            conflict_path=row["conflict_path"],
            resolution=row["resolution"],
            needs_check=bool(row["needs_check"]),
            large=bool(row["large"]),
            prior_blobs=tuple(json.loads(row["prior_blobs"] or "[]")),
            extra=json.loads(row["extra"] or "{}"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True)
class UploadRecord:
    """A server-push upload the engine started for an entry, persisted so it can resume."""

    entry_id: int
    protocol: str  # "tus" | "simple"
    endpoint: str | None
    url: str
    token: str | None  # transfer token: secret, never log it
    token_expires: float | None
    total: int
    chunk_size: int | None
    offset: int  # confirmed by the server (tus Upload-Offset)
    sent: int  # best-effort progress of the current transfer (for `status --watch`)
    checksum: str | None
    resets: int  # times the upload had to start over
    updated_at: float


@dataclass(frozen=True)
class RemoteState:
    """What we last knew about a path on the storage (for overlays, offline listings, stable mtimes)."""

    path: str
    fileid: str | None = None
    etag: str | None = None
    size: int | None = None
    mtime: float | None = None
    checksum: str | None = None
    kind: str = "file"
    #: The last_modified we returned to Jupyter for ``etag``; served until the etag changes.
    presented_mtime: float | None = None
    #: sha256 of a spool blob holding this exact version (read cache / offline reads).
    cached_blob: str | None = None
    updated_at: float = 0.0

    @classmethod
    def of(
        cls, path: str, info: ResourceInfo, observed_at: float, *, presented_mtime: float | None = None
    ) -> RemoteState:
        """The row of what a Stat or listing said of ``path`` (the one ResourceInfo -> row mapping)."""
        is_dir = info.type == "directory"
        return cls(
            path=path,
            fileid=str(info.file_id) if info.file_id else None,
            etag=info.etag or None,
            size=None if is_dir else info.size,
            mtime=info.mtime_ns / 1e9 if info.mtime_ns else None,
            checksum=info.checksum,
            kind="directory" if is_dir else "file",
            presented_mtime=presented_mtime,
            updated_at=observed_at,
        )


@dataclass(frozen=True)
class CheckpointRow:
    checkpoint_id: str
    path: str
    blob: str
    size: int
    remote_path: str | None
    entry_id: int | None
    created_at: float


@dataclass(frozen=True)
class StagingInfo:
    """State of a JupyterLab chunked upload being staged for ``path``."""

    path: str
    chunks: int  # highest chunk number received
    size: int  # bytes received so far (end of the last chunk)
    file: Path
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Control:
    """The small shared control row: written by the owner (engine state) and by the CLI (pause)."""

    paused: bool
    engine_state: str  # "online" | "offline" | "auth" | "stopped"
    last_error: str | None
    owner_pid: int | None
    heartbeat: float | None
    #: Bumped by every write from outside the owner (CLI retry/discard/resolve/pause/resume/gc), so the
    #: owner can notice them by polling ``control()``.
    generation: int
    updated_at: float


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    entry_id: int | None
    kind: str
    message: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    """Aggregates for `status`."""

    counts: Mapping[str, int]
    oldest_pending: float | None  # created_at of the oldest active entry
    bytes_to_upload: int  # sizes of active saves/copies/checkpoints minus confirmed upload offsets
    blocked: Mapping[str, int]  # active blocked entries by reason
