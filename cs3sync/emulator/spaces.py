"""ListStorageSpaces: the caller's personal space, the project spaces and, on CERNBox (reva master's
spacesregistry), the "explorer" spaces (storage behaviours row 8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.storage.provider.v1beta1 import spaces_api_pb2

from .auth import user_proto
from .config import UserSpec
from .errors import CS3Error
from .storage import Mount, Node, Storage, timestamp

Filter = spaces_api_pb2.ListStorageSpacesRequest.Filter
FilterMessage = Any  # a generated protobuf message class: mypy cannot use it as a type


def space_opaque_id(storage: Storage, mount: Mount) -> str:
    """``<storage_id>$<base32(space path)>`` (pkg/spaces/utils.go)."""
    return f"{storage.config.storage_id}${mount.space_id}"


def space_proto(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    node = Node(mount.prefix, mount.disk, mount, storage._perms(mount, mount.disk, user))
    root_info = storage.info(node)
    total, used, remaining = storage.quota(node)
    if mount.owner is not None:
        owner = user_proto(mount.owner)
    else:
        owner = user_res.User(id=storage.owner_id(mount), username=mount.name, display_name=mount.name)
    return res.StorageSpace(
        id=res.StorageSpaceId(opaque_id=space_opaque_id(storage, mount)),
        owner=owner,
        root=root_info.id,
        name=mount.name,
        space_type=mount.kind,
        root_info=root_info,
        mtime=timestamp(root_info.mtime.seconds * 1_000_000_000 + root_info.mtime.nanos),
        quota=res.Quota(
            quota_max_bytes=total,
            remaining_bytes=remaining if remaining is not None else max(total - used, 0),
        ),
    )


def list_spaces(storage: Storage, user: UserSpec, filters: list[FilterMessage]) -> list[res.StorageSpace]:
    """The caller's spaces, shaped by EmulatorConfig.spaces_registry."""
    if storage.config.spaces_registry == "reva_master":
        return _reva_master(storage, user, filters)
    return _complete(storage, user, filters)


def _complete(storage: Storage, user: UserSpec, filters: list[FilterMessage]) -> list[res.StorageSpace]:
    """Home first, then projects; TYPE_SPACE_TYPE and TYPE_ID filter, other filter types are ignored."""
    types = {f.space_type for f in filters if f.type == Filter.TYPE_SPACE_TYPE}
    ids = {f.id.opaque_id for f in filters if f.type == Filter.TYPE_ID}
    out = []
    for mount in _homes(storage, user) + _projects(storage):
        if types and mount.kind not in types:
            continue
        if ids and space_opaque_id(storage, mount) not in ids:
            continue
        out.append(_shaped(space_proto, storage, mount, user))
    return out


def _reva_master(storage: Storage, user: UserSpec, filters: list[FilterMessage]) -> list[res.StorageSpace]:
    """Reva master's spacesregistry ``ListStorageSpaces``, step by step (spacesregistry.go): without a
    type filter, or with one type filter and an id filter (the type is then ignored, as there), the
    homes, the projects (followed by the explorer spaces unless filtered by id) and the explorer spaces
    again; an id filter stops at the first kind that matched exactly one. Otherwise one
    ``listSpacesByType`` per type filter."""
    types = [f.space_type for f in filters if f.type == Filter.TYPE_SPACE_TYPE]
    by_id = next((f.id.opaque_id for f in filters if f.type == Filter.TYPE_ID), None)
    if not types or (len(types) == 1 and by_id is not None):
        out = _by_type(storage, user, "personal", by_id)
        if by_id is not None and len(out) == 1:
            return out
        projects = _by_type(storage, user, "project", by_id)
        out += projects
        if by_id is not None and len(projects) == 1:
            return out
        return out + _by_type(storage, user, "explorer", by_id)
    return [space for kind in types for space in _by_type(storage, user, kind, by_id)]


def _by_type(storage: Storage, user: UserSpec, kind: str, by_id: str | None) -> list[res.StorageSpace]:
    """``listSpacesByType``: unknown types list nothing."""

    def matches(mount: Mount) -> bool:
        return by_id is None or space_opaque_id(storage, mount) == by_id

    if kind == "personal":
        return [_shaped(user_space, storage, m, user) for m in _homes(storage, user) if matches(m)]
    if kind == "project":
        out = [_shaped(project_space, storage, m, user) for m in _projects(storage) if matches(m)]
        if by_id is None:  # "For now, we also return public spaces when you query for projects"
            out += _by_type(storage, user, "explorer", None)
        return out
    if kind == "explorer":
        return [_shaped(explorer_space, storage, m, user) for m in _projects(storage) if matches(m)]
    return []


def _homes(storage: Storage, user: UserSpec) -> list[Mount]:
    return [m for m in storage.mounts if m.owner == user and m.disk.exists()]


def _projects(storage: Storage) -> list[Mount]:
    # decorateProject Stats the root: a project that cannot be Stat'ed is skipped
    return [m for m in storage.mounts if m.kind == "project" and m.disk.exists()]


def _shaped(
    shape: Callable[[Storage, Mount, UserSpec], res.StorageSpace],
    storage: Storage,
    mount: Mount,
    user: UserSpec,
) -> res.StorageSpace:
    try:
        return shape(storage, mount, user)
    except CS3Error as e:
        raise CS3Error.internal(f"error listing spaces: {e.message}") from None


def user_space(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    """The personal space as reva master's ``userSpace`` builds it: no root, no mtime, a root_info with
    the path and permissions only."""
    full = space_proto(storage, mount, user)
    return res.StorageSpace(
        id=full.id,
        owner=full.owner,
        name=full.name,
        space_type="personal",
        root_info=res.ResourceInfo(path=full.root_info.path, permission_set=full.root_info.permission_set),
        quota=full.quota,
    )


def project_space(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    """A project as reva master's projects catalogue answers it (sql.go ``projectToStorageSpace``: root_info
    with path and permissions, no root) after ``decorateProject`` added the quota and the mtime."""
    full = space_proto(storage, mount, user)
    return res.StorageSpace(
        id=full.id,
        owner=user_res.User(id=user_res.UserId(opaque_id=full.owner.id.opaque_id)),  # id only
        name=full.name,
        space_type="project",
        root_info=res.ResourceInfo(path=full.root_info.path, permission_set=full.root_info.permission_set),
        mtime=full.mtime,
        quota=full.quota,
    )


def explorer_space(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    """A published folder (reva master ``getAllPublicSpaces``): id from the Stat of its path
    (``EncodeStorageSpaceID(storage id, space id)``, so a project's folder keeps the project's id), the
    full root info, a 1 EB quota."""
    full = space_proto(storage, mount, user)
    exabyte = 10**18
    return res.StorageSpace(
        id=full.id,
        space_type="explorer",
        root=full.root_info.id,
        root_info=full.root_info,
        mtime=full.root_info.mtime,
        name=full.name,
        quota=res.Quota(quota_max_bytes=exabyte, remaining_bytes=exabyte - full.root_info.size),
    )
