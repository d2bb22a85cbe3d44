"""The namespace over a root directory: mounts, confinement, ids, etags, versions, xattrs, recycle,
upload sessions and quota, with their state in SQLite.

Everything here is synchronous and serialised by one re-entrant lock; the async layers call it through a
worker thread so blocking file I/O never runs on the event loop. Paths are CS3 absolute paths
(``/eos/user/e/einstein/a.ipynb``); ``disk`` is where that lives under ``root``.

Why it is one long class: it is the emulated storage provider, and every mutation with its checks runs
under its one lock (docs/emulator.md, "Concurrency"); splitting it would spread that lock across modules.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import mimetypes
import os
import shutil
import sqlite3
import threading
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .auth import user_id_proto
from .clock import Clock
from .config import STATE_DIR_NAME, EmulatorConfig, UserSpec
from .errors import CS3Error, HTTPError

DIR_MIME = "httpd/unix-directory"
RESERVED_KEYS = {"reva.lockpayload", "app.lock"}

_ALL = [f.name for f in res.ResourcePermissions.DESCRIPTOR.fields]
OWNER_PERMS = res.ResourcePermissions(**dict.fromkeys(_ALL, True))
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (
    path TEXT PRIMARY KEY, id TEXT UNIQUE NOT NULL,
    content_gen INTEGER NOT NULL DEFAULT 0, tree_gen INTEGER NOT NULL DEFAULT 0,
    checksum TEXT, ck_mtime_ns INTEGER, ck_size INTEGER);
CREATE TABLE IF NOT EXISTS xattrs (id TEXT, key TEXT, value TEXT, PRIMARY KEY (id, key));
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, lock_id TEXT, type INTEGER, user_idp TEXT, user_opaque TEXT,
    app_name TEXT, expiration REAL, creation_time REAL);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT, key TEXT, size INTEGER, mtime_ns INTEGER, etag TEXT, seq INTEGER,
    PRIMARY KEY (id, key));
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, username TEXT, disk TEXT, path TEXT, length INTEGER, offset INTEGER,
    expires REAL, lock_id TEXT, mtime TEXT, if_match TEXT, if_not_exist INTEGER,
    if_unmodified_since REAL, adler INTEGER, state TEXT, checksum TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS recycle (
    key TEXT PRIMARY KEY, username TEXT, path TEXT, disk TEXT, id TEXT, type INTEGER, size INTEGER,
    deletion_time REAL);
CREATE TABLE IF NOT EXISTS shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_storage TEXT, resource_space TEXT, resource_opaque TEXT,
    owner TEXT, creator TEXT, grantee_type INTEGER, grantee TEXT, permissions BLOB,
    ctime REAL, mtime REAL, expiration REAL, description TEXT);
CREATE TABLE IF NOT EXISTS received (
    share_id INTEGER, username TEXT, state INTEGER, hidden INTEGER, PRIMARY KEY (share_id, username));
CREATE TABLE IF NOT EXISTS public_shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT UNIQUE, resource_storage TEXT, resource_space TEXT,
    resource_opaque TEXT, owner TEXT, creator TEXT, permissions BLOB, ctime REAL, mtime REAL,
    password_hash TEXT, expiration REAL, display_name TEXT, description TEXT, quicklink INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
"""


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


