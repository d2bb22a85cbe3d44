"""ListStorageSpaces, CERNBox style: the caller's personal space, then the project spaces."""

from __future__ import annotations

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


def user_space(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    """The personal space as reva master's spacesregistry ``userSpace`` builds it: no root, no mtime, a
    root_info with the path and permissions only (EmulatorConfig.spaces_registry)."""
    full = space_proto(storage, mount, user)
    return res.StorageSpace(
        id=full.id,
        owner=full.owner,
        name=full.name,
        space_type=full.space_type,
        root_info=res.ResourceInfo(path=full.root_info.path, permission_set=full.root_info.permission_set),
        quota=full.quota,
    )


def explorer_space(storage: Storage, mount: Mount, user: UserSpec) -> res.StorageSpace:
    """A project folder published again as an "explorer" space (reva master ``getAllPublicSpaces``)."""
    space = space_proto(storage, mount, user)
    space.space_type = "explorer"
    return space


def list_spaces(storage: Storage, user: UserSpec, filters: list[FilterMessage]) -> list[res.StorageSpace]:
    """Home first, then projects; TYPE_SPACE_TYPE and TYPE_ID filter, other filter types are ignored."""
    mounts = [m for m in storage.mounts if m.owner == user] + [
        m for m in storage.mounts if m.kind == "project"
    ]
    types = {f.space_type for f in filters if f.type == Filter.TYPE_SPACE_TYPE}
    ids = {f.id.opaque_id for f in filters if f.type == Filter.TYPE_ID}
    master = storage.config.spaces_registry == "reva_master"
    candidates = [(m, m.kind) for m in mounts]
    if master:
        candidates += [(m, "explorer") for m in storage.mounts if m.kind == "project"]
    out: list[res.StorageSpace] = []
    for mount, kind in candidates:
        if types and kind not in types:
            continue
        if kind == "explorer" and ids and out:
            break  # reva master answers a by-id look-up from the homes or projects that matched
        if ids and space_opaque_id(storage, mount) not in ids:
            continue
        if not mount.disk.exists():
            continue
        try:
            if master and kind == "personal":
                out.append(user_space(storage, mount, user))
            elif kind == "explorer":
                out.append(explorer_space(storage, mount, user))
            else:
                out.append(space_proto(storage, mount, user))
        except CS3Error as e:
            raise CS3Error.internal(f"error listing spaces: {e.message}") from None
    return out
