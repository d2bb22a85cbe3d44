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


def list_spaces(storage: Storage, user: UserSpec, filters: list[FilterMessage]) -> list[res.StorageSpace]:
    """Home first, then projects; TYPE_SPACE_TYPE and TYPE_ID filter, other filter types are ignored."""
    mounts = [m for m in storage.mounts if m.owner == user] + [
        m for m in storage.mounts if m.kind == "project"
    ]
    types = {f.space_type for f in filters if f.type == Filter.TYPE_SPACE_TYPE}
    ids = {f.id.opaque_id for f in filters if f.type == Filter.TYPE_ID}
    out = []
    for mount in mounts:
        if types and mount.kind not in types:
            continue
        if ids and space_opaque_id(storage, mount) not in ids:
            continue
        if not mount.disk.exists():
            continue
        try:
            out.append(space_proto(storage, mount, user))
        except CS3Error as e:
            raise CS3Error.internal(f"error listing spaces: {e.message}") from None
    return out
