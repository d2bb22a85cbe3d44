"""The emulated storage's shared vocabulary: mounts (spaces), resolved nodes, upload sessions, the
writer's context, permission sets, and the small helpers (checksums, mtimes, fsync, version keys) its
parts use."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .config import UserSpec
from .errors import CS3Error

DIR_MIME = "httpd/unix-directory"
RESERVED_KEYS = {"reva.lockpayload", "app.lock"}

ALL_PERMS = [f.name for f in res.ResourcePermissions.DESCRIPTOR.fields]
OWNER_PERMS = res.ResourcePermissions(**dict.fromkeys(ALL_PERMS, True))
VIEWER_PERMS = res.ResourcePermissions(
    stat=True,
    list_container=True,
    initiate_file_download=True,
    get_path=True,
    get_quota=True,
    list_file_versions=True,
    list_grants=True,
)
EDITOR_PERMS = res.ResourcePermissions(
    stat=True,
    list_container=True,
    initiate_file_download=True,
    get_path=True,
    get_quota=True,
    list_file_versions=True,
    list_grants=True,
    create_container=True,
    delete=True,
    initiate_file_upload=True,
    move=True,
    restore_file_version=True,
    list_recycle=True,
    restore_recycle_item=True,
)
VIRTUAL_PERMS = res.ResourcePermissions(stat=True, list_container=True, get_path=True)


def space_id_for(prefix: str) -> str:
    """CERNBox space ids: base32 of the space path (pkg/spaces/utils.go)."""
    return base64.b32encode(prefix.encode()).decode()


REV_SEP = ".REV."


def split_version_ref(opaque_id: str) -> tuple[str, str]:
    """(file id, version key) of a resource id that may name a version: EOS's ``<fileid>@<key>`` or
    decomposedfs's revision id ``<fileid>.REV.<ts>``, which is the version key itself."""
    if "@" in opaque_id:
        base, _, key = opaque_id.partition("@")
        return base, key
    if REV_SEP in opaque_id:
        return opaque_id.split(REV_SEP, 1)[0], opaque_id
    return opaque_id, ""


def rfc3339_ns(ns: int) -> str:
    """decomposedfs revision timestamps: RFC 3339 with nanoseconds, UTC."""
    import datetime

    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


CHECKSUM_ALGOS = ("adler32", "md5", "sha1")


def parse_checksum(value: str) -> str:
    """Validate an ``Upload-Checksum`` ("<algo> <hex>"); returns it normalised. ValueError if bad."""
    algo, _, digest = value.strip().partition(" ")
    algo, digest = algo.lower(), digest.strip().lower()
    if algo not in CHECKSUM_ALGOS:
        raise ValueError(f"unsupported checksum algorithm {algo!r}")
    if not digest or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("checksum must be hexadecimal")
    return f"{algo} {digest}"


def checksum_matches(source: Path, expected: str, adler: int) -> bool:
    algo, _, digest = expected.partition(" ")
    if algo == "adler32":
        return int(digest, 16) == adler & 0xFFFFFFFF
    h = hashlib.new(algo)
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest() == digest


def parse_mtime_ns(value: str) -> int:
    """``X-OC-Mtime`` ("sec[.frac]") in ns. ValueError when it is not a finite non-negative number."""
    seconds = float(value)
    if not (0 <= seconds < 1e11):  # also rejects nan and inf
        raise ValueError(f"invalid mtime {value!r}")
    return int(seconds * 1e9)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def adler32_hex(value: int) -> str:
    """EOS-style adler32: lower-case hex with leading zeros trimmed."""
    return format(value & 0xFFFFFFFF, "x")


def timestamp(ns: int) -> types_pb2.Timestamp:
    return types_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


@dataclass(frozen=True)
class Mount:
    """One storage space: a CS3 path prefix served from a directory."""

    prefix: str
    disk: Path
    kind: str  # "personal" | "project"
    name: str
    owner: UserSpec | None  # None for project spaces

    @property
    def space_id(self) -> str:
        return space_id_for(self.prefix)


@dataclass
class Node:
    """A resolved reference. ``mount`` is None for the synthetic containers above all mounts."""

    path: str
    disk: Path | None
    mount: Mount | None
    perms: res.ResourcePermissions

    @property
    def virtual(self) -> bool:
        return self.mount is None

    @property
    def is_root(self) -> bool:
        return self.mount is not None and self.disk == self.mount.disk


@dataclass
class Session:
    """An upload session created by InitiateFileUpload (one id for simple and tus, as localfs)."""

    id: str
    username: str
    disk: Path
    path: str
    length: int
    offset: int
    expires: float
    lock_id: str
    mtime: str
    if_match: str
    if_not_exist: bool
    if_unmodified_since: float
    adler: int
    state: str
    checksum: str = ""  # "<algo> <hex>" from Upload-Checksum at initiate; verified at commit (419)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Session:
        d = dict(row)
        d["disk"] = Path(d["disk"])
        d["if_not_exist"] = bool(d["if_not_exist"])
        return cls(**d)


@dataclass
class WriteContext:
    """What a data-plane commit knows about the writer."""

    user: UserSpec
    lock_holder: str | None = None  # X-Lock-Holder
    lock_id: str | None = None  # X-Lock-Id or the session's lock_id
    disable_versioning: bool = False
    mtime: str = ""  # X-OC-Mtime "sec[.frac]"
    if_match: str = ""
    if_not_exist: bool = False
    if_unmodified_since: float = 0.0


def existing(node: Node, message: str) -> Path:
    """The node's file or folder; NotFound (``message``) when it is virtual or gone."""
    if node.virtual or node.disk is None or not node.disk.exists():
        raise CS3Error.not_found(message)
    return node.disk


def tree_size(disk: Path, state_dir: Path) -> int:
    """Bytes in the files under ``disk`` (the emulator's state dir, when inside, not counted)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(disk):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != state_dir]
        for name in filenames:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
