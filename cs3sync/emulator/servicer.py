"""The GatewayAPI servicer: identity, namespace, transfers, versions, metadata, locks, quota and spaces.

Sharing RPCs live in ``sharing.py`` (mixed in). Every method answers with Reva's status codes and
messages; methods not defined here fall through to the generated base class, i.e. UNIMPLEMENTED.
Storage calls run in a worker thread (``_run``) so file I/O stays off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc
from cs3.gateway.v1beta1 import resources_pb2 as gw_res
from cs3.identity.user.v1beta1 import user_api_pb2
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.storage.provider.v1beta1 import spaces_api_pb2
from cs3.types.v1beta1 import types_pb2

from .auth import AuthFailure, user_proto
from .config import UserSpec
from .errors import CS3Error, status
from .host import EmulatorHost
from .interceptor import current_user, response_class
from .sharing import SharingMixin
from .spaces import list_spaces
from .storage import Node, Storage, parse_checksum, parse_mtime_ns, split_version_ref

T = TypeVar("T")


def rpc(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a CS3Error raised by a handler into a response carrying that status."""
    method = func.__name__

    @functools.wraps(func)
    async def wrapper(self: GatewayServicer, request: Any, context: Any) -> Any:
        try:
            return await func(self, request, context)
        except CS3Error as e:
            code, message = self._retype(method, e, request)
            return response_class(method)(status=status(code, message))

    return wrapper


def opaque_value(opaque: types_pb2.Opaque, key: str) -> str:
    entry = opaque.map.get(key)
    return entry.value.decode(errors="replace") if entry is not None else ""


