"""Plain values returned by the client. No protobuf type leaks above `cs3sync.cs3`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ResourceType = Literal["file", "directory"]
ShareState = Literal["pending", "accepted", "rejected", "invalid"]

#: Permission names are the `cs3.storage.provider.v1beta1.ResourcePermissions` field names.
VIEWER: frozenset[str] = frozenset(
    {
        "get_path",
        "get_quota",
        "initiate_file_download",
        "list_container",
        "list_file_versions",
        "list_recycle",
        "stat",
        "list_grants",
    }
)
EDITOR: frozenset[str] = VIEWER | frozenset(
    {
        "create_container",
        "delete",
        "initiate_file_upload",
        "move",
        "restore_file_version",
        "restore_recycle_item",
    }
)


@dataclass(frozen=True)
class FileId:
    storage_id: str = ""
    space_id: str = ""
    opaque_id: str = ""

    def __str__(self) -> str:
        return f"{self.storage_id}${self.space_id}!{self.opaque_id}"

    def __bool__(self) -> bool:
        return bool(self.opaque_id)

    @classmethod
    def parse(cls, text: str) -> FileId:
        """Inverse of `str()`: ``storage$space!opaque`` (``storage!opaque`` is accepted too)."""
        rest, _, opaque = text.rpartition("!")
        storage, _, space = rest.partition("$")
        return cls(storage, space, opaque)


@dataclass(frozen=True)
class Lock:
    lock_id: str
    app_name: str = ""
    user: str = ""  # the holder's user opaque id, when the storage reports it
    expiration: float | None = None  # absolute epoch seconds
    type: Literal["shared", "write", "exclusive", "invalid"] = "write"

    @property
    def holder(self) -> str:
        """A human-readable holder: the app name, else the user id."""
        return self.app_name or self.user or "unknown"


@dataclass(frozen=True)
class LockContext:
    """A lock we hold, passed to writes: sent as ``lock_id`` and X-Lock-Id / X-Lock-Holder.

    Give it only while holding the lock (decomposedfs rejects a lock id on an unlocked file).
    """

    lock_id: str
    app_name: str


@dataclass(frozen=True)
class ResourceInfo:
    path: str
    name: str
    type: ResourceType
    size: int
    mtime_ns: int
    etag: str
    file_id: FileId
    checksum: str | None = None  # "adler32:<hex>"
    mimetype: str = ""
    writable: bool = True
    lock: Lock | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    parent_id: FileId | None = None
    owner: str = ""  # owner's user opaque id

    @property
    def is_dir(self) -> bool:
        return self.type == "directory"

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


@dataclass(frozen=True)
class Version:
    key: str
    size: int
    mtime: float
    etag: str = ""


@dataclass(frozen=True)
class Quota:
    used: int
    total: int  # 0 = unlimited or unknown
    remaining: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.total == 0

    @property
    def full(self) -> bool:
        return self.total > 0 and self.used >= self.total


@dataclass(frozen=True)
class User:
    username: str
    opaque_id: str
    idp: str = ""
    display_name: str = ""
    mail: str = ""
    type: str = "primary"
    uid_number: int = 0
    gid_number: int = 0
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    opaque_id: str
    idp: str = ""
    display_name: str = ""
    mail: str = ""
    gid_number: int = 0


@dataclass(frozen=True)
class Space:
    id: str
    name: str
    type: str  # "personal", "project", "explorer", ...
    path: str
    root_id: FileId | None = None
    quota: Quota | None = None
    owner: str = ""
    mtime: float | None = None


@dataclass(frozen=True)
class Grantee:
    type: Literal["user", "group"]
    opaque_id: str
    idp: str = ""


@dataclass(frozen=True)
class Share:
    id: str
    resource_id: FileId
    grantee: Grantee
    permissions: frozenset[str]
    owner: str = ""
    creator: str = ""
    ctime: float | None = None
    mtime: float | None = None
    expiration: float | None = None
    description: str = ""
    resource: ResourceInfo | None = None  # filled by the listings when the gateway could Stat it


@dataclass(frozen=True)
class ReceivedShare:
    share: Share
    state: ShareState
    hidden: bool = False
    mount_point: str = ""
    resource: ResourceInfo | None = None

    @property
    def id(self) -> str:
        return self.share.id


@dataclass(frozen=True)
class PublicLink:
    id: str
    token: str  # the public link token is meant to be shown to users; it is not a credential of ours
    resource_id: FileId
    permissions: frozenset[str]
    password_protected: bool = False
    expiration: float | None = None
    display_name: str = ""
    description: str = ""
    owner: str = ""
    ctime: float | None = None
    mtime: float | None = None
    resource: ResourceInfo | None = None


@dataclass
class UploadSession:
    """What the journal records to resume an upload. ``token`` is a transfer credential: never log it."""

    protocol: Literal["simple", "tus"]
    url: str
    token: str = field(repr=False)
    expires_at: float | None
    offset: int
    length: int
