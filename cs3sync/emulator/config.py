"""Emulator configuration: users, profiles and every behaviour switch.

A profile only fills in defaults; each switch can be overridden on its own, e.g.
``EmulatorConfig(root=..., profile="cernbox", upload_protocols=["simple", "tus"])``.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Profile = Literal["cernbox", "ocis"]

DEFAULT_IDP = "http://localhost:9998"
DEFAULT_STORAGE_ID = "00000000-0000-0000-0000-000000000000"
STATE_DIR_NAME = ".cs3gw"


@dataclass(frozen=True)
class UserSpec:
    """A user known to the emulator (Reva's demo user manager shape)."""

    username: str
    password: str = field(repr=False)
    opaque_id: str
    mail: str = ""
    display_name: str = ""
    uid_number: int = 0
    gid_number: int = 0
    groups: tuple[str, ...] = ()
    idp: str = DEFAULT_IDP


# Reva's demo users (pkg/auth/manager/demo/demo.go).
DEMO_USERS: tuple[UserSpec, ...] = (
    UserSpec(
        "einstein",
        "relativity",
        "4c510ada-c86b-4815-8820-42cdf82c3d51",
        "einstein@example.org",
        "Albert Einstein",
        20000,
        30000,
        ("sailing-lovers", "violin-haters", "physics-lovers"),
    ),
    UserSpec(
        "marie",
        "radioactivity",
        "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c",
        "marie@example.org",
        "Marie Curie",
        20001,
        30000,
        ("radium-lovers", "polonium-lovers", "physics-lovers"),
    ),
    UserSpec(
        "richard",
        "superfluidity",
        "932b4540-8d16-481e-8ef4-588e4b6b151c",
        "richard@example.org",
        "Richard Feynman",
        20002,
        30000,
        ("quantum-lovers", "philosophy-haters", "physics-lovers"),
    ),
)

# The switches each profile sets (docs/emulator.md, Profiles).
PROFILES: dict[str, dict[str, Any]] = {
    "cernbox": {
        "home_layout": "/eos/user/{u0}/{username}",
        "project_layout": "/eos/project/{p0}/{name}",
        "upload_protocols": ["simple"],
        "conditional_upload": "ignore",
        "lock_codes": "eos",
        "lock_enforcement": "holder",
        "missing_file_on_lock_ops": "internal",
        "mkdir_existing": "already_exists",
        "move_onto_existing": "eos",
        "untyped_errors": True,
        "zero_length_finalizes_at_initiate": False,
        "received_share_state": "accepted",
        "quota_total": 0,
        "quota_unlimited_when_zero": False,
        "duplicate_share": "unknown",
        "metadata_keys": "all",
        "touch_existing": "ok",
        "honour_oc_mtime": False,
        "range_support": True,
        "version_keys": "eos",
        "upload_missing_parent": "put_409",
        "locked_write_status": 500,
        "quota_refusal": "put_500",
        "info_paths": "absolute",
        "checksum_type": "adler32",
        "token_rejection": "empty_denied",
        "put_needs_upload_length": True,
        "replayable_upload_tokens": True,
        "empty_file_checksum": False,
        "stat_reports_expired_locks": True,
        "mtime_whole_seconds": True,
        "dir_size": "tree",
        "spaces_registry": "reva_master",
        "resource_space_id": "bare",
    },
    "ocis": {
        "home_layout": "/home/{username}",
        "project_layout": "/projects/{name}",
        "upload_protocols": ["simple", "tus"],
        "conditional_upload": "honour",
        "lock_codes": "decomposedfs",
        "lock_enforcement": "lock_id",
        "missing_file_on_lock_ops": "not_found",
        "mkdir_existing": "already_exists",
        "move_onto_existing": "already_exists",
        "untyped_errors": False,
        "zero_length_finalizes_at_initiate": True,
        "received_share_state": "pending",
        "quota_total": 0,
        "quota_unlimited_when_zero": True,
        "duplicate_share": "already_exists",
        "metadata_keys": "filtered",
        "touch_existing": "already_exists",
        "honour_oc_mtime": True,
        "range_support": True,
        "version_keys": "decomposedfs",
        "upload_missing_parent": "failed_precondition",
        "locked_write_status": 409,
        "quota_refusal": "initiate",
        "info_paths": "basename",
        "checksum_type": "sha1",
        "token_rejection": "empty_denied",
        "put_needs_upload_length": False,
        "replayable_upload_tokens": False,
        "empty_file_checksum": True,
        "stat_reports_expired_locks": False,
        "mtime_whole_seconds": False,
        "dir_size": "tree",
        "spaces_registry": "complete",
        "resource_space_id": "prefixed",
    },
}

_UNSET: Any = None


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told. Fields left as ``None`` take the profile's default."""

    root: Path
    profile: Profile = "cernbox"
    state_dir: Path | None = None  # default <root>/.cs3gw
    host: str = "127.0.0.1"  # loopback only; anything else is refused
    grpc_port: int = 0
    http_port: int = 0
    single_user: str | None = None  # username whose home *is* root; None = multi-user root/<username>/
    users: tuple[UserSpec, ...] = DEMO_USERS
    groups: dict[str, str] = field(default_factory=dict)  # group name -> display name (extra to users')
    projects: dict[str, str] = field(default_factory=dict)  # project name -> dir (relative to root or abs)
    storage_id: str = DEFAULT_STORAGE_ID
    idp: str = DEFAULT_IDP
    # auth
    auth_types: tuple[str, ...] = ("basic", "bearer", "machine")
    # secrets stay out of reprs (tracebacks, test output)
    bearer_tokens: dict[str, str] = field(default_factory=dict, repr=False)  # static token -> username
    machine_api_key: str = field(default="machine-secret", repr=False)
    # Per run (a constant would let anyone who read this file mint tokens for any demo user).
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    transfer_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    #: Sent as ADMIN_HEADER by every /_admin request (docs/emulator.md).
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    token_ttl: float = 86400.0
    transfer_ttl: float = 6000.0
    # storage behaviour
    max_versions: int = 10
    strict_download_initiate: bool = False
    expose_data_server: bool = False
    send_etag: bool = False
    list_existing_fails_on_broken: bool = True
    localfs_mtime_key: bool = False
    quota_recompute_interval: float = 2.0
    # fsync committed uploads (file and folder) before answering, as Reva's drivers persist before
    # replying; off only for throwaway test roots where durability does not matter.
    fsync: bool = True
    # profile switches (None = the profile's value)
    home_layout: str | None = _UNSET
    project_layout: str | None = _UNSET
    upload_protocols: list[str] | None = _UNSET
    conditional_upload: Literal["ignore", "honour"] | None = _UNSET
    lock_codes: Literal["eos", "decomposedfs"] | None = _UNSET
    lock_enforcement: Literal["holder", "lock_id"] | None = _UNSET
    missing_file_on_lock_ops: Literal["internal", "not_found"] | None = _UNSET
    mkdir_existing: Literal["already_exists", "mkdir_p"] | None = _UNSET
    # "eos" (cernbox): onto an existing folder the source moves into it, onto an existing file an
    # error (INTERNAL with untyped_errors); "replace": POSIX rename (localfs); "already_exists"
    # (decomposedfs, reva edge dfs/decomposedfs.go Move).
    move_onto_existing: Literal["eos", "replace", "already_exists"] | None = _UNSET
    # EOS reports many namespace errors as INTERNAL with no errno text (Reva master never appends
    # "(code: N)"): ListContainer of a missing folder or of a file, CreateContainer of an existing
    # folder, Move onto an existing file ("error moving: <ref>"), Delete of a missing item,
    # RestoreFileVersion with a bad key, SetArbitraryMetadata of a missing file (the eos driver wraps
    # the errors with errors.Wrap, which the storage provider's type switch does not recognise: SP
    # status.NewStatusFromErrType -> INTERNAL). The messages name no cause, on purpose.
    untyped_errors: bool | None = _UNSET
    zero_length_finalizes_at_initiate: bool | None = _UNSET
    received_share_state: Literal["accepted", "pending"] | None = _UNSET
    quota_total: int | None = _UNSET
    quota_unlimited_when_zero: bool | None = _UNSET
    duplicate_share: Literal["unknown", "already_exists"] | None = _UNSET
    metadata_keys: Literal["all", "filtered"] | None = _UNSET
    touch_existing: Literal["ok", "already_exists"] | None = _UNSET
    honour_oc_mtime: bool | None = _UNSET
    range_support: bool | None = _UNSET
    # "eos": "<mtime_s>.<seq hex>"; "decomposedfs": "<fileid>.REV.<RFC 3339 mtime>", which is also a
    # resource id (oCIS downloads a revision by ``resource_id.opaque_id = key``).
    version_keys: Literal["eos", "decomposedfs"] | None = _UNSET
    # Real-server behaviours (docs/storage-behaviours.md has the table, the sources and the tests).
    # An upload into a folder that does not exist. "put_409" (EOS): InitiateFileUpload answers OK
    # (eos/file_ops.go InitiateUpload only resolves the path) and the PUT gets HTTP 409 (EOS maps
    # ENOENT to 409; eos/client/grpc/eoshttp.go getRespError -> errtypes.Conflict, relayed by
    # datatx/manager/simple/simple.go). "failed_precondition" (decomposedfs, reva edge
    # dfs/upload.go InitiateUpload: NotFound -> PreconditionFailed; SP -> "failed precondition").
    # "not_found": the kind answer (NOT_FOUND at initiate, 404 at commit).
    upload_missing_parent: Literal["put_409", "failed_precondition", "not_found"] | None = _UNSET
    # HTTP status of a data write refused by an EOS holder lock. EOS's MGM open fails EBUSY, which its
    # HTTP error table does not map; the sources leave the code open, so the cernbox profile answers the
    # most hostile plausible one, 500 (indistinguishable from any server error). 409 = the kind answer.
    # Applies to ``lock_enforcement="holder"`` only (oCIS keeps its 423/409 lock-id rules).
    locked_write_status: int | None = _UNSET
    # Where a full quota is refused. "put_500" (EOS): nothing at initiate (eos InitiateUpload checks
    # nothing), EOS's 507 becomes HTTP 500 through Reva (eoshttp.go getRespError maps only 403/404/409;
    # anything else is InternalError -> simple.go 500); the exact code is not certain, 500 is the
    # hostile reading. "initiate": INSUFFICIENT_STORAGE at initiate and 507 at commit (decomposedfs).
    quota_refusal: Literal["put_500", "initiate"] | None = _UNSET
    # ResourceInfo.path. "basename" (oCIS): the edge gateway makes every reference relative to its
    # space (reva edge internal/grpc/services/gateway/storageprovider.go; decomposedfs fills
    # ``Path: n.Name``), so Stat and ListContainer answer the name, "." for a space root. "absolute"
    # (EOS): the full namespace path.
    info_paths: Literal["absolute", "basename"] | None = _UNSET
    # ResourceInfo.checksum. "sha1" (decomposedfs stores sha1, md5 and adler32 and reports SHA1 as the
    # checksum, adler32 only in ``opaque["adler32"]``); "adler32" (EOS, eos/eosfs.go, leading zeros
    # trimmed; absent for an empty file, see row 8).
    checksum_type: Literal["adler32", "sha1"] | None = _UNSET
    # An invalid or expired token on a mutating RPC (InitiateFileUpload/Download, CreateContainer,
    # TouchFile, Delete, Move, metadata, locks). "empty_denied": a PERMISSION_DENIED status with an
    # empty message, as Reva's gateway relays the provider's refusal (master and edge alike); the
    # emulator answers so for every such refusal (the hostile reading: a real gateway would catch a token
    # that had already expired itself). "raised": the auth interceptor's gRPC PERMISSION_DENIED "auth:
    # core access token is invalid", as on every other method.
    token_rejection: Literal["empty_denied", "raised"] | None = _UNSET
    # A simple PUT through the data gateway must carry ``Upload-Length``: the datagateway re-sends the
    # request with Go's client, which drops Content-Length, and EOS's Upload then answers "no content
    # length specified in EOS upload" (reva master eos/file_ops.go Upload -> errtypes.BadRequest, which
    # simple.go answers 500). The emulator answers 500 to any simple PUT without it.
    put_needs_upload_length: bool | None = _UNSET
    # An EOS upload "id" is the file's path (eos/file_ops.go InitiateUpload returns {"simple": path}), so a
    # transfer token stays usable until it expires: a second PUT with it writes again (200). Off: a used
    # session answers 404 (decomposedfs/tus upload ids are single-use).
    replayable_upload_tokens: bool | None = _UNSET
    # Storage behaviours row 8 (part): EOS reports no adler32 for an empty file (False), and Stat shows
    # the ``sys.app.lock`` attribute even after the lock expired (True; expired locks are only deleted
    # lazily by GetLock, reva master eos/locks.go).
    empty_file_checksum: bool | None = _UNSET
    stat_reports_expired_locks: bool | None = _UNSET
    # Row 8: ResourceInfo.mtime in whole seconds, nanos always 0 (True). Reva master's EOS gRPC client
    # fills only ``fi.MTimeSec = st.Fmd.Mtime.Sec`` (folders: Stime.Sec) and never MTimeNanos
    # (pkg/storage/fs/eos/client/grpc/file_info.go), which eosfs.go ``convert`` passes on as
    # ``Nanos: eosFileInfo.MTimeNanos``. Two saves within one second thus show the same mtime; only the
    # etag and the checksum tell them apart.
    mtime_whole_seconds: bool | None = _UNSET
    # Row 8: a folder's ResourceInfo.size. "tree" (cernbox): the bytes of everything under it; reva master
    # eosfs.go ``convert`` sets ``size = eosFileInfo.TreeSize`` for a folder, from EOS's ``TreeSize``
    # (eos/client/grpc/file_info.go). It changes with every write below, so nothing may read a folder's
    # size as "unchanged" or "empty". oCIS does the same: reva edge decomposedfs node.go ``AsResourceInfo``
    # answers the ``treesize`` attribute for a folder (0 only while unknown), which the propagator
    # (tree/propagator/sync.go; async.go when configured, then lagging by ``propagation_delay``) keeps
    # up to date, and oCIS turns ``treesize_accounting`` on for its storage-users (owncloud/ocis
    # services/storage-users/pkg/revaconfig/drivers.go ``Ocis``). "zero": 0 for every folder (the kind
    # variant; decomposedfs without treesize accounting).
    dir_size: Literal["zero", "tree"] | None = _UNSET
    # Row 8: ListStorageSpaces. "reva_master" (cernbox) answers like reva master's spacesregistry
    # (internal/grpc/services/spacesregistry/spacesregistry.go, ``ListStorageSpaces``; the gateway's
    # ``ListStorageSpaces`` in internal/grpc/services/gateway/spaces.go only forwards): the personal space
    # (``userSpace``) and the projects (pkg/projects/manager/sql/sql.go ``projectToStorageSpace``, then
    # ``decorateProject``) carry no ``root`` and a ``root_info`` with only the path and permissions (no
    # id); the personal space has no ``mtime`` either. "explorer" spaces (``getAllPublicSpaces``, the
    # deployment's ``public_spaces``) carry a root, a full root_info and a 1 EB quota; without a filter
    # they are listed twice (``listSpacesByType`` appends them to the projects "as the front-end will
    # filter these", then ``ListStorageSpaces`` appends them again), and a "project" type filter returns
    # them too. Which folders a deployment publishes is open: the emulator publishes every project folder
    # again (same id, same path, type "explorer"), the hostile reading. "complete": one entry per space,
    # each with root, mtime and a full root_info, no explorer spaces.
    spaces_registry: Literal["reva_master", "complete"] | None = _UNSET
    # Row 8: ``ResourceInfo.space.id``. "bare" (cernbox): the bare base32 of the space path, without the
    # storage id; reva master's storage provider ``addSpaceInfo`` sets ``ri.Space.Id.OpaqueId`` (and
    # ``ri.Id.SpaceId``) to ``pathToSpaceID(path)`` = ``spaces.EncodeSpaceID`` (base32 only,
    # pkg/spaces/utils.go), with no space name. Only ``StorageSpace.id`` from ListStorageSpaces is
    # ``<storage_id>$<base32>`` (``spaces.EncodeStorageSpaceID``). "prefixed": ``<storage_id>$<base32>``
    # and the space's name.
    resource_space_id: Literal["bare", "prefixed"] | None = _UNSET

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {sorted(PROFILES)}")
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator binds loopback only")
        self.root = Path(self.root).resolve()
        self.state_dir = Path(self.state_dir).resolve() if self.state_dir else self.root / STATE_DIR_NAME
        for key, value in PROFILES[self.profile].items():
            if getattr(self, key) is None:
                setattr(self, key, list(value) if isinstance(value, list) else value)

    def user(self, username: str) -> UserSpec | None:
        return next((u for u in self.users if u.username == username), None)

    def user_by_id(self, opaque_id: str) -> UserSpec | None:
        return next((u for u in self.users if u.opaque_id == opaque_id), None)

    def home(self, username: str) -> str:
        assert self.home_layout is not None
        return self.home_layout.format(u0=username[:1], username=username)

    def project_path(self, name: str) -> str:
        assert self.project_layout is not None
        return self.project_layout.format(p0=name[:1], name=name)

    def all_groups(self) -> dict[str, str]:
        groups = {g: g for u in self.users for g in u.groups}
        groups.update(self.groups)
        return groups

    def replace(self, **changes: Any) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)