class Storage:
    """``emu.storage``: the namespace plus the test hooks (external edits, foreign locks, quota)."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.mutex = threading.RLock()
        assert config.state_dir is not None
        self.state_dir = config.state_dir
        for sub in ("versions", "uploads", "recycle", "tmp"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # users' passwords (hashed), shares, links: not for other accounts
        self.db = sqlite3.connect(self.state_dir / "state.db", check_same_thread=False, isolation_level=None)
        (self.state_dir / "state.db").chmod(0o600)  # SQLite gives its -wal and -shm files the same mode
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        upload_columns = {r["name"] for r in self.db.execute("PRAGMA table_info(uploads)")}
        if "checksum" not in upload_columns:  # a state dir from before Upload-Checksum support
            self.db.execute("ALTER TABLE uploads ADD COLUMN checksum TEXT NOT NULL DEFAULT ''")
        self.mounts = self._build_mounts()
        self._quota_total_override: int | None = None
        self._quota_used_override: int | None = None
        self._used_cache: dict[str, tuple[float, int]] = {}
        self._fail_next_write: int | None = None
        self._sha1_cache: dict[tuple[str, int, int, int], str] = {}
        self._fail_next_lock: str | None = None
        # Imported late: locks.py needs Storage's helpers.
        from .locks import LockTable

        self.locks = LockTable(self)

    def close(self) -> None:
        with self.mutex:
            self.db.close()

    # ------------------------------------------------------------------ mounts and resolution
    def _build_mounts(self) -> list[Mount]:
        cfg = self.config
        mounts: list[Mount] = []
        for user in cfg.users:
            if cfg.single_user is not None and user.username != cfg.single_user:
                continue
            disk = cfg.root if cfg.single_user else cfg.root / user.username
            mounts.append(Mount(cfg.home(user.username), disk, "personal", user.username, user))
        for name, directory in cfg.projects.items():
            disk = Path(directory)
            if not disk.is_absolute():
                state_dir = cfg.state_dir or cfg.root / STATE_DIR_NAME
                disk = (state_dir / "projects" / directory) if cfg.single_user else cfg.root / directory
            mounts.append(Mount(cfg.project_path(name), disk, "project", name, None))
        return mounts

    def home_mount(self, user: UserSpec) -> Mount | None:
        return next((m for m in self.mounts if m.kind == "personal" and m.owner == user), None)

    def ensure_home(self, user: UserSpec) -> None:
        """Reva creates the home on the first (non-machine) login."""
        mount = self.home_mount(user)
        if mount is not None:
            mount.disk.mkdir(parents=True, exist_ok=True)

    def ensure_projects(self) -> None:
        for mount in self.mounts:
            if mount.kind == "project":
                mount.disk.mkdir(parents=True, exist_ok=True)

    def resolve(self, ref: res.Reference, user: UserSpec | None) -> Node:
        """Reference -> Node with the caller's permissions. ``user=None`` = admin (test hooks)."""
        if ref.resource_id.opaque_id:
            return self._resolve_id(ref.resource_id.opaque_id, ref.path, user)
        if ref.path.startswith("/"):
            return self.resolve_path(ref.path, user)
        raise CS3Error.internal("ref is invalid")

    def resolve_path(self, path: str, user: UserSpec | None) -> Node:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts or any("\x00" in p for p in parts):
            raise CS3Error.denied("path outside the namespace")
        cs3_path = "/" + "/".join(parts)
        mount = self._mount_for_path(cs3_path)
        if mount is None:
            if any(self._is_ancestor(cs3_path, m.prefix) for m in self._visible_mounts(user)):
                return Node(cs3_path, None, None, VIRTUAL_PERMS)
            raise CS3Error.denied("path outside the namespace")
        rel = cs3_path[len(mount.prefix) :].lstrip("/")
        disk = mount.disk / rel if rel else mount.disk
        self._confine(disk, mount)
        return Node(cs3_path, disk, mount, self._perms(mount, disk, user))

    def _resolve_id(self, opaque_id: str, rel: str, user: UserSpec | None) -> Node:
        base = self.disk_for_id(split_version_ref(opaque_id)[0])
        if base is None:
            raise CS3Error.not_found("path not found")
        mount = self._mount_for_disk(base)
        if mount is None:
            raise CS3Error.not_found("path not found")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise CS3Error.denied("path outside the namespace")
        disk = base.joinpath(*parts) if parts else base
        self._confine(disk, mount)
        return Node(self.cs3_path(mount, disk), disk, mount, self._perms(mount, disk, user))

    @staticmethod
    def _is_ancestor(parent: str, child: str) -> bool:
        return parent == "/" or child == parent or child.startswith(parent + "/")

    def _mount_for_path(self, cs3_path: str) -> Mount | None:
        best: Mount | None = None
        for m in self.mounts:
            if (cs3_path == m.prefix or cs3_path.startswith(m.prefix + "/")) and (
                best is None or len(m.prefix) > len(best.prefix)
            ):
                best = m
        return best

    def _mount_for_disk(self, disk: Path) -> Mount | None:
        best: Mount | None = None
        for m in self.mounts:
            if (disk == m.disk or m.disk in disk.parents) and (
                best is None or len(str(m.disk)) > len(str(best.disk))
            ):
                best = m
        return best

    def cs3_path(self, mount: Mount, disk: Path) -> str:
        rel = disk.relative_to(mount.disk).as_posix()
        return mount.prefix if rel == "." else f"{mount.prefix}/{rel}"

    def _confine(self, disk: Path, mount: Mount) -> None:
        """Nothing outside the mount (symlinks included) and nothing in the state dir is reachable."""
        real = Path(os.path.realpath(disk))
        mount_real = Path(os.path.realpath(mount.disk))
        if real != mount_real and mount_real not in real.parents:
            raise CS3Error.denied("path outside the namespace")
        state_real = Path(os.path.realpath(self.state_dir))
        in_state = real == state_real or state_real in real.parents
        mount_in_state = mount_real == state_real or state_real in mount_real.parents
        if in_state and not mount_in_state:
            raise CS3Error.denied("path outside the namespace")

    def visible(self, disk: Path, mount: Mount) -> bool:
        try:
            self._confine(disk, mount)
        except CS3Error:
            return False
        return True

    def _visible_mounts(self, user: UserSpec | None) -> list[Mount]:
        if user is None:
            return list(self.mounts)
        return [m for m in self.mounts if m.kind == "project" or m.owner == user]

    def _perms(self, mount: Mount, disk: Path, user: UserSpec | None) -> res.ResourcePermissions:
        if user is None or mount.kind == "project" or mount.owner == user:
            return OWNER_PERMS
        granted = self.granted_perms(disk, user)
        if granted is None:
            raise CS3Error.denied("permission denied")
        return granted

    def granted_perms(self, disk: Path, user: UserSpec) -> res.ResourcePermissions | None:
        """The union of the permissions of unexpired shares to ``user`` covering ``disk``."""
        now = self.clock.now()
        with self.mutex:
            rows = self.db.execute(
                "SELECT resource_opaque, grantee_type, grantee, permissions, expiration FROM shares"
            ).fetchall()
        result: res.ResourcePermissions | None = None
        for row in rows:
            if row["expiration"] and row["expiration"] < now:
                continue
            if row["grantee_type"] == res.GRANTEE_TYPE_USER and row["grantee"] != user.opaque_id:
                continue
            if row["grantee_type"] == res.GRANTEE_TYPE_GROUP and row["grantee"] not in user.groups:
                continue
            shared = self.disk_for_id(row["resource_opaque"])
            if shared is None or not (disk == shared or shared in disk.parents):
                continue
            perms = res.ResourcePermissions()
            perms.ParseFromString(row["permissions"])
            if result is None:
                result = res.ResourcePermissions()
            for name in _ALL:
                if getattr(perms, name):
                    setattr(result, name, True)
        return result

    @staticmethod
    def require(node: Node, permission: str) -> None:
        if not getattr(node.perms, permission):
            raise CS3Error.denied("permission denied")

    @staticmethod
    def require_http(node: Node, permission: str) -> None:
        if not getattr(node.perms, permission):
            raise HTTPError(403, "permission denied")

    # ------------------------------------------------------------------ ids and generations
    def file_id(self, disk: Path) -> str:
        """The stable opaque id of ``disk``, assigned on first sight."""
        with self.mutex:
            row = self.db.execute("SELECT id FROM ids WHERE path=?", (str(disk),)).fetchone()
            if row:
                return row["id"]
            new_id = uuid.uuid4().hex
            self.db.execute("INSERT INTO ids (path, id) VALUES (?, ?)", (str(disk), new_id))
            return new_id

    def disk_for_id(self, opaque_id: str) -> Path | None:
        with self.mutex:
            row = self.db.execute("SELECT path FROM ids WHERE id=?", (opaque_id,)).fetchone()
        if row is None:
            return None
        disk = Path(row["path"])
        return disk if os.path.lexists(disk) else None

    def _row(self, disk: Path) -> sqlite3.Row:
        self.file_id(disk)
        return self.db.execute("SELECT * FROM ids WHERE path=?", (str(disk),)).fetchone()

    def bump_content(self, disk: Path) -> None:
        with self.mutex:
            self.file_id(disk)
            self.db.execute("UPDATE ids SET content_gen = content_gen + 1 WHERE path=?", (str(disk),))

    def bump_tree(self, disk: Path) -> None:
        """A server-side change at ``disk``: every ancestor directory up to its mount root gets a new
        tree generation, so directory etags change all the way up to the home."""
        mount = self._mount_for_disk(disk)
        if mount is None:
            return
        with self.mutex:
            node = disk
            while True:
                if node != disk or node.is_dir():
                    self.file_id(node)
                    self.db.execute("UPDATE ids SET tree_gen = tree_gen + 1 WHERE path=?", (str(node),))
                if node == mount.disk:
                    break
                node = node.parent
            self._used_cache.pop(str(mount.disk), None)

    def _rename_ids(self, src: Path, dst: Path) -> None:
        s = str(src)
        rows = self.db.execute(
            "SELECT path FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/")
        ).fetchall()
        self.db.execute("DELETE FROM ids WHERE path=?", (str(dst),))
        for row in rows:
            new = str(dst) + row["path"][len(s) :]
            self.db.execute("DELETE FROM ids WHERE path=?", (new,)) if row["path"] != s else None
            self.db.execute("UPDATE ids SET path=? WHERE path=?", (new, row["path"]))

    def _drop_ids(self, disk: Path) -> list[str]:
        s = str(disk)
        rows = self.db.execute(
            "SELECT id FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/")
        ).fetchall()
        self.db.execute("DELETE FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/"))
        return [r["id"] for r in rows]

    def etag(self, disk: Path, st: os.stat_result | None = None) -> str:
        st = st or os.stat(disk)
        with self.mutex:
            row = self._row(disk)
        if os.path.isdir(disk):
            raw = f"{row['id']}:{st.st_mtime_ns}:{row['tree_gen']}"
        else:
            raw = f"{row['id']}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}:{row['content_gen']}"
        return '"' + hashlib.md5(raw.encode()).hexdigest() + '"'

    def checksum(self, disk: Path, st: os.stat_result) -> str:
        """adler32 of the content, cached against (mtime_ns, size); external files are hashed lazily."""
        with self.mutex:
            row = self._row(disk)
            if row["checksum"] and row["ck_mtime_ns"] == st.st_mtime_ns and row["ck_size"] == st.st_size:
                return row["checksum"]
        value = 1
        with open(disk, "rb") as f:
            while chunk := f.read(1 << 20):
                value = zlib.adler32(chunk, value)
        self._store_checksum(disk, adler32_hex(value), st)
        return adler32_hex(value)

    def _store_checksum(self, disk: Path, checksum: str, st: os.stat_result) -> None:
        with self.mutex:
            self.file_id(disk)
            self.db.execute(
                "UPDATE ids SET checksum=?, ck_mtime_ns=?, ck_size=? WHERE path=?",
                (checksum, st.st_mtime_ns, st.st_size, str(disk)),
            )

    def _next_seq(self) -> int:
        with self.mutex:
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0)")
            self.db.execute("UPDATE meta SET value = value + 1 WHERE key='seq'")
            return self.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0]

    # ------------------------------------------------------------------ ResourceInfo
    def owner_id(self, mount: Mount) -> user_res.UserId:
        if mount.owner is not None:
            return user_id_proto(mount.owner)
        return user_res.UserId(
            idp=self.config.idp, opaque_id=f"{mount.name}-project", type=user_res.USER_TYPE_SPACE_OWNER
        )

    def resource_id(self, mount: Mount, disk: Path) -> res.ResourceId:
        return res.ResourceId(
            storage_id=self.config.storage_id, space_id=mount.space_id, opaque_id=self.file_id(disk)
        )

    def _space_of(self, mount: Mount) -> res.StorageSpace:
        """``ResourceInfo.space`` (EmulatorConfig.resource_space_id: reva master's ``addSpaceInfo``
        sets a bare base32 id and no name)."""
        if self.config.resource_space_id == "bare":
            return res.StorageSpace(id=res.StorageSpaceId(opaque_id=mount.space_id), space_type=mount.kind)
        return res.StorageSpace(
            id=res.StorageSpaceId(opaque_id=f"{self.config.storage_id}${mount.space_id}"),
            space_type=mount.kind,
            name=mount.name,
        )

    def info(self, node: Node, keys: list[str] | tuple[str, ...] = ()) -> res.ResourceInfo:
        if node.virtual:
            return res.ResourceInfo(
                type=res.RESOURCE_TYPE_CONTAINER,
                id=res.ResourceId(storage_id=self.config.storage_id, opaque_id=str(uuid.uuid4())),
                path=node.path,
                name=node.path.rsplit("/", 1)[-1],
                mime_type=DIR_MIME,
                etag='"' + uuid.uuid4().hex + '"',
                permission_set=node.perms,
                mtime=timestamp(int(self.clock.now() * 1e9)),
            )
        assert node.disk is not None and node.mount is not None
        disk, mount = node.disk, node.mount
        try:
            st = os.stat(disk)
        except (FileNotFoundError, NotADirectoryError):
            raise CS3Error.not_found("path not found when statting") from None
        is_dir = os.path.isdir(disk)
        with self.mutex:
            rid = self.resource_id(mount, disk)
            info = res.ResourceInfo(
                type=res.RESOURCE_TYPE_CONTAINER if is_dir else res.RESOURCE_TYPE_FILE,
                id=rid,
                path=node.path,
                name=disk.name if not node.is_root else node.path.rsplit("/", 1)[-1],
                etag=self.etag(disk, st),
                mtime=timestamp(self.presented_mtime_ns(st)),
                size=self._tree_size(disk)
                if is_dir and self.config.dir_size == "tree"
                else (0 if is_dir else st.st_size),
                mime_type=DIR_MIME
                if is_dir
                else (mimetypes.guess_type(disk.name)[0] or "application/octet-stream"),
                permission_set=node.perms,
                owner=self.owner_id(mount),
                space=self._space_of(mount),
            )
            if not node.is_root:
                info.parent_id.CopyFrom(self.resource_id(mount, disk.parent))
            for key, value in self.xattrs(rid.opaque_id, keys).items():
                info.arbitrary_metadata.metadata[key] = value
            lock = self.locks.get(rid.opaque_id, keep_expired=bool(self.config.stat_reports_expired_locks))
            if lock is not None:
                info.lock.CopyFrom(lock)
        if not is_dir and st.st_size == 0 and not self.config.empty_file_checksum:
            pass  # EOS: no adler32 for an empty file (storage behaviours row 8)
        elif not is_dir:
            adler = self.checksum(disk, st)
            if self.config.checksum_type == "sha1":
                info.checksum.CopyFrom(
                    res.ResourceChecksum(type=res.RESOURCE_CHECKSUM_TYPE_SHA1, sum=self.sha1(disk, st))
                )
                info.opaque.map["adler32"].CopyFrom(
                    types_pb2.OpaqueEntry(decoder="plain", value=adler.encode())
                )
            else:
                info.checksum.CopyFrom(
                    res.ResourceChecksum(type=res.RESOURCE_CHECKSUM_TYPE_ADLER32, sum=adler)
                )
        elif "tus" not in (self.config.upload_protocols or []) and self.config.profile == "cernbox":
            info.opaque.map["disable_tus"].CopyFrom(types_pb2.OpaqueEntry(decoder="plain", value=b"true"))
        return info

    def presented_mtime_ns(self, st: os.stat_result) -> int:
        """The mtime a ResourceInfo shows: whole seconds on EOS (EmulatorConfig.mtime_whole_seconds)."""
        if self.config.mtime_whole_seconds:
            return st.st_mtime_ns // 1_000_000_000 * 1_000_000_000
        return st.st_mtime_ns

    def relative_path(self, info: res.ResourceInfo, node: Node) -> None:
        """oCIS's gateway answers Stat/ListContainer with paths relative to the space: the basename,
        "." for a space root (EmulatorConfig.info_paths)."""
        if self.config.info_paths == "basename" and not node.virtual and node.disk is not None:
            info.path = "." if node.is_root else node.disk.name

    def sha1(self, disk: Path, st: os.stat_result) -> str:
        """SHA1 of the content (oCIS's checksum), cached in memory against (inode, mtime_ns, size)."""
        key = (str(disk), st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._sha1_cache.get(key)
        if cached is None:
            h = hashlib.sha1()
            with open(disk, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if len(self._sha1_cache) > 10_000:
                self._sha1_cache.clear()
            cached = self._sha1_cache[key] = h.hexdigest()
        return cached

    def _tree_size(self, disk: Path) -> int:
        total = 0
        for dirpath, dirnames, filenames in os.walk(disk):
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != self.state_dir]
            for name in filenames:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    def children(self, node: Node, user: UserSpec | None) -> list[Node]:
        """The visible children of a container (the state dir and escaping symlinks are omitted)."""
        if node.virtual:
            return self._virtual_children(node.path, user)
        assert node.disk is not None and node.mount is not None
        if not node.disk.exists():
            raise CS3Error.not_found("path not found when listing container")
        if not node.disk.is_dir():
            raise CS3Error.internal("error listing container: not a directory")
        out = []
        for entry in sorted(os.listdir(node.disk)):
            disk = node.disk / entry
            if not self.visible(disk, node.mount) or not disk.exists():
                continue
            out.append(Node(f"{node.path.rstrip('/')}/{entry}", disk, node.mount, node.perms))
        return out

    def _virtual_children(self, path: str, user: UserSpec | None) -> list[Node]:
        seen: dict[str, Node] = {}
        for mount in self._visible_mounts(user):
            if not self._is_ancestor(path, mount.prefix) or mount.prefix == path:
                continue
            rest = mount.prefix[len(path) :].lstrip("/")
            child = f"{path.rstrip('/')}/{rest.split('/')[0]}"
            if child == mount.prefix:
                if mount.disk.exists():
                    seen[child] = Node(child, mount.disk, mount, self._perms(mount, mount.disk, user))
            else:
                seen.setdefault(child, Node(child, None, None, VIRTUAL_PERMS))
        return [seen[k] for k in sorted(seen)]

    # ------------------------------------------------------------------ xattrs
    def xattrs(self, opaque_id: str, keys: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
        with self.mutex:
            rows = self.db.execute("SELECT key, value FROM xattrs WHERE id=?", (opaque_id,)).fetchall()
        values = {r["key"]: r["value"] for r in rows}
        if self.config.metadata_keys == "filtered":
            if "*" in keys:
                return values
            return {k: v for k, v in values.items() if k in keys}
        return values

    def set_xattrs(self, node: Node, values: dict[str, str]) -> None:
        if not values or any(not k or not v for k, v in values.items()):
            raise CS3Error.internal("error setting arbitrary metadata: empty key or value")
        if RESERVED_KEYS & set(values):
            raise CS3Error.internal("error setting arbitrary metadata: reserved key")
        disk = self._existing(node, "path not found when setting arbitrary metadata")
        with self.mutex:
            opaque_id = self.file_id(disk)
            for key, value in values.items():
                if key == "mtime" and self.config.localfs_mtime_key:
                    seconds = float(value)
                    os.utime(disk, ns=(int(seconds * 1e9), int(seconds * 1e9)))
                    continue
                self.db.execute(
                    "INSERT OR REPLACE INTO xattrs (id, key, value) VALUES (?, ?, ?)", (opaque_id, key, value)
                )

    def unset_xattrs(self, node: Node, keys: list[str]) -> None:
        if not keys or any(not k for k in keys):
            raise CS3Error.internal("error unsetting arbitrary metadata: empty key")
        disk = self._existing(node, "path not found when unsetting arbitrary metadata")
        with self.mutex:
            opaque_id = self.file_id(disk)
            for key in keys:
                self.db.execute("DELETE FROM xattrs WHERE id=? AND key=?", (opaque_id, key))

    def _existing(self, node: Node, message: str) -> Path:
        if node.virtual or node.disk is None or not node.disk.exists():
            raise CS3Error.not_found(message)
        return node.disk

    # ------------------------------------------------------------------ namespace mutations
    def mkdir(self, node: Node) -> None:
        if node.virtual:
            raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "container already exists")
        assert node.disk is not None
        with self.mutex:
            if node.disk.exists():
                if self.config.mkdir_existing == "mkdir_p" and node.disk.is_dir():
                    return
                raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "container already exists")
            if self.config.mkdir_existing == "mkdir_p":
                node.disk.mkdir(parents=True)
            else:
                if not node.disk.parent.is_dir():
                    raise CS3Error.not_found("path not found when creating container")
                node.disk.mkdir()
            self.file_id(node.disk)
            self.bump_tree(node.disk)

    def touch(self, node: Node) -> None:
        if node.virtual:
            raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "file already exists")
        disk = node.disk
        assert disk is not None
        with self.mutex:
            if disk.exists():
                if self.config.touch_existing == "already_exists" or disk.is_dir():
                    raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "file already exists")
                now_ns = max(int(self.clock.now() * 1e9), os.stat(disk).st_mtime_ns + 1)
                os.utime(disk, ns=(now_ns, now_ns))
            else:
                if not disk.parent.is_dir():
                    raise CS3Error.not_found("path not found when touching the file")
                disk.touch()
                now_ns = int(self.clock.now() * 1e9)
                os.utime(disk, ns=(now_ns, now_ns))
                self.file_id(disk)
            self.bump_tree(disk)

    def delete(self, node: Node, user: UserSpec | None) -> None:
        if node.virtual or node.is_root:
            raise CS3Error.internal("can't delete mount path")
        disk = self._existing(node, "path not found when deleting")
        with self.mutex:
            key = uuid.uuid4().hex
            target = self.state_dir / "recycle" / key
            is_dir = disk.is_dir()
            size = self._tree_size(disk) if is_dir else disk.stat().st_size
            opaque_id = self.file_id(disk)
            parent = disk.parent
            shutil.move(str(disk), str(target))
            self._drop_ids(disk)
            self.db.execute(
                "INSERT INTO recycle VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    user.username if user else "",
                    node.path,
                    str(disk),
                    opaque_id,
                    res.RESOURCE_TYPE_CONTAINER if is_dir else res.RESOURCE_TYPE_FILE,
                    size,
                    self.clock.now(),
                ),
            )
            self.db.execute("DELETE FROM locks WHERE id=?", (opaque_id,))
            self.bump_tree(parent)

    def move(self, src: Node, dst: Node) -> None:
        if src.virtual or src.is_root:
            raise CS3Error.internal("can't move mount path")
        if dst.virtual or dst.is_root:
            raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "destination already exists")
        assert src.disk is not None and dst.disk is not None
        if src.mount != dst.mount:
            raise CS3Error(code_pb2.CODE_UNIMPLEMENTED, "cross storage copy not yet implemented")
        with self.mutex:
            if not src.disk.exists():
                raise CS3Error.not_found("path not found when moving")
            if not dst.disk.parent.is_dir():
                raise CS3Error.not_found("path not found when moving: destination parent")
            if dst.disk == src.disk or src.disk in dst.disk.parents:
                raise CS3Error.internal("error moving: destination inside source")
            target = dst.disk
            if self.config.move_onto_existing == "eos" and target.is_dir():
                # EOS renames like `mv`: onto an existing folder, the source goes *into* it (the
                # sources do not say what EOS does there; this is the hostile reading: the item
                # silently lands one level deeper). Onto an existing file: an error (INTERNAL once
                # untyped_errors retypes it).
                target = target / src.disk.name
            if target.exists() and (
                self.config.move_onto_existing in ("already_exists", "eos") or target.is_dir()
            ):
                raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "destination already exists")
            if target != dst.disk and (target == src.disk or src.disk in target.parents):
                raise CS3Error.internal("error moving: destination inside source")
            st = os.stat(src.disk)
            os.replace(src.disk, target)
            # A directory's mtime may change when its ".." entry is rewritten; keep it, so the etag of
            # the moved item stays the same (as on EOS).
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
            self._rename_ids(src.disk, target)
            self.bump_tree(src.disk.parent)
            self.bump_tree(target.parent)

    # ------------------------------------------------------------------ versions
    def versions_dir(self, opaque_id: str) -> Path:
        return self.state_dir / "versions" / opaque_id

    def list_versions(self, node: Node) -> list[res.FileVersion]:
        disk = self._existing(node, "path not found when listing versions")
        if disk.is_dir():
            return []
        with self.mutex:
            rows = self.db.execute(
                "SELECT * FROM versions WHERE id=? ORDER BY seq DESC", (self.file_id(disk),)
            ).fetchall()
        return [
            res.FileVersion(
                key=r["key"], size=r["size"], mtime=r["mtime_ns"] // 1_000_000_000, etag=r["etag"]
            )
            for r in rows
        ]

    def version_file(self, disk: Path, key: str) -> Path:
        with self.mutex:
            opaque_id = self.file_id(disk)
            row = self.db.execute(
                "SELECT key FROM versions WHERE id=? AND key=?", (opaque_id, key)
            ).fetchone()
        path = self.versions_dir(opaque_id) / key
        if row is None or not path.exists():
            raise CS3Error.not_found("version not found")
        return path

    def _archive(self, disk: Path) -> None:
        """Keep the current content of ``disk`` as a version (hard link when possible)."""
        st = os.stat(disk)
        opaque_id = self.file_id(disk)
        seq = self._next_seq()
        if self.config.version_keys == "decomposedfs":
            ns = st.st_mtime_ns
            key = f"{opaque_id}{REV_SEP}{rfc3339_ns(ns)}"
            while self.db.execute("SELECT 1 FROM versions WHERE id=? AND key=?", (opaque_id, key)).fetchone():
                ns += 1  # two writes within one clock tick: keep keys unique
                key = f"{opaque_id}{REV_SEP}{rfc3339_ns(ns)}"
        else:
            key = f"{st.st_mtime_ns // 1_000_000_000}.{seq:08x}"
        vdir = self.versions_dir(opaque_id)
        vdir.mkdir(parents=True, exist_ok=True)
        try:
            os.link(disk, vdir / key)
        except OSError:
            shutil.copy2(disk, vdir / key)
        self.db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (opaque_id, key, st.st_size, st.st_mtime_ns, self.etag(disk, st), seq),
        )
        rows = self.db.execute(
            "SELECT key FROM versions WHERE id=? ORDER BY seq DESC", (opaque_id,)
        ).fetchall()
        for old in rows[self.config.max_versions :]:
            self.db.execute("DELETE FROM versions WHERE id=? AND key=?", (opaque_id, old["key"]))
            (vdir / old["key"]).unlink(missing_ok=True)

    def restore_version(self, node: Node, key: str) -> None:
        disk = self._existing(node, "path not found when restoring file version")
        with self.mutex:
            source = self.version_file(disk, key)
            tmp = self.state_dir / "tmp" / uuid.uuid4().hex
            shutil.copyfile(source, tmp)
            self._archive(disk)
            os.replace(tmp, disk)
            now_ns = int(self.clock.now() * 1e9)
            os.utime(disk, ns=(now_ns, now_ns))
            self.bump_content(disk)
            self.bump_tree(disk)

    # ------------------------------------------------------------------ uploads
    def gc_sessions(self) -> None:
        """Drop upload sessions whose transfer token has expired (and their partial data)."""
        with self.mutex:
            rows = self.db.execute(
                "SELECT id FROM uploads WHERE expires <= ?", (self.clock.now(),)
            ).fetchall()
        for row in rows:
            self.finish_session(row["id"])

    def create_session(self, node: Node, user: UserSpec, length: int, **fields: Any) -> Session:
        self.gc_sessions()
        session = Session(
            id=uuid.uuid4().hex,
            username=user.username,
            disk=node.disk,  # type: ignore[arg-type]
            path=node.path,
            length=length,
            offset=0,
            expires=self.clock.now() + fields.pop("ttl"),
            lock_id=fields.get("lock_id", ""),
            mtime=fields.get("mtime", ""),
            if_match=fields.get("if_match", ""),
            if_not_exist=fields.get("if_not_exist", False),
            if_unmodified_since=fields.get("if_unmodified_since", 0.0),
            adler=1,
            state="open",
            checksum=fields.get("checksum", ""),
        )
        with self.mutex:
            self.db.execute(
                "INSERT INTO uploads (id, username, disk, path, length, offset, expires, lock_id, mtime,"
                " if_match, if_not_exist, if_unmodified_since, adler, state, checksum)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.username,
                    str(session.disk),
                    session.path,
                    session.length,
                    0,
                    session.expires,
                    session.lock_id,
                    session.mtime,
                    session.if_match,
                    int(session.if_not_exist),
                    session.if_unmodified_since,
                    1,
                    "open",
                    session.checksum,
                ),
            )
        self.upload_file(session.id).touch()
        return session

    def upload_file(self, session_id: str) -> Path:
        return self.state_dir / "uploads" / f"{session_id}.bin"

    def session(self, session_id: str) -> Session | None:
        """An open, unexpired session (expired ones are garbage-collected here)."""
        with self.mutex:
            row = self.db.execute("SELECT * FROM uploads WHERE id=?", (session_id,)).fetchone()
            if row is None or row["state"] != "open":
                return None
            session = Session.from_row(row)
            if session.expires <= self.clock.now():
                self.finish_session(session_id)
                return None
            return session

    def claim_session(self, session_id: str) -> Session | None:
        """For a simple PUT: the session is consumed whatever happens next."""
        with self.mutex:
            session = self.session(session_id)
            if session is not None:
                self.db.execute("UPDATE uploads SET state='used' WHERE id=?", (session_id,))
            return session

    def record_progress(self, session_id: str, offset: int, adler: int) -> None:
        with self.mutex:
            self.db.execute("UPDATE uploads SET offset=?, adler=? WHERE id=?", (offset, adler, session_id))

    def reopen_session(self, session_id: str) -> None:
        """A replayable (EOS) session after a PUT: ready for another one until its token expires."""
        self.upload_file(session_id).touch()

    def finish_session(self, session_id: str) -> None:
        with self.mutex:
            self.db.execute("DELETE FROM uploads WHERE id=?", (session_id,))
        self.upload_file(session_id).unlink(missing_ok=True)

    def commit(self, source: Path, session: Session, ctx: WriteContext, adler: int) -> None:
        """Put an uploaded file in place: lock, precondition and quota checks, archive the old content
        as a version, atomic replace, new etag. Raises HTTPError with the data-plane status."""
        disk = session.disk
        with self.mutex:
            if not disk.parent.is_dir():
                raise HTTPError(
                    409 if self.config.upload_missing_parent == "put_409" else 404, "parent folder gone"
                )
            if disk.is_dir():
                raise HTTPError(409, "target is a folder")
            exists = disk.exists()
            if session.checksum and not checksum_matches(source, session.checksum, adler):
                raise HTTPError(419, "checksum mismatch")
            self.locks.check_data_write(disk, ctx)
            if self.config.conditional_upload == "honour":
                if ctx.if_not_exist and exists:
                    raise HTTPError(412, "exists")
                if ctx.if_match and exists and self.etag(disk) != ctx.if_match:
                    raise HTTPError(412, "etag mismatch")
            size = source.stat().st_size
            old_size = disk.stat().st_size if exists else 0
            self._check_quota_for(disk, size - old_size, http=True)
            if self._fail_next_write is not None:
                code, self._fail_next_write = self._fail_next_write, None
                quota = code in (errno.ENOSPC, errno.EDQUOT)
                raise HTTPError(self.quota_http_status() if quota else 500, os.strerror(code))
            if exists and not ctx.disable_versioning:
                self._archive(disk)
            if self.config.fsync:
                fsync_file(source)
            os.replace(source, disk)
            mtime_ns = int(self.clock.now() * 1e9)
            if ctx.mtime and self.config.honour_oc_mtime:
                mtime_ns = parse_mtime_ns(ctx.mtime)
            os.utime(disk, ns=(mtime_ns, mtime_ns))
            if self.config.fsync:
                fsync_dir(disk.parent)
            self.bump_content(disk)
            self._store_checksum(disk, adler32_hex(adler), os.stat(disk))
            self.bump_tree(disk)

    # ------------------------------------------------------------------ quota
    def quota(self, node: Node) -> tuple[int, int, int | None]:
        """(total, used, remaining or None). total 0 = unlimited (ocis) or unknown."""
        if node.virtual or node.mount is None:
            raise CS3Error.not_found("path not found when getting quota")
        used = self.used_bytes(node.mount)
        total = self._quota_total_override
        if total is None:
            total = self.config.quota_total or 0
            if total == 0 and not self.config.quota_unlimited_when_zero:
                vfs = os.statvfs(node.mount.disk if node.mount.disk.exists() else self.config.root)
                total = vfs.f_blocks * vfs.f_frsize
        remaining = None
        if self.config.quota_unlimited_when_zero:
            if total:
                remaining = max(total - used, 0)
            else:
                vfs = os.statvfs(self.config.root)
                remaining = vfs.f_bavail * vfs.f_frsize
        return total, used, remaining

    def used_bytes(self, mount: Mount) -> int:
        if self._quota_used_override is not None:
            return self._quota_used_override
        key = str(mount.disk)
        now = self.clock.now()
        cached = self._used_cache.get(key)
        if cached and now - cached[0] < self.config.quota_recompute_interval:
            return cached[1]
        used = self._tree_size(mount.disk) if mount.disk.exists() else 0
        self._used_cache[key] = (now, used)
        return used

    def _check_quota_for(self, disk: Path, delta: int, *, http: bool = False) -> None:
        mount = self._mount_for_disk(disk)
        if mount is None or delta <= 0:
            return
        total = self._quota_total_override
        if total is None:
            total = self.config.quota_total or 0
        if not total:
            return
        if self.used_bytes(mount) + delta > total:
            if http:
                raise HTTPError(self.quota_http_status(), "insufficient storage")
            raise CS3Error(code_pb2.CODE_INSUFFICIENT_STORAGE, "insufficient storage")

    def quota_http_status(self) -> int:
        """507 from the storage; EOS's 507 reaches the client as 500 through Reva (quota_refusal)."""
        return 500 if self.config.quota_refusal == "put_500" else 507

    def check_quota(self, node: Node, length: int) -> None:
        assert node.disk is not None
        old = node.disk.stat().st_size if node.disk.is_file() else 0
        self._check_quota_for(node.disk, length - old)

    # ------------------------------------------------------------------ recycle
    def list_recycle(self, user: UserSpec) -> list[sqlite3.Row]:
        with self.mutex:
            return self.db.execute(
                "SELECT * FROM recycle WHERE username=? ORDER BY deletion_time DESC", (user.username,)
            ).fetchall()

    def restore_recycle(self, user: UserSpec, key: str, target: Node | None) -> None:
        with self.mutex:
            row = self.db.execute(
                "SELECT * FROM recycle WHERE key=? AND username=?", (key, user.username)
            ).fetchone()
            if row is None:
                raise CS3Error.not_found("recycle item not found")
            dest = target.disk if target is not None and target.disk is not None else Path(row["disk"])
            if dest.exists():
                raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "restore target already exists")
            if not dest.parent.is_dir():
                raise CS3Error.not_found("path not found when restoring recycle item")
            shutil.move(str(self.state_dir / "recycle" / key), str(dest))
            self.db.execute("DELETE FROM recycle WHERE key=?", (key,))
            self.db.execute("INSERT OR REPLACE INTO ids (path, id) VALUES (?, ?)", (str(dest), row["id"]))
            self.bump_tree(dest)

    def purge_recycle(self, user: UserSpec, key: str = "") -> None:
        with self.mutex:
            rows = self.list_recycle(user)
            for row in rows:
                if key and row["key"] != key:
                    continue
                target = self.state_dir / "recycle" / row["key"]
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                self.db.execute("DELETE FROM recycle WHERE key=?", (row["key"],))

    # ------------------------------------------------------------------ test hooks
    def external_write(
        self, path: str, data: bytes, *, mtime: float | None = None, version: bool = True
    ) -> None:
        """Another client writes ``path`` (a CS3 path): new content, new etag, a version of the old."""
        node = self.resolve_path(path, None)
        assert node.disk is not None
        with self.mutex:
            node.disk.parent.mkdir(parents=True, exist_ok=True)
            if node.disk.exists() and version:
                self._archive(node.disk)
            tmp = self.state_dir / "tmp" / uuid.uuid4().hex
            tmp.write_bytes(data)
            os.replace(tmp, node.disk)
            mtime_ns = int((mtime if mtime is not None else self.clock.now()) * 1e9)
            os.utime(node.disk, ns=(mtime_ns, mtime_ns))
            self.bump_content(node.disk)
            self.bump_tree(node.disk)

    def external_touch(self, path: str) -> None:
        """Another client touches ``path``: mtime moves forward (and the etag with it)."""
        node = self.resolve_path(path, None)
        assert node.disk is not None
        with self.mutex:
            if not node.disk.exists():
                node.disk.parent.mkdir(parents=True, exist_ok=True)
                node.disk.touch()
            now_ns = max(int(self.clock.now() * 1e9), os.stat(node.disk).st_mtime_ns + 1)
            os.utime(node.disk, ns=(now_ns, now_ns))
            self.bump_tree(node.disk)

    def external_mkdir(self, path: str) -> None:
        node = self.resolve_path(path, None)
        assert node.disk is not None
        with self.mutex:
            node.disk.mkdir(parents=True, exist_ok=True)
            self.bump_tree(node.disk)

    def external_delete(self, path: str) -> None:
        """Another client removes ``path`` for good (no recycle entry); its id is dropped."""
        node = self.resolve_path(path, None)
        assert node.disk is not None
        with self.mutex:
            parent = node.disk.parent
            if node.disk.is_dir() and not node.disk.is_symlink():
                shutil.rmtree(node.disk)
            else:
                node.disk.unlink(missing_ok=True)
            self._drop_ids(node.disk)
            self.bump_tree(parent)

    def read(self, path: str) -> bytes:
        """The current content of ``path`` (for assertions)."""
        node = self.resolve_path(path, None)
        assert node.disk is not None
        return node.disk.read_bytes()

    def exists(self, path: str) -> bool:
        node = self.resolve_path(path, None)
        return node.disk is not None and node.disk.exists()

    def file_id_of(self, path: str) -> str:
        node = self.resolve_path(path, None)
        assert node.disk is not None
        return self.file_id(node.disk)

    def lock(
        self,
        path: str,
        app: str = "other-app",
        lock_id: str = "foreign-lock",
        user: str | None = "marie",
        expiration: float | None = 3600.0,
        lock_type: int = res.LOCK_TYPE_WRITE,
    ) -> None:
        """A lock held by another app or user; ``expiration`` is seconds from now (None = no expiry)."""
        node = self.resolve_path(path, None)
        assert node.disk is not None
        spec = self.config.user(user) if user else None
        lock = res.Lock(lock_id=lock_id, type=lock_type, app_name=app)
        if spec is not None:
            lock.user.CopyFrom(user_id_proto(spec))
        if expiration is not None:
            lock.expiration.CopyFrom(types_pb2.Timestamp(seconds=int(self.clock.now() + expiration)))
        with self.mutex:
            self.locks.put(self.file_id(node.disk), lock)

    def set_quota(self, total: int | None, used: int | None = None) -> None:
        """Override the quota total (bytes; None = back to config) and optionally the used bytes."""
        self._quota_total_override = total
        self._quota_used_override = used
        self._used_cache.clear()

    def fail_next_lock_change(self, message: str = "eosfs: error setting eos lock") -> None:
        """The next SetLock, RefreshLock or Unlock answers INTERNAL ``message``, as EOS does when setting
        its lock attribute fails on an existing file (reva master eos/locks.go ``setLock``:
        ``errors.Wrap(err, "eosfs: error setting eos lock")``, unmapped, so INTERNAL)."""
        self._fail_next_lock = message

    def take_lock_failure(self) -> str | None:
        message, self._fail_next_lock = self._fail_next_lock, None
        return message

    def fail_next_write(self, code: int = errno.ENOSPC) -> None:
        """The next data-plane commit fails with this errno (ENOSPC/EDQUOT -> 507, others -> 500)."""
        self._fail_next_write = code
