"""Protobuf messages <-> the plain values of `types`. The only module that reads CS3 messages."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any, TypeVar

import cs3.identity.group.v1beta1.resources_pb2 as grouppb
import cs3.identity.user.v1beta1.resources_pb2 as userpb
import cs3.sharing.collaboration.v1beta1.resources_pb2 as sharepb
import cs3.sharing.link.v1beta1.resources_pb2 as linkpb
import cs3.storage.provider.v1beta1.resources_pb2 as spr
import cs3.types.v1beta1.types_pb2 as ctypes

from .types import (
    FileId,
    Grantee,
    Group,
    Lock,
    PublicLink,
    Quota,
    ReceivedShare,
    ResourceInfo,
    Share,
    Space,
    User,
    Version,
)

T = TypeVar("T")
_CONTAINER = spr.RESOURCE_TYPE_CONTAINER
_PERMISSION_FIELDS = tuple(f.name for f in spr.ResourcePermissions.DESCRIPTOR.fields)
_LOCK_TYPES = {1: "shared", 2: "write", 3: "exclusive"}
_SHARE_STATES = {1: "pending", 2: "accepted", 3: "rejected"}
_SHARE_STATE_CODES = {"pending": 1, "accepted": 2, "rejected": 3}
_USER_TYPES = {
    1: "primary",
    2: "secondary",
    3: "service",
    4: "application",
    5: "guest",
    6: "federated",
    7: "lightweight",
    8: "space_owner",
}


# --- requests ---------------------------------------------------------------------------------------


def ref(path: str | None = None, file_id: FileId | None = None) -> spr.Reference:
    """An absolute reference by path, or by id (``path="."``, or a relative ``"./x"``)."""
    if file_id is not None:
        rid = spr.ResourceId(
            storage_id=file_id.storage_id, space_id=file_id.space_id, opaque_id=file_id.opaque_id
        )
        return spr.Reference(resource_id=rid, path=path or ".")
    assert path is not None
    return spr.Reference(path=path)


def resource_id(fid: FileId) -> spr.ResourceId:
    return spr.ResourceId(storage_id=fid.storage_id, space_id=fid.space_id, opaque_id=fid.opaque_id)


def opaque(values: dict[str, str]) -> ctypes.Opaque:
    return ctypes.Opaque(
        map={k: ctypes.OpaqueEntry(decoder="plain", value=v.encode()) for k, v in values.items()}
    )


def opaque_values(msg: ctypes.Opaque) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, entry in msg.map.items():
        try:
            out[k] = entry.value.decode()
        except UnicodeDecodeError:
            continue
    return out


def timestamp(seconds: float) -> ctypes.Timestamp:
    whole = int(seconds)
    return ctypes.Timestamp(seconds=whole, nanos=int((seconds - whole) * 1e9))


def permissions(names: frozenset[str] | set[str]) -> spr.ResourcePermissions:
    unknown = set(names) - set(_PERMISSION_FIELDS)
    if unknown:
        raise ValueError(f"unknown permissions: {sorted(unknown)}")
    return spr.ResourcePermissions(**dict.fromkeys(names, True))


def user_id(user: User) -> userpb.UserId:
    return userpb.UserId(idp=user.idp, opaque_id=user.opaque_id, type=1)


def grantee(g: Grantee) -> spr.Grantee:
    if g.type == "user":
        return spr.Grantee(
            type=spr.GRANTEE_TYPE_USER, user_id=userpb.UserId(idp=g.idp, opaque_id=g.opaque_id, type=1)
        )
    return spr.Grantee(
        type=spr.GRANTEE_TYPE_GROUP, group_id=grouppb.GroupId(idp=g.idp, opaque_id=g.opaque_id)
    )


def share_state_code(state: str) -> int:
    return _SHARE_STATE_CODES[state]


# --- replies ----------------------------------------------------------------------------------------


def ts(msg: Any) -> float | None:
    """A cs3 Timestamp as epoch seconds, None when unset."""
    if msg is None or (msg.seconds == 0 and msg.nanos == 0):
        return None
    return float(msg.seconds + msg.nanos / 1e9)


def _frozen(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` from a dict holding every one of its fields.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; filling
    ``__dict__`` directly builds the same object (same fields, equality, hash, repr) several times faster,
    which matters for listings of thousands of entries. Only for the plain dataclasses of `types`
    (no ``__post_init__``, no slots); ``values`` must name every field."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def file_id(msg: spr.ResourceId) -> FileId:
    return _frozen(
        FileId, {"storage_id": msg.storage_id, "space_id": msg.space_id, "opaque_id": msg.opaque_id}
    )


def lock(msg: spr.Lock) -> Lock | None:
    if not msg.lock_id and not msg.app_name:
        return None
    return Lock(
        lock_id=msg.lock_id,
        app_name=msg.app_name,
        user=msg.user.opaque_id if msg.HasField("user") else "",
        expiration=ts(msg.expiration) if msg.HasField("expiration") else None,
        type=_LOCK_TYPES.get(msg.type, "invalid"),  # type: ignore[arg-type]
    )


_CHECKSUM_NAMES = {2: "adler32", 3: "md5", 4: "sha1"}


def checksum(msg: spr.ResourceChecksum) -> str | None:
    name = _CHECKSUM_NAMES.get(msg.type)
    if not name or not msg.sum:
        return None
    return f"{name}:{msg.sum.lower()}"


def resource_info(
    msg: spr.ResourceInfo,
    _ids: dict[tuple[str, str, str], FileId] | None = None,
    *,
    at: str | None = None,
    parent: str | None = None,
) -> ResourceInfo:
    """``_ids``: a cache of FileIds shared by the entries of one listing (they all have the same
    parent id), see `resource_infos`. ``at`` (the path that was Stat'ed) or ``parent`` (the folder that
    was listed) give the absolute path when the storage answers a relative one: oCIS's gateway makes
    references relative, so ``path`` is the basename, "." for a space root (storage behaviours row 3)."""
    path = msg.path
    # localfs leaves name empty; EOS fills it. Derive from the path when missing.
    name = msg.name or posixpath.basename(path.rstrip("/"))
    if not path.startswith("/"):
        if at is not None:
            path = at
            name = msg.name or posixpath.basename(at.rstrip("/")) or name
        elif parent is not None and name not in ("", "."):
            path = posixpath.join(parent, name)
    is_dir = msg.type == _CONTAINER
    mtime = msg.mtime
    has = msg.HasField
    parent_id = None
    if has("parent_id"):
        pid = msg.parent_id
        if _ids is None:
            parent_id = file_id(pid)
        else:
            key = (pid.storage_id, pid.space_id, pid.opaque_id)
            parent_id = _ids.get(key)
            if parent_id is None:
                parent_id = _ids[key] = file_id(pid)
    return _frozen(
        ResourceInfo,
        {
            "path": path,
            "name": name,
            "type": "directory" if is_dir else "file",
            "size": int(msg.size),
            "mtime_ns": mtime.seconds * 1_000_000_000 + mtime.nanos,
            "etag": msg.etag,
            "file_id": file_id(msg.id),
            "checksum": checksum(msg.checksum) if has("checksum") else None,
            "mimetype": msg.mime_type or ("httpd/unix-directory" if is_dir else ""),
            "writable": bool(msg.permission_set.initiate_file_upload) if has("permission_set") else True,
            "lock": lock(msg.lock) if has("lock") else None,
            "metadata": dict(msg.arbitrary_metadata.metadata) if has("arbitrary_metadata") else {},
            "parent_id": parent_id,
            "owner": msg.owner.opaque_id if has("owner") else "",
        },
    )


def resource_infos(msgs: Iterable[spr.ResourceInfo], parent: str | None = None) -> list[ResourceInfo]:
    """A listing's entries (one parent FileId object shared by all of them); ``parent``: the listed
    folder's path, for storages that answer basenames."""
    ids: dict[tuple[str, str, str], FileId] = {}
    return [resource_info(m, ids, parent=parent) for m in msgs]