class GatewayServicer(SharingMixin, gateway_api_pb2_grpc.GatewayAPIServicer):
    def __init__(self, emulator: EmulatorHost) -> None:
        self.emu = emulator
        self.config = emulator.config
        self.storage: Storage = emulator.storage

    # ------------------------------------------------------------------ helpers
    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    @staticmethod
    def _user() -> UserSpec:
        user = current_user.get()
        assert user is not None, "protected method reached without a user"
        return user

    # EOS's untyped answers (EmulatorConfig.untyped_errors): method -> the wrapped message Reva relays.
    _UNTYPED = {
        "ListContainer": "eosfs: error listing container",
        "CreateContainer": "eosfs: error creating container",
        "Move": "error moving",
        "Delete": "eosfs: error removing",
        "RestoreFileVersion": "eosfs: error restoring version",
        "SetArbitraryMetadata": "eosfs: error setting xattr",
        "UnsetArbitraryMetadata": "eosfs: error unsetting xattr",
    }
    _TYPED_CAUSES = (code_pb2.CODE_NOT_FOUND, code_pb2.CODE_ALREADY_EXISTS, code_pb2.CODE_FAILED_PRECONDITION)

    def _retype(self, method: str, e: CS3Error, request: Any = None) -> tuple[int, str]:
        """cernbox ``untyped_errors``: EOS answers INTERNAL with no errno for these (see the config)."""
        wrapped = self._UNTYPED.get(method)
        if self.config.untyped_errors and wrapped and e.code in self._TYPED_CAUSES:
            ref = getattr(request, "source", None) or getattr(request, "ref", None)
            return (
                code_pb2.CODE_INTERNAL,
                f"{wrapped}: {ref.path}" if ref is not None and ref.path else wrapped,
            )
        return e.code, e.message

    async def _resolve(self, ref: res.Reference, not_found: str = "path not found") -> Node:
        try:
            return await self._run(self.storage.resolve, ref, self._user())
        except CS3Error as e:
            if e.code == code_pb2.CODE_NOT_FOUND:
                raise CS3Error.not_found(not_found) from None
            raise

    def _require_write(self, node: Node) -> None:
        if not (node.perms.initiate_file_upload or node.perms.create_container):
            raise CS3Error.denied("permission denied")

    # ------------------------------------------------------------------ identity
    async def Authenticate(self, request: gw.AuthenticateRequest, context: Any) -> gw.AuthenticateResponse:
        try:
            user, token = self.emu.auth.authenticate(request.type, request.client_id, request.client_secret)
        except AuthFailure as e:
            return gw.AuthenticateResponse(status=status(e.code, e.message))
        return gw.AuthenticateResponse(status=status(), token=token, user=user_proto(user))

    async def WhoAmI(self, request: gw.WhoAmIRequest, context: Any) -> gw.WhoAmIResponse:
        user = self.emu.auth.verify(request.token)
        if user is None:
            return gw.WhoAmIResponse(status=status(code_pb2.CODE_UNAUTHENTICATED, "error dismantling token"))
        return gw.WhoAmIResponse(status=status(), user=user_proto(user))

    async def ListAuthProviders(self, request: Any, context: Any) -> gw.ListAuthProvidersResponse:
        return gw.ListAuthProvidersResponse(status=status(), types=list(self.config.auth_types))

    async def GetUser(
        self, request: user_api_pb2.GetUserRequest, context: Any
    ) -> user_api_pb2.GetUserResponse:
        user = self.config.user_by_id(request.user_id.opaque_id)
        if user is None:
            return user_api_pb2.GetUserResponse(status=status(code_pb2.CODE_NOT_FOUND, "user not found"))
        return user_api_pb2.GetUserResponse(status=status(), user=user_proto(user))

    async def GetUserByClaim(
        self, request: user_api_pb2.GetUserByClaimRequest, context: Any
    ) -> user_api_pb2.GetUserByClaimResponse:
        user = self.emu.auth.user_by_claim(request.claim, request.value)
        if user is None:
            return user_api_pb2.GetUserByClaimResponse(
                status=status(code_pb2.CODE_NOT_FOUND, "user not found")
            )
        return user_api_pb2.GetUserByClaimResponse(status=status(), user=user_proto(user))

    async def GetUserGroups(
        self, request: user_api_pb2.GetUserGroupsRequest, context: Any
    ) -> user_api_pb2.GetUserGroupsResponse:
        user = self.config.user_by_id(request.user_id.opaque_id)
        if user is None:
            return user_api_pb2.GetUserGroupsResponse(
                status=status(code_pb2.CODE_NOT_FOUND, "user not found")
            )
        return user_api_pb2.GetUserGroupsResponse(status=status(), groups=list(user.groups))

    async def GetHome(self, request: sp.GetHomeRequest, context: Any) -> sp.GetHomeResponse:
        return sp.GetHomeResponse(status=status(), path=self.config.home(self._user().username))

    # ------------------------------------------------------------------ namespace
    @rpc
    async def Stat(self, request: sp.StatRequest, context: Any) -> sp.StatResponse:
        node = await self._resolve(request.ref, "path not found when statting")
        info = await self._run(self.storage.info, node, list(request.arbitrary_metadata_keys))
        self.storage.relative_path(info, node)
        return sp.StatResponse(status=status(), info=info)

    @rpc
    async def GetPath(self, request: sp.GetPathRequest, context: Any) -> sp.GetPathResponse:
        """Resource id -> its path in the namespace (the gateway's GetPath). oCIS clients need it: a
        Stat by id answers a relative path there (EmulatorConfig.info_paths)."""
        node = await self._resolve(res.Reference(resource_id=request.resource_id, path="."))
        return sp.GetPathResponse(status=status(), path=node.path)

    @rpc
    async def ListContainer(self, request: sp.ListContainerRequest, context: Any) -> sp.ListContainerResponse:
        node = await self._resolve(request.ref, "path not found when listing container")
        Storage.require(node, "list_container")
        keys = list(request.arbitrary_metadata_keys)
        infos = await self._run(self.storage.list_container, node, self._user(), keys)
        return sp.ListContainerResponse(status=status(), infos=infos)

    @rpc
    async def CreateContainer(
        self, request: sp.CreateContainerRequest, context: Any
    ) -> sp.CreateContainerResponse:
        node = await self._resolve(request.ref, "path not found when creating container")
        Storage.require(node, "create_container")
        await self._run(self.storage.mkdir, node)
        return sp.CreateContainerResponse(status=status())

    @rpc
    async def TouchFile(self, request: sp.TouchFileRequest, context: Any) -> sp.TouchFileResponse:
        node = await self._resolve(request.ref, "path not found when touching the file")
        Storage.require(node, "initiate_file_upload")
        await self._run(self.storage.touch, node)
        return sp.TouchFileResponse(status=status())

    @rpc
    async def Delete(self, request: sp.DeleteRequest, context: Any) -> sp.DeleteResponse:
        node = await self._resolve(request.ref, "path not found when deleting")
        Storage.require(node, "delete")
        if node.disk is not None:
            await self._run(self.storage.locks.check_mutation, node.disk, request.lock_id)
        await self._run(self.storage.delete, node, self._user())
        return sp.DeleteResponse(status=status())

    @rpc
    async def Move(self, request: sp.MoveRequest, context: Any) -> sp.MoveResponse:
        src = await self._resolve(request.source, "path not found when moving")
        dst = await self._resolve(request.destination, "path not found when moving")
        Storage.require(src, "move")
        self._require_write(dst)
        if src.disk is not None:
            await self._run(self.storage.locks.check_mutation, src.disk, request.lock_id)
        await self._run(self.storage.move, src, dst)
        return sp.MoveResponse(status=status())

    # ------------------------------------------------------------------ transfers
    def _data_url(self, route: str) -> str:
        return f"{self.emu.http_url}/data/{route}"

    def _endpoint(self, target: str, version_key: str = "") -> tuple[str, str]:
        if self.config.expose_data_server:
            return target, ""
        token, _ = self.emu.transfers.issue(target, version_key)
        return f"{self.emu.http_url}/datagateway", token

    @rpc
    async def InitiateFileDownload(
        self, request: sp.InitiateFileDownloadRequest, context: Any
    ) -> gw.InitiateFileDownloadResponse:
        ref = request.ref
        version_key = opaque_value(request.opaque, "version_key")
        # A version addressed by id: "<fileid>@<key>" (EOS) or the revision id "<fileid>.REV.<ts>" (oCIS).
        base_id, id_key = split_version_ref(ref.resource_id.opaque_id)
        version_key = version_key or id_key
        node = await self._resolve(ref, "path not found when initiating download")
        Storage.require(node, "initiate_file_download")
        if self.config.strict_download_initiate and (node.disk is None or not node.disk.exists()):
            raise CS3Error.not_found("path not found when initiating download")
        if ref.path.startswith("/"):
            protocol = "simple"
            target = self._data_url("simple" + urllib.parse.quote(node.path))
        else:
            protocol = "spaces"
            rid = ref.resource_id
            rel = "/".join(p for p in ref.path.split("/") if p not in ("", "."))
            target = self._data_url(
                f"spaces/{urllib.parse.quote(rid.storage_id)}!{urllib.parse.quote(base_id)}"
                + (f"/{urllib.parse.quote(rel)}" if rel else "")
            )
        endpoint, token = self._endpoint(target, version_key)
        return gw.InitiateFileDownloadResponse(
            status=status(),
            protocols=[
                gw_res.FileDownloadProtocol(protocol=protocol, download_endpoint=endpoint, token=token)
            ],
        )

    @rpc
    async def InitiateFileUpload(
        self, request: sp.InitiateFileUploadRequest, context: Any
    ) -> gw.InitiateFileUploadResponse:
        user = self._user()
        node = await self._resolve(request.ref, "path not found when initiating upload")
        if node.virtual or node.is_root:
            raise CS3Error.internal("can't upload to mount path")
        Storage.require(node, "initiate_file_upload")
        assert node.disk is not None
        raw_length = opaque_value(request.opaque, "Upload-Length")
        try:
            length = int(raw_length) if raw_length else -1
        except ValueError:
            raise CS3Error.internal("error parsing upload length") from None
        checksum = opaque_value(request.opaque, "Upload-Checksum")
        mtime = opaque_value(request.opaque, "X-OC-Mtime")
        try:
            checksum = parse_checksum(checksum) if checksum else ""
            if mtime and self.config.honour_oc_mtime:
                parse_mtime_ns(mtime)
        except ValueError as e:
            raise CS3Error(code_pb2.CODE_INVALID_ARGUMENT, str(e)) from None
        session = await self._run(self._prepare_upload, node, user, request, length, checksum)
        protocols = []
        for name in self.config.upload_protocols or ["simple"]:
            target = self._data_url(f"{name}/{session}")
            endpoint, token = self._endpoint(target)
            protocols.append(
                gw_res.FileUploadProtocol(
                    protocol=name,
                    upload_endpoint=endpoint,
                    token=token,
                    available_checksums=[
                        res.ResourceChecksumPriority(type=res.RESOURCE_CHECKSUM_TYPE_ADLER32, priority=1)
                    ],
                )
            )
        return gw.InitiateFileUploadResponse(status=status(), protocols=protocols)

    def _prepare_upload(
        self, node: Node, user: UserSpec, request: sp.InitiateFileUploadRequest, length: int, checksum: str
    ) -> str:
        """Checks and session creation, atomically under the storage mutex."""
        s = self.storage
        disk = node.disk
        assert disk is not None
        with s.mutex:
            if not disk.parent.is_dir():
                # EOS does not look (the PUT fails later with 409); decomposedfs answers
                # FAILED_PRECONDITION (EmulatorConfig.upload_missing_parent).
                if self.config.upload_missing_parent == "failed_precondition":
                    raise CS3Error(code_pb2.CODE_FAILED_PRECONDITION, "failed precondition")
                if self.config.upload_missing_parent == "not_found":
                    raise CS3Error.not_found("path not found when initiating upload")
            if disk.is_dir():
                raise CS3Error(code_pb2.CODE_FAILED_PRECONDITION, "resource is not a file")
            exists = disk.exists()
            s.locks.check_mutation(disk, request.lock_id)
            if self.config.conditional_upload == "honour":
                if request.if_not_exist and exists:
                    raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "resource already exists")
                if request.if_match and (not exists or s.etag(disk) != request.if_match):
                    raise CS3Error(code_pb2.CODE_FAILED_PRECONDITION, "etag mismatch")
                since = request.if_unmodified_since
                if exists and request.HasField("if_unmodified_since"):
                    limit_ns = since.seconds * 1_000_000_000 + since.nanos
                    if disk.stat().st_mtime_ns > limit_ns:
                        raise CS3Error(code_pb2.CODE_FAILED_PRECONDITION, "resource has been modified")
            if length > 0 and self.config.quota_refusal == "initiate":
                s.check_quota(node, length)
            session = s.create_session(
                node,
                user,
                length,
                ttl=self.emu.transfers.ttl,
                lock_id=request.lock_id,
                mtime=opaque_value(request.opaque, "X-OC-Mtime"),
                if_match=request.if_match if self.config.conditional_upload == "honour" else "",
                if_not_exist=bool(request.if_not_exist) and self.config.conditional_upload == "honour",
                checksum=checksum,
            )
            if length == 0 and self.config.zero_length_finalizes_at_initiate:
                # decomposedfs finishes a zero-byte upload inside Initiate; a later PUT then gets 404.
                from .storage import WriteContext

                source = s.upload_file(session.id)
                s.commit(source, session, WriteContext(user, lock_id=request.lock_id, mtime=session.mtime), 1)
                s.finish_session(session.id)
            return session.id

    # ------------------------------------------------------------------ versions and metadata
    @rpc
    async def ListFileVersions(
        self, request: sp.ListFileVersionsRequest, context: Any
    ) -> sp.ListFileVersionsResponse:
        node = await self._resolve(request.ref, "path not found when listing versions")
        Storage.require(node, "list_file_versions")
        versions = await self._run(self.storage.list_versions, node)
        return sp.ListFileVersionsResponse(status=status(), versions=versions)

    @rpc
    async def RestoreFileVersion(
        self, request: sp.RestoreFileVersionRequest, context: Any
    ) -> sp.RestoreFileVersionResponse:
        node = await self._resolve(request.ref, "path not found when restoring file version")
        Storage.require(node, "restore_file_version")
        if node.disk is not None:
            await self._run(self.storage.locks.check_mutation, node.disk, request.lock_id)
        await self._run(self.storage.restore_version, node, request.key)
        return sp.RestoreFileVersionResponse(status=status())

    @rpc
    async def SetArbitraryMetadata(
        self, request: sp.SetArbitraryMetadataRequest, context: Any
    ) -> sp.SetArbitraryMetadataResponse:
        node = await self._resolve(request.ref, "path not found when setting arbitrary metadata")
        self._require_write(node)
        if node.disk is not None:
            await self._run(self.storage.locks.check_mutation, node.disk, request.lock_id)
        await self._run(self.storage.set_xattrs, node, dict(request.arbitrary_metadata.metadata))
        return sp.SetArbitraryMetadataResponse(status=status())

    @rpc
    async def UnsetArbitraryMetadata(
        self, request: sp.UnsetArbitraryMetadataRequest, context: Any
    ) -> sp.UnsetArbitraryMetadataResponse:
        node = await self._resolve(request.ref, "path not found when unsetting arbitrary metadata")
        self._require_write(node)
        if node.disk is not None:
            await self._run(self.storage.locks.check_mutation, node.disk, request.lock_id)
        await self._run(self.storage.unset_xattrs, node, list(request.arbitrary_metadata_keys))
        return sp.UnsetArbitraryMetadataResponse(status=status())

    # ------------------------------------------------------------------ locks
    async def _lock_node(self, ref: res.Reference, *, changes: bool = True) -> Node:
        if changes and (message := self.storage.take_lock_failure()) is not None:
            raise CS3Error.internal(message)
        try:
            return await self._run(self.storage.resolve, ref, self._user())
        except CS3Error as e:
            if e.code == code_pb2.CODE_NOT_FOUND and self.config.missing_file_on_lock_ops == "internal":
                raise CS3Error.internal("error: not found") from None
            raise

    @rpc
    async def SetLock(self, request: sp.SetLockRequest, context: Any) -> sp.SetLockResponse:
        node = await self._lock_node(request.ref)
        self._require_write(node)
        await self._run(self.storage.locks.set_lock, node, request.lock, self._user())
        return sp.SetLockResponse(status=status())

    @rpc
    async def GetLock(self, request: sp.GetLockRequest, context: Any) -> sp.GetLockResponse:
        node = await self._lock_node(request.ref, changes=False)
        lock = await self._run(self.storage.locks.get_lock, node)
        return sp.GetLockResponse(status=status(), lock=lock)

    @rpc
    async def RefreshLock(self, request: sp.RefreshLockRequest, context: Any) -> sp.RefreshLockResponse:
        node = await self._lock_node(request.ref)
        self._require_write(node)
        await self._run(
            self.storage.locks.refresh_lock, node, request.lock, request.existing_lock_id, self._user()
        )
        return sp.RefreshLockResponse(status=status())

    @rpc
    async def Unlock(self, request: sp.UnlockRequest, context: Any) -> sp.UnlockResponse:
        node = await self._lock_node(request.ref)
        self._require_write(node)
        await self._run(self.storage.locks.unlock, node, request.lock, self._user())
        return sp.UnlockResponse(status=status())

    # ------------------------------------------------------------------ quota and spaces
    @rpc
    async def GetQuota(self, request: gw.GetQuotaRequest, context: Any) -> sp.GetQuotaResponse:
        node = await self._resolve(request.ref, "path not found when getting quota")
        total, used, remaining = await self._run(self.storage.quota, node)
        response = sp.GetQuotaResponse(status=status(), total_bytes=total, used_bytes=used)
        if remaining is not None:
            response.opaque.map["remaining"].CopyFrom(
                types_pb2.OpaqueEntry(decoder="plain", value=str(remaining).encode())
            )
        return response

    @rpc
    async def ListStorageSpaces(
        self, request: spaces_api_pb2.ListStorageSpacesRequest, context: Any
    ) -> spaces_api_pb2.ListStorageSpacesResponse:
        spaces = await self._run(list_spaces, self.storage, self._user(), list(request.filters))
        return spaces_api_pb2.ListStorageSpacesResponse(status=status(), storage_spaces=spaces)

    # ------------------------------------------------------------------ recycle (optional for a gateway)
    @rpc
    async def ListRecycle(self, request: sp.ListRecycleRequest, context: Any) -> sp.ListRecycleResponse:
        rows = await self._run(self.storage.list_recycle, self._user())
        items = [
            res.RecycleItem(
                type=row["type"],
                key=row["key"],
                ref=res.Reference(path=row["path"]),
                size=row["size"],
                deletion_time=types_pb2.Timestamp(seconds=int(row["deletion_time"])),
            )
            for row in rows
        ]
        return sp.ListRecycleResponse(status=status(), recycle_items=items)

    @rpc
    async def RestoreRecycleItem(
        self, request: sp.RestoreRecycleItemRequest, context: Any
    ) -> sp.RestoreRecycleItemResponse:
        target = None
        if request.restore_ref.path or request.restore_ref.resource_id.opaque_id:
            target = await self._resolve(request.restore_ref)
        await self._run(self.storage.restore_recycle, self._user(), request.key, target)
        return sp.RestoreRecycleItemResponse(status=status())

    @rpc
    async def PurgeRecycle(self, request: sp.PurgeRecycleRequest, context: Any) -> sp.PurgeRecycleResponse:
        await self._run(self.storage.purge_recycle, self._user(), request.key)
        return sp.PurgeRecycleResponse(status=status())
