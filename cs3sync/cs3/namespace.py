"""The namespace: Stat, listings, create, delete, move, metadata, versions, quota and spaces. Each
method builds a request, sends it through the `Gateway`, converts the answer (`convert`), and turns the
storage's weakly typed failures (EOS's INTERNAL for a missing item, storage behaviours row 4) into
precise errors."""

from __future__ import annotations

import builtins
import posixpath
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.to_thread
import cs3.gateway.v1beta1.gateway_api_pb2 as gw
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr
import cs3.storage.provider.v1beta1.spaces_api_pb2 as spaces_api

from . import convert, errors
from .locking import AttrLocks
from .parts import ClientParts, Target, label, reference
from .types import FileId, Quota, ResourceInfo, Space, Version

#: Listings with fewer entries are converted on the event loop (about 10 µs an entry); bigger ones in a
#: worker thread, so that a 1,000-entry folder does not stall the loop.
LIST_CONVERT_INLINE = 200


class NamespaceOps:
    """The client's namespace operations (``client.stat``, ``client.list`` ...)."""

    def __init__(self, client: ClientParts, attr: AttrLocks) -> None:
        self._client = client
        self._attr = attr

    async def _mutate(self, method: str, request: Any, *, op: str, target: Target) -> Any:
        """A mutating RPC (never retried here). A lock conflict is reported with its holder; an INTERNAL
        without a cause on a target that does not exist is NotFound (EOS, storage behaviours row 4)."""
        try:
            return await self._client.gateway.call(method, request, op=op, path=label(target))
        except errors.Locked as exc:
            if isinstance(target, str) and exc.holder is None:
                raise await self._client.locked_error(target, exc) from None
            raise
        except errors.ServerError as exc:
            await self._decide_untyped(target, exc)
            raise

    async def _decide_untyped(self, target: Target, err: errors.ServerError) -> ResourceInfo | None:
        """EOS answers INTERNAL with no errno for a missing item (storage behaviours row 4). Stat it:
        missing -> raise NotFound; otherwise return what the Stat saw (the caller decides or re-raises
        ``err``, whose message is the storage's own)."""
        info = await self._client.stat_or_none(target)
        if info is None:
            raise errors.NotFound(err.message, op=err.op, path=label(target), code=err.code) from None
        return info

    async def stat_raw(self, target: Target, metadata_keys: Iterable[str] = ()) -> spr.ResourceInfo:
        req = sp.StatRequest(ref=reference(target), arbitrary_metadata_keys=list(metadata_keys))
        resp = await self._client.gateway.call("Stat", req, op="stat", path=label(target), idempotent=True)
        return resp.info

    async def stat(self, target: Target, *, metadata_keys: Iterable[str] = ()) -> ResourceInfo:
        """Stat a path or resource id. ``metadata_keys`` asks for arbitrary metadata (EOS returns all).
        With ``lock_as_attr`` the lock the attribute emulates is the info's ``lock``."""
        raw = await self.stat_raw(target, self._attr.metadata_keys(metadata_keys))
        if isinstance(target, str):
            return self._attr.with_lock(convert.resource_info(raw, at=target))
        if not raw.path.startswith("/"):
            # oCIS answers a Stat by id with a path relative to its space (storage behaviours row 3):
            # the caller needs the resource's place in the namespace (shares, links, renamed files).
            return self._attr.with_lock(convert.resource_info(raw, at=await self._client.get_path(target)))
        return self._attr.with_lock(convert.resource_info(raw))

    async def get_path(self, file_id: FileId) -> str:
        """The namespace path of a resource id (the gateway's GetPath)."""
        req = sp.GetPathRequest(resource_id=convert.ref(".", file_id).resource_id)
        resp = await self._client.gateway.call("GetPath", req, op="stat", path=str(file_id), idempotent=True)
        return str(resp.path)

    async def stat_or_none(self, target: Target, *, metadata_keys: Iterable[str] = ()) -> ResourceInfo | None:
        try:
            return await self._client.stat(target, metadata_keys=metadata_keys)
        except errors.NotFound:
            return None

    async def exists(self, target: Target) -> bool:
        return await self._client.stat_or_none(target) is not None

    async def list(self, target: Target, *, metadata_keys: Iterable[str] = ()) -> list[ResourceInfo]:
        """One ListContainer (Reva does not paginate it in practice, nor implement the stream)."""
        keys = self._attr.metadata_keys(metadata_keys)
        req = sp.ListContainerRequest(ref=reference(target), arbitrary_metadata_keys=keys)
        try:
            resp = await self._client.gateway.call(
                "ListContainer", req, op="list", path=label(target), idempotent=True
            )
        except errors.ServerError as exc:
            info = await self._decide_untyped(target, exc)
            if info is not None and not info.is_dir:
                raise errors.InvalidArgument("not a folder", op="list", path=label(target)) from None
            raise
        infos = resp.infos
        parent = (target.rstrip("/") or "/") if isinstance(target, str) else None
        if len(infos) < LIST_CONVERT_INLINE:
            listed = convert.resource_infos(infos, parent)
        else:  # a big folder: converting thousands of entries would hold the event loop for tens of ms
            listed = await anyio.to_thread.run_sync(convert.resource_infos, infos, parent)
        return [self._attr.with_lock(info) for info in listed] if self._client.config.lock_as_attr else listed

    async def mkdir(self, path: str) -> None:
        """CreateContainer. EOS creates parents and accepts an existing directory; others answer
        AlreadyExists / NotFound (missing parent). Not retried: the caller verifies with Stat."""
        try:
            await self._client.gateway.call(
                "CreateContainer", sp.CreateContainerRequest(ref=convert.ref(path)), op="mkdir", path=path
            )
        except errors.ServerError as exc:
            if await self._client.stat_or_none(path) is not None:
                raise errors.AlreadyExists(exc.message, op="mkdir", path=path, code=exc.code) from None
            parent = posixpath.dirname(path.rstrip("/")) or "/"
            if parent != "/" and await self._client.stat_or_none(parent) is None:
                raise errors.NotFound(f"folder {parent} does not exist", op="mkdir", path=path) from None
            raise

    async def touch(self, path: str, *, lock_id: str | None = None) -> None:
        """TouchFile: creates an empty file. EOS bumps an existing file's mtime; localfs says
        AlreadyExists."""
        req = sp.TouchFileRequest(ref=convert.ref(path))
        if lock_id:
            req.lock_id = lock_id
        await self._mutate("TouchFile", req, op="touch", target=path)

    async def delete(self, target: Target, *, lock_id: str | None = None) -> None:
        """Delete (recursive, to the recycle bin)."""
        req = sp.DeleteRequest(ref=reference(target))
        if lock_id:
            req.lock_id = lock_id
        await self._mutate("Delete", req, op="delete", target=target)

    async def move(self, src: Target, dst: str, *, lock_id: str | None = None) -> None:
        """Move/rename. Some drivers silently replace an existing destination: check it first."""
        req = sp.MoveRequest(source=reference(src), destination=convert.ref(dst))
        if lock_id:
            req.lock_id = lock_id
        await self._mutate("Move", req, op="move", target=src)

    async def list_versions(self, path: str) -> builtins.list[Version]:
        """Newest first. Follows page tokens (cs3client ignores them)."""
        out: builtins.list[Version] = []
        token = ""
        for _ in range(1000):
            req = sp.ListFileVersionsRequest(ref=convert.ref(path), page_token=token)
            resp = await self._client.gateway.call(
                "ListFileVersions", req, op="list_versions", path=path, idempotent=True
            )
            out.extend(convert.version(v) for v in resp.versions)
            token = resp.next_page_token
            if not token:
                break
        out.sort(key=lambda v: v.mtime, reverse=True)
        return out

    async def restore_version(self, path: str, key: str, *, lock_id: str | None = None) -> None:
        req = sp.RestoreFileVersionRequest(ref=convert.ref(path), key=key)
        if lock_id and not (self._client.config.lock_as_attr or self._client.config.lock_not_impl):
            req.lock_id = lock_id
        try:
            await self._mutate("RestoreFileVersion", req, op="restore_version", target=path)
        except errors.ServerError as exc:
            # EOS: INTERNAL for an unknown key too (row 4): say so when the versions tell.
            if key not in {v.key for v in await self._client.list_versions(path)}:
                raise errors.NotFound(f"no version {key}", op="restore_version", path=path) from None
            raise exc from None

    async def set_metadata(
        self, target: Target, values: dict[str, str], *, lock_id: str | None = None
    ) -> None:
        if not values or any(not k or not v for k, v in values.items()):
            # Reva turns empty maps, keys or values into INTERNAL; say what is wrong instead.
            raise errors.InvalidArgument(
                "metadata keys and values must be non-empty", op="set_metadata", path=label(target)
            )
        req = sp.SetArbitraryMetadataRequest(
            ref=reference(target), arbitrary_metadata=spr.ArbitraryMetadata(metadata=values)
        )
        if lock_id:
            req.lock_id = lock_id
        await self._mutate("SetArbitraryMetadata", req, op="set_metadata", target=target)

    async def unset_metadata(
        self, target: Target, keys: Iterable[str], *, lock_id: str | None = None
    ) -> None:
        keys = [k for k in keys if k]
        if not keys:
            return
        req = sp.UnsetArbitraryMetadataRequest(ref=reference(target), arbitrary_metadata_keys=keys)
        if lock_id:
            req.lock_id = lock_id
        await self._mutate("UnsetArbitraryMetadata", req, op="unset_metadata", target=target)

    async def quota(self, path: str | None = None) -> Quota:
        """Quota of the space holding ``path`` (home by default). ``total == 0`` means unlimited."""
        target = path or await self._client.home()
        resp = await self._client.gateway.call(
            "GetQuota", gw.GetQuotaRequest(ref=convert.ref(target)), op="quota", path=target, idempotent=True
        )
        extra = convert.opaque_values(resp.opaque)
        remaining: int | None = None
        if extra.get("remaining", "").isdigit():
            remaining = int(extra["remaining"])
        elif resp.total_bytes:
            remaining = max(int(resp.total_bytes) - int(resp.used_bytes), 0)
        return Quota(used=int(resp.used_bytes), total=int(resp.total_bytes), remaining=remaining)

    async def spaces(self, space_type: str | None = None) -> builtins.list[Space]:
        filters = []
        if space_type:
            filters.append(
                spaces_api.ListStorageSpacesRequest.Filter(
                    type=spaces_api.ListStorageSpacesRequest.Filter.TYPE_SPACE_TYPE, space_type=space_type
                )
            )
        req = spaces_api.ListStorageSpacesRequest(filters=filters)
        resp = await self._client.gateway.call("ListStorageSpaces", req, op="spaces", idempotent=True)
        return convert.distinct_spaces((convert.space(s) for s in resp.storage_spaces), space_type)