def version(msg: spr.FileVersion) -> Version:
    return Version(key=msg.key, size=int(msg.size), mtime=float(msg.mtime), etag=msg.etag)


def user(msg: userpb.User) -> User:
    return User(
        username=msg.username,
        opaque_id=msg.id.opaque_id,
        idp=msg.id.idp,
        display_name=msg.display_name,
        mail=msg.mail,
        type=_USER_TYPES.get(msg.id.type, "primary"),
        uid_number=int(msg.uid_number),
        gid_number=int(msg.gid_number),
        groups=tuple(msg.groups),
    )


def group(msg: grouppb.Group) -> Group:
    return Group(
        name=msg.group_name,
        opaque_id=msg.id.opaque_id,
        idp=msg.id.idp,
        display_name=msg.display_name,
        mail=msg.mail,
        gid_number=int(msg.gid_number),
    )


def quota_from_space(msg: spr.Quota) -> Quota:
    total = int(msg.quota_max_bytes)
    remaining = int(msg.remaining_bytes)
    used = max(total - remaining, 0) if total else 0
    return Quota(used=used, total=total, remaining=remaining if total else None)


def space(msg: spr.StorageSpace) -> Space:
    root_info = msg.root_info if msg.HasField("root_info") else None
    root_id = file_id(msg.root) if msg.HasField("root") and msg.root.opaque_id else None
    if root_id is None and root_info is not None and root_info.id.opaque_id:
        root_id = file_id(root_info.id)
    return Space(
        id=msg.id.opaque_id,
        name=msg.name,
        type=msg.space_type,
        path=root_info.path if root_info is not None else "",
        root_id=root_id,
        quota=quota_from_space(msg.quota) if msg.HasField("quota") else None,
        owner=msg.owner.id.opaque_id if msg.HasField("owner") else "",
        mtime=ts(msg.mtime) if msg.HasField("mtime") else None,
    )


