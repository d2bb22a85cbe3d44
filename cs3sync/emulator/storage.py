"""The emulated storage provider: ``emu.storage``. It resolves references to nodes with the caller's
permissions, builds ResourceInfos, applies namespace mutations and commits uploads, and composes the
parts that keep the rest of its state:

- `Mounts` (mounts.py): the spaces and confinement; `Ids` (ids.py): resource ids, etags, checksums;
- `Versions` (versions.py), `RecycleBin` (recycle.py), `UploadSessions` (sessions.py), `Quota` (quota.py);
- `LockTable` (locks.py): CS3 locks with per-profile codes;
- `ExternalChanges` (external.py): the test hooks (other clients' edits, foreign locks).

Everything here is synchronous and serialised by one re-entrant lock (`Backing.mutex`); the async layers
call it through a worker thread so blocking file I/O never runs on the event loop. Paths are CS3 absolute
paths (``/eos/user/e/einstein/a.ipynb``); ``disk`` is where that lives under ``root``. The shared
vocabulary (`Node`, `Mount`, `Session`, `WriteContext`, permission sets, helpers) is in nodes.py and
re-exported here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mimetypes
import os
import shutil
import sqlite3
import stat
import threading
import uuid
from pathlib import Path

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .auth import user_id_proto
from .backing import Backing
from .clock import Clock
from .config import EmulatorConfig, UserSpec
from .errors import CS3Error, HTTPError
from .external import ExternalChanges
from .ids import Ids
from .locks import LockTable
from .mounts import Mounts
from .nodes import (
    ALL_PERMS,
    CHECKSUM_ALGOS,
    DIR_MIME,
    EDITOR_PERMS,
    OWNER_PERMS,
    RESERVED_KEYS,
    REV_SEP,
    VIEWER_PERMS,
    VIRTUAL_PERMS,
    Mount,
    Node,
    Session,
    WriteContext,
    adler32_hex,
    checksum_matches,
    existing,
    fsync_dir,
    fsync_file,
    parse_checksum,
    parse_mtime_ns,
    rfc3339_ns,
    space_id_for,
    split_version_ref,
    timestamp,
    tree_size,
)
from .quota import Quota
from .recycle import RecycleBin
from .sessions import UploadSessions
from .versions import Versions

__all__ = [
    "CHECKSUM_ALGOS",
    "DIR_MIME",
    "EDITOR_PERMS",
    "OWNER_PERMS",
    "RESERVED_KEYS",
    "REV_SEP",
    "VIEWER_PERMS",
    "VIRTUAL_PERMS",
    "Mount",
    "Node",
    "Session",
    "Storage",
    "WriteContext",
    "adler32_hex",
    "checksum_matches",
    "parse_checksum",
    "parse_mtime_ns",
    "rfc3339_ns",
    "space_id_for",
    "split_version_ref",
    "timestamp",
]

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
        self._fail_next_write: int | None = None
        self._sha1_cache: dict[tuple[str, int, int, int], str] = {}
        self._fail_next_lock: str | None = None
        # The parts, on one shared backing (settings, clock, db, lock).
        backing = Backing(config, clock, self.db, self.mutex, self.state_dir)
        self.mount_table = Mounts(backing)
        self.mounts = self.mount_table.mounts
        self.space_quota = Quota(backing, self.mount_table)
        self.ids = Ids(backing, self.mount_table, self.space_quota)
        self.locks = LockTable(backing, self.ids)
        self.versions = Versions(backing, self.ids)
        self.uploads = UploadSessions(backing)
        self.recycle = RecycleBin(backing, self.ids)
        self.external = ExternalChanges(backing, self.ids, self.versions, self.locks, self.resolve_path)
        # The facade: the parts' methods the servicer, the data plane and the tests call, under one name.
        m, i, v, u, q, r, x = (
            self.mount_table,
            self.ids,
            self.versions,
            self.uploads,
            self.space_quota,
            self.recycle,
            self.external,
        )
        self.home_mount, self.ensure_home, self.ensure_projects = (
            m.home_mount,
            m.ensure_home,
            m.ensure_projects,
        )
        self.cs3_path, self.visible = m.cs3_path, m.visible
        self.file_id, self.disk_for_id, self.etag, self.checksum = (
            i.file_id,
            i.disk_for_id,
            i.etag,
            i.checksum,
        )
        self.bump_content, self.bump_tree = i.bump_content, i.bump_tree
        self.versions_dir, self.list_versions = v.versions_dir, v.list_versions
        self.version_file, self.restore_version = v.version_file, v.restore_version
        self.gc_sessions, self.create_session, self.upload_file = (
            u.gc_sessions,
            u.create_session,
            u.upload_file,
        )
        self.session, self.claim_session, self.record_progress = u.session, u.claim_session, u.record_progress
        self.reopen_session, self.finish_session = u.reopen_session, u.finish_session
        self.quota, self.used_bytes, self.check_quota = q.quota, q.used_bytes, q.check_quota
        self.quota_http_status, self.set_quota = q.quota_http_status, q.set_quota
        self.list_recycle, self.restore_recycle, self.purge_recycle = (
            r.list_recycle,
            r.restore_recycle,
            r.purge_recycle,
        )
        self.external_write, self.external_touch = x.external_write, x.external_touch
        self.external_mkdir, self.external_delete = x.external_mkdir, x.external_delete
        self.read, self.exists, self.file_id_of, self.lock = x.read, x.exists, x.file_id_of, x.lock

    def close(self) -> None:
        with self.mutex:
            self.db.close()

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
        mount = self.mount_table.mount_for_path(cs3_path)
        if mount is None:
            if any(
                self.mount_table.is_ancestor(cs3_path, m.prefix)
                for m in self.mount_table.visible_mounts(user)
            ):
                return Node(cs3_path, None, None, VIRTUAL_PERMS)
            raise CS3Error.denied("path outside the namespace")
        rel = cs3_path[len(mount.prefix) :].lstrip("/")
        disk = mount.disk / rel if rel else mount.disk
        self.mount_table.confine(disk, mount)
        return Node(cs3_path, disk, mount, self._perms(mount, disk, user))

    def _resolve_id(self, opaque_id: str, rel: str, user: UserSpec | None) -> Node:
        base = self.disk_for_id(split_version_ref(opaque_id)[0])
        if base is None:
            raise CS3Error.not_found("path not found")
        mount = self.mount_table.mount_for_disk(base)
        if mount is None:
            raise CS3Error.not_found("path not found")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise CS3Error.denied("path outside the namespace")
        disk = base.joinpath(*parts) if parts else base
        self.mount_table.confine(disk, mount)
        return Node(self.cs3_path(mount, disk), disk, mount, self._perms(mount, disk, user))

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
            for name in ALL_PERMS:
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
        name = node.path.rsplit("/", 1)[-1] if node.is_root else disk.name
        parent = None if node.is_root else disk.parent
        infos = self._describe(mount, node.perms, [(node.path, str(disk), name)], keys, parent)
        if not infos:
            raise CS3Error.not_found("path not found when statting")
        return infos[0]

    def list_container(
        self, node: Node, user: UserSpec | None, keys: list[str] | tuple[str, ...] = ()
    ) -> list[res.ResourceInfo]:
        """ListContainer's answer: the `info` of each visible child, sorted by name, as Stat would show
        it (paths relative to the space where EmulatorConfig.info_paths says so); a child gone from the
        disk meanwhile is left out. The state dir and escaping symlinks are omitted."""
        if node.virtual:
            infos = []
            for child in self._virtual_children(node.path, user):
                try:
                    info = self.info(child, keys)
                except CS3Error:
                    continue  # vanished meanwhile
                self.relative_path(info, child)
                infos.append(info)
            return infos
        assert node.disk is not None and node.mount is not None
        if not node.disk.exists():
            raise CS3Error.not_found("path not found when listing container")
        if not node.disk.is_dir():
            raise CS3Error.internal("error listing container: not a directory")
        base, folder = node.path.rstrip("/"), str(node.disk)
        basename = self.config.info_paths == "basename"
        entries = [
            (name if basename else f"{base}/{name}", os.path.join(folder, name), name)
            for name in self.mount_table.visible_names(node.disk, node.mount)
        ]
        return self._describe(node.mount, node.perms, entries, keys, node.disk)

    def _describe(
        self,
        mount: Mount,
        perms: res.ResourcePermissions,
        entries: list[tuple[str, str, str]],
        keys: list[str] | tuple[str, ...],
        parent: Path | None,
    ) -> list[res.ResourceInfo]:
        """The ResourceInfos of ``entries`` ((path shown, disk path, name): one item for Stat, a folder's
        children for ListContainer, all in ``mount`` under ``parent``), in order; an entry missing from
        the disk is left out. The state db is read with a few queries for all of them, and ids assigned
        in one insert to those never seen: per entry, a folder of 50,000 took 20-30 s, past the
        client's deadline."""
        stats = []
        for shown, disk, name in entries:
            try:
                stats.append((shown, disk, name, os.stat(disk)))
            except (FileNotFoundError, NotADirectoryError):
                continue
        if not stats:
            return []
        cfg = self.config
        with self.mutex:
            rows = self.ids.rows([disk for _, disk, _, _ in stats])
            opaque_ids = [str(rows[disk]["id"]) for _, disk, _, _ in stats]
            parent_id = None if parent is None else self.resource_id(mount, parent)
            xattrs = self.xattrs_of(opaque_ids, keys)
            locks = self.locks.get_many(opaque_ids, keep_expired=bool(cfg.stat_reports_expired_locks))
        owner, space, space_id = self.owner_id(mount), self._space_of(mount), mount.space_id
        file_checksum = cfg.checksum_type != "sha1"
        disable_tus = "tus" not in (cfg.upload_protocols or []) and cfg.profile == "cernbox"
        computed: list[tuple[str, str, os.stat_result]] = []  # adler32s to remember
        infos = []
        for (shown, disk, name, st), opaque_id in zip(stats, opaque_ids, strict=True):
            row = rows[disk]
            is_dir = stat.S_ISDIR(st.st_mode)
            info = res.ResourceInfo(
                type=res.RESOURCE_TYPE_CONTAINER if is_dir else res.RESOURCE_TYPE_FILE,
                id=res.ResourceId(storage_id=cfg.storage_id, space_id=space_id, opaque_id=opaque_id),
                path=shown,
                name=name,
                etag=Ids.etag_of(row, st, is_dir),
                mtime=timestamp(self.presented_mtime_ns(st)),
                size=tree_size(Path(disk), self.state_dir)
                if is_dir and cfg.dir_size == "tree"
                else (0 if is_dir else st.st_size),
                mime_type=DIR_MIME
                if is_dir
                else (mimetypes.guess_type(name)[0] or "application/octet-stream"),
                permission_set=perms,
                owner=owner,
                space=space,
            )
            if parent_id is not None:
                info.parent_id.CopyFrom(parent_id)
            for key, value in xattrs.get(opaque_id, {}).items():
                info.arbitrary_metadata.metadata[key] = value
            lock = locks.get(opaque_id)
            if lock is not None:
                info.lock.CopyFrom(lock)
            if not is_dir and st.st_size == 0 and not cfg.empty_file_checksum:
                pass  # EOS: no adler32 for an empty file (storage behaviours row 8)
            elif not is_dir:
                adler = Ids.cached_checksum(row, st)
                if adler is None:
                    try:
                        adler = Ids.adler32_of(disk)
                    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                        continue  # vanished (or replaced) meanwhile
                    computed.append((disk, adler, st))
                if file_checksum:
                    info.checksum.CopyFrom(
                        res.ResourceChecksum(type=res.RESOURCE_CHECKSUM_TYPE_ADLER32, sum=adler)
                    )
                else:
                    info.checksum.CopyFrom(
                        res.ResourceChecksum(type=res.RESOURCE_CHECKSUM_TYPE_SHA1, sum=self.sha1(disk, st))
                    )
                    info.opaque.map["adler32"].CopyFrom(
                        types_pb2.OpaqueEntry(decoder="plain", value=adler.encode())
                    )
            elif disable_tus:
                info.opaque.map["disable_tus"].CopyFrom(types_pb2.OpaqueEntry(decoder="plain", value=b"true"))
            infos.append(info)
        self.ids.store_checksums(computed)
        return infos

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

    def sha1(self, disk: Path | str, st: os.stat_result) -> str:
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

    def _virtual_children(self, path: str, user: UserSpec | None) -> list[Node]:
        seen: dict[str, Node] = {}
        for mount in self.mount_table.visible_mounts(user):
            if not self.mount_table.is_ancestor(path, mount.prefix) or mount.prefix == path:
                continue
            rest = mount.prefix[len(path) :].lstrip("/")
            child = f"{path.rstrip('/')}/{rest.split('/')[0]}"
            if child == mount.prefix:
                if mount.disk.exists():
                    seen[child] = Node(child, mount.disk, mount, self._perms(mount, mount.disk, user))
            else:
                seen.setdefault(child, Node(child, None, None, VIRTUAL_PERMS))
        return [seen[k] for k in sorted(seen)]

    def xattrs(self, opaque_id: str, keys: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
        return self.xattrs_of([opaque_id], keys).get(opaque_id, {})

    def xattrs_of(
        self, opaque_ids: list[str], keys: list[str] | tuple[str, ...] = ()
    ) -> dict[str, dict[str, str]]:
        """id -> the arbitrary metadata a Stat asking for ``keys`` shows (oCIS: only the keys asked for,
        EmulatorConfig.metadata_keys), for the ids that have any."""
        with self.mutex:
            rows = self.db.execute(
                "SELECT id, key, value FROM xattrs WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(opaque_ids),),
            ).fetchall()
        everything = self.config.metadata_keys != "filtered" or "*" in keys
        values: dict[str, dict[str, str]] = {}
        for r in rows:
            if everything or r["key"] in keys:
                values.setdefault(r["id"], {})[r["key"]] = r["value"]
        return values

    def set_xattrs(self, node: Node, values: dict[str, str]) -> None:
        if not values or any(not k or not v for k, v in values.items()):
            raise CS3Error.internal("error setting arbitrary metadata: empty key or value")
        if RESERVED_KEYS & set(values):
            raise CS3Error.internal("error setting arbitrary metadata: reserved key")
        disk = existing(node, "path not found when setting arbitrary metadata")
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
        disk = existing(node, "path not found when unsetting arbitrary metadata")
        with self.mutex:
            opaque_id = self.file_id(disk)
            for key in keys:
                self.db.execute("DELETE FROM xattrs WHERE id=? AND key=?", (opaque_id, key))

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
        disk = existing(node, "path not found when deleting")
        with self.mutex:
            key = uuid.uuid4().hex
            target = self.state_dir / "recycle" / key
            is_dir = disk.is_dir()
            size = tree_size(disk, self.state_dir) if is_dir else disk.stat().st_size
            opaque_id = self.file_id(disk)
            parent = disk.parent
            shutil.move(str(disk), str(target))
            self.ids.drop(disk)
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

    def external_move(self, path: str, to: str) -> None:
        """Test hook: another client renames ``path`` to ``to`` (CS3 paths), a Move: the id stays."""
        self.move(self.resolve_path(path, None), self.resolve_path(to, None))

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
            self.ids.rename(src.disk, target)
            self.bump_tree(src.disk.parent)
            self.bump_tree(target.parent)

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
            self.space_quota.check_quota_for(disk, size - old_size, http=True)
            if self._fail_next_write is not None:
                code, self._fail_next_write = self._fail_next_write, None
                quota = code in (errno.ENOSPC, errno.EDQUOT)
                raise HTTPError(self.quota_http_status() if quota else 500, os.strerror(code))
            if exists and not ctx.disable_versioning:
                self.versions.archive(disk)
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
            self.ids.store_checksum(disk, adler32_hex(adler), os.stat(disk))
            self.bump_tree(disk)

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
