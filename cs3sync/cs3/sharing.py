"""Shares and public links: create, update, remove, and the listings, which fall back from
``ListExisting*`` (one broken share fails CERNBox's whole answer) to ``List*`` plus a Stat each; every
resource placed in the namespace (oCIS answers paths relative to their space, storage behaviours row 3)."""

from __future__ import annotations

import builtins
import dataclasses
import posixpath
from typing import Any, TypeVar

import anyio
import cs3.sharing.collaboration.v1beta1.collaboration_api_pb2 as collab
import cs3.sharing.collaboration.v1beta1.resources_pb2 as sharepb
import cs3.sharing.link.v1beta1.link_api_pb2 as linkapi
import cs3.sharing.link.v1beta1.resources_pb2 as linkpb
import cs3.storage.provider.v1beta1.resources_pb2 as spr
from google.protobuf import field_mask_pb2

from cs3sync.logs import get_logger

from . import convert, errors
from .parts import ClientParts, Target, label
from .types import VIEWER, FileId, Grantee, PublicLink, ReceivedShare, Share

log = get_logger("cs3sync.cs3.client")

_Placed = TypeVar("_Placed", Share, ReceivedShare, PublicLink)


class SharingOps:
    """The client's share and link operations (``client.create_share`` ...)."""

    def __init__(self, client: ClientParts) -> None:
        self._client = client

    async def _placed(self, item: _Placed) -> _Placed:
        """A share's or link's resource with its place in the namespace: oCIS answers resource infos
        with paths relative to their space (storage behaviours row 3), which name nothing in Jupyter."""
        res = item.resource
        if res is None or res.path.startswith("/"):
            return item
        path = await self._client.get_path(res.file_id)
        placed = dataclasses.replace(res, path=path, name=res.name or posixpath.basename(path))
        return dataclasses.replace(item, resource=placed)

    async def create_share(
        self,
        target: Target,
        grantee: Grantee,
        permissions: frozenset[str] = VIEWER,
        *,
        expiration: float | None = None,
    ) -> Share:
        info = await self._client.stat_raw(target)  # the gateway wants the resource info with its id
        grant = sharepb.ShareGrant(
            grantee=convert.grantee(grantee),
            permissions=sharepb.SharePermissions(permissions=convert.permissions(permissions)),
        )
        if expiration is not None:
            grant.expiration.CopyFrom(convert.timestamp(expiration))
        resp = await self._client.gateway.call(
            "CreateShare",
            collab.CreateShareRequest(resource_info=info, grant=grant),
            op="create_share",
            path=label(target),
        )
        return await self._placed(convert.share(resp.share, info))

    async def update_share(
        self, share_id: str, *, permissions: frozenset[str] | None = None, expiration: float | None = None
    ) -> Share:
        """Change a share's permissions and/or expiration (one UpdateShare per field, as Reva takes one)."""
        ref = sharepb.ShareReference(id=sharepb.ShareId(opaque_id=share_id))
        fields: builtins.list[collab.UpdateShareRequest.UpdateField] = []
        if permissions is not None:
            fields.append(
                collab.UpdateShareRequest.UpdateField(
                    permissions=sharepb.SharePermissions(permissions=convert.permissions(permissions))
                )
            )
        if expiration is not None:
            fields.append(collab.UpdateShareRequest.UpdateField(expiration=convert.timestamp(expiration)))
        if not fields:
            raise errors.InvalidArgument("nothing to update", op="update_share")
        resp: Any = None
        for field in fields:
            resp = await self._client.gateway.call(
                "UpdateShare",
                collab.UpdateShareRequest(ref=ref, field=field),
                op="update_share",
                path=share_id,
            )
        return convert.share(resp.share)

    async def remove_share(self, share_id: str) -> None:
        ref = sharepb.ShareReference(id=sharepb.ShareId(opaque_id=share_id))
        await self._client.gateway.call(
            "RemoveShare", collab.RemoveShareRequest(ref=ref), op="remove_share", path=share_id
        )

    async def _stat_many(self, ids: builtins.list[FileId]) -> dict[FileId, spr.ResourceInfo]:
        """Stat each id concurrently (bounded); failures leave the id out."""
        found: dict[FileId, spr.ResourceInfo] = {}
        limiter = anyio.CapacityLimiter(8)

        async def one(fid: FileId) -> None:
            async with limiter:
                try:
                    found[fid] = await self._client.stat_raw(fid)
                except (
                    errors.NotFound,
                    errors.PermissionDenied,
                    errors.ServerError,
                    errors.Transient,
                    errors.InvalidArgument,
                ) as exc:
                    log.info("cs3.shares.stat_failed", id=str(fid), error=exc.kind)

        async with anyio.create_task_group() as tg:
            for fid in dict.fromkeys(ids):
                tg.start_soon(one, fid)
        return found

    async def _pages(
        self, method: str, request: Any, field: str, *, op: str, idempotent: bool = False
    ) -> builtins.list[Any]:
        """Call a paginated listing until ``next_page_token`` is empty; the items of ``field``.

        ``ListExisting*`` are not retried here: their typical failure (one broken share) is not
        transient, and the caller falls back to ``List*`` + Stat at once."""
        items: builtins.list[Any] = []
        token = ""
        for _ in range(10_000):
            page = type(request)()
            page.CopyFrom(request)
            page.page_token = token
            resp = await self._client.gateway.call(method, page, op=op, idempotent=idempotent)
            items.extend(getattr(resp, field))
            token = resp.next_page_token
            if not token:
                break
        return items

    @staticmethod
    def _listing_failed_as_whole(exc: errors.CS3Error) -> bool:
        """CERNBox fails a whole ListExisting* with gRPC UNKNOWN when one share's Stat fails."""
        if isinstance(exc, errors.Transient):
            return not exc.connectivity
        return isinstance(exc, (errors.ServerError, errors.Unimplemented, errors.NotFound))

    async def list_outgoing_shares(self, target: Target | None = None) -> builtins.list[Share]:
        filters = []
        if target is not None:
            info = await self._client.stat(target)
            filters.append(
                sharepb.Filter(
                    type=sharepb.Filter.TYPE_RESOURCE_ID, resource_id=convert.resource_id(info.file_id)
                )
            )
        req = collab.ListSharesRequest(filters=filters)
        try:
            found = await self._pages("ListExistingShares", req, "share_infos", op="list_shares")
            return [await self._placed(convert.share(si.share, si.resource_info)) for si in found]
        except errors.CS3Error as exc:
            if not self._listing_failed_as_whole(exc):
                raise
            log.info("cs3.shares.fallback", call="ListExistingShares", error=exc.kind)
        shares = await self._pages("ListShares", req, "shares", op="list_shares", idempotent=True)
        infos = await self._stat_many([convert.file_id(s.resource_id) for s in shares])
        return [
            await self._placed(convert.share(s, infos.get(convert.file_id(s.resource_id)))) for s in shares
        ]

    async def list_incoming_shares(self) -> builtins.list[ReceivedShare]:
        req = collab.ListReceivedSharesRequest()
        try:
            found = await self._pages(
                "ListExistingReceivedShares", req, "share_infos", op="list_received_shares"
            )
            return [
                await self._placed(convert.received_share(si.received_share, si.resource_info))
                for si in found
            ]
        except errors.CS3Error as exc:
            if not self._listing_failed_as_whole(exc):
                raise
            log.info("cs3.shares.fallback", call="ListExistingReceivedShares", error=exc.kind)
        received = await self._pages(
            "ListReceivedShares", req, "shares", op="list_received_shares", idempotent=True
        )
        infos = await self._stat_many([convert.file_id(rs.share.resource_id) for rs in received])
        return [
            await self._placed(convert.received_share(rs, infos.get(convert.file_id(rs.share.resource_id))))
            for rs in received
        ]

    async def update_received_share(
        self, share_id: str, *, state: str | None = None, hidden: bool | None = None
    ) -> ReceivedShare:
        """Accept/reject (``state`` = "accepted" | "rejected" | "pending") or hide a received share."""
        paths: builtins.list[str] = []
        rs = sharepb.ReceivedShare(share=sharepb.Share(id=sharepb.ShareId(opaque_id=share_id)))
        if state is not None:
            rs.state = convert.share_state_code(state)
            paths.append("state")
        if hidden is not None:
            rs.hidden = hidden
            paths.append("hidden")
        if not paths:
            raise errors.InvalidArgument("nothing to update", op="update_received_share")
        req = collab.UpdateReceivedShareRequest(share=rs, update_mask=field_mask_pb2.FieldMask(paths=paths))
        resp = await self._client.gateway.call(
            "UpdateReceivedShare", req, op="update_received_share", path=share_id
        )
        return convert.received_share(resp.share)

    async def create_link(
        self,
        target: Target,
        permissions: frozenset[str] = VIEWER,
        *,
        password: str | None = None,
        expiration: float | None = None,
        description: str = "",
    ) -> PublicLink:
        info = await self._client.stat_raw(target)
        grant = linkpb.Grant(
            permissions=linkpb.PublicSharePermissions(permissions=convert.permissions(permissions))
        )
        if password:
            grant.password = password
        if expiration is not None:
            grant.expiration.CopyFrom(convert.timestamp(expiration))
        req = linkapi.CreatePublicShareRequest(resource_info=info, grant=grant, description=description)
        resp = await self._client.gateway.call("CreatePublicShare", req, op="create_link", path=label(target))
        return await self._placed(convert.public_link(resp.share, info))

    async def update_link(
        self,
        link_id: str,
        *,
        permissions: frozenset[str] | None = None,
        password: str | None = None,
        expiration: float | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> PublicLink:
        U = linkapi.UpdatePublicShareRequest.Update
        updates: builtins.list[Any] = []
        if permissions is not None:
            updates.append(
                U(
                    type=U.TYPE_PERMISSIONS,
                    grant=linkpb.Grant(
                        permissions=linkpb.PublicSharePermissions(
                            permissions=convert.permissions(permissions)
                        )
                    ),
                )
            )
        if password is not None:
            updates.append(U(type=U.TYPE_PASSWORD, grant=linkpb.Grant(password=password)))
        if expiration is not None:
            updates.append(
                U(type=U.TYPE_EXPIRATION, grant=linkpb.Grant(expiration=convert.timestamp(expiration)))
            )
        if display_name is not None:
            updates.append(U(type=U.TYPE_DISPLAYNAME, display_name=display_name))
        if description is not None:
            updates.append(U(type=U.TYPE_DESCRIPTION, description=description))
        if not updates:
            raise errors.InvalidArgument("nothing to update", op="update_link")
        ref = linkpb.PublicShareReference(id=linkpb.PublicShareId(opaque_id=link_id))
        resp: Any = None
        for update in updates:
            resp = await self._client.gateway.call(
                "UpdatePublicShare",
                linkapi.UpdatePublicShareRequest(ref=ref, update=update),
                op="update_link",
                path=link_id,
            )
        return convert.public_link(resp.share)

    async def remove_link(self, link_id: str) -> None:
        ref = linkpb.PublicShareReference(id=linkpb.PublicShareId(opaque_id=link_id))
        await self._client.gateway.call(
            "RemovePublicShare", linkapi.RemovePublicShareRequest(ref=ref), op="remove_link", path=link_id
        )

    async def list_links(self, target: Target | None = None) -> builtins.list[PublicLink]:
        F = linkapi.ListPublicSharesRequest.Filter
        filters = []
        if target is not None:
            info = await self._client.stat(target)
            filters.append(F(type=F.TYPE_RESOURCE_ID, resource_id=convert.resource_id(info.file_id)))
        req = linkapi.ListPublicSharesRequest(filters=filters)
        try:
            found = await self._pages("ListExistingPublicShares", req, "share_infos", op="list_links")
            return [
                await self._placed(convert.public_link(si.public_share, si.resource_info)) for si in found
            ]
        except errors.CS3Error as exc:
            if not self._listing_failed_as_whole(exc):
                raise
            log.info("cs3.shares.fallback", call="ListExistingPublicShares", error=exc.kind)
        links = await self._pages("ListPublicShares", req, "share", op="list_links", idempotent=True)
        infos = await self._stat_many([convert.file_id(s.resource_id) for s in links])
        return [
            await self._placed(convert.public_link(s, infos.get(convert.file_id(s.resource_id))))
            for s in links
        ]