_SPACE_RANK = {"personal": 0, "project": 1}


def distinct_spaces(spaces: Iterable[Space], space_type: str | None = None) -> list[Space]:
    """One space per folder, of the type asked for. Reva master's spacesregistry lists every "explorer"
    space twice, answers them to a "project" type filter too, and a deployment may publish a project's
    folder again as an explorer space (same id and path): the personal or project entry of a folder wins
    over an explorer one, the first listed otherwise (storage behaviours row 8)."""
    kept: dict[str, Space] = {}
    for s in spaces:
        if space_type and s.type != space_type:
            continue
        key = s.path or s.id
        old = kept.get(key)
        if old is None or _SPACE_RANK.get(s.type, 2) < _SPACE_RANK.get(old.type, 2):
            kept[key] = s
    return list(kept.values())


def permission_names(msg: spr.ResourcePermissions) -> frozenset[str]:
    return frozenset(name for name in _PERMISSION_FIELDS if getattr(msg, name))


def _grantee(msg: spr.Grantee) -> Grantee:
    if msg.type == spr.GRANTEE_TYPE_GROUP:
        return Grantee("group", msg.group_id.opaque_id, msg.group_id.idp)
    return Grantee("user", msg.user_id.opaque_id, msg.user_id.idp)


def share(msg: sharepb.Share, info: spr.ResourceInfo | None = None) -> Share:
    return Share(
        id=msg.id.opaque_id,
        resource_id=file_id(msg.resource_id),
        grantee=_grantee(msg.grantee),
        permissions=permission_names(msg.permissions.permissions),
        owner=msg.owner.opaque_id,
        creator=msg.creator.opaque_id,
        ctime=ts(msg.ctime),
        mtime=ts(msg.mtime),
        expiration=ts(msg.expiration) if msg.HasField("expiration") else None,
        description=msg.description,
        resource=resource_info(info) if info is not None and info.ByteSize() else None,
    )


def received_share(msg: sharepb.ReceivedShare, info: spr.ResourceInfo | None = None) -> ReceivedShare:
    return ReceivedShare(
        share=share(msg.share),
        state=_SHARE_STATES.get(msg.state, "invalid"),  # type: ignore[arg-type]
        hidden=msg.hidden,
        mount_point=msg.mount_point.path if msg.HasField("mount_point") else "",
        resource=resource_info(info) if info is not None and info.ByteSize() else None,
    )


def public_link(msg: linkpb.PublicShare, info: spr.ResourceInfo | None = None) -> PublicLink:
    return PublicLink(
        id=msg.id.opaque_id,
        token=msg.token,
        resource_id=file_id(msg.resource_id),
        permissions=permission_names(msg.permissions.permissions),
        password_protected=msg.password_protected,
        expiration=ts(msg.expiration) if msg.HasField("expiration") else None,
        display_name=msg.display_name,
        description=msg.description,
        owner=msg.owner.opaque_id,
        ctime=ts(msg.ctime),
        mtime=ts(msg.mtime),
        resource=resource_info(info) if info is not None and info.ByteSize() else None,
    )
