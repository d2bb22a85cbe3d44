"""The sharing RPCs of the gateway (user shares, received shares, public links, user/group search):
``SharingMixin`` adds them to the servicer, over the `ShareStore` of share_store.py."""

from __future__ import annotations

from typing import Any

import grpc
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import resources_pb2 as gw_res
from cs3.identity.group.v1beta1 import group_api_pb2
from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import user_api_pb2
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.link.v1beta1 import link_api_pb2 as link
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from .auth import user_id_proto, user_proto
from .config import UserSpec
from .errors import CS3Error, status
from .interceptor import current_user
from .share_store import DuplicateShare, ShareStore
from .storage import Storage


class SharingMixin:
    """Sharing, links and user/group search RPCs for the GatewayServicer."""

    storage: Storage

    @property
    def shares(self) -> ShareStore:
        store = getattr(self, "_share_store", None)
        if store is None:
            store = self._share_store = ShareStore(self.storage)
        return store

    async def _call(self, context: Any, response: type, fn: Any, *args: Any) -> Any:
        """Run a store call in a thread; CS3Error -> status; a duplicate share -> gRPC UNKNOWN."""
        import asyncio

        try:
            return await asyncio.to_thread(fn, *args)
        except DuplicateShare as e:
            await context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except CS3Error as e:
            return response(status=status(e.code, e.message))

    @staticmethod
    def _caller() -> UserSpec:
        user = current_user.get()
        assert user is not None
        return user

    def _stat_by_id(self, rid: res.ResourceId, user: UserSpec) -> res.ResourceInfo:
        node = self.storage.resolve(res.Reference(resource_id=rid, path="."), user)
        return self.storage.info(node)

    def _existing(
        self, items: list[Any], rid_of: Any, user: UserSpec
    ) -> list[tuple[Any, res.ResourceInfo | None]]:
        """Join a Stat per share; with the CERNBox quirk on, any failed Stat fails the whole call."""
        out = []
        for item in items:
            try:
                out.append((item, self._stat_by_id(rid_of(item), user)))
            except CS3Error as e:
                if self.storage.config.list_existing_fails_on_broken:
                    raise DuplicateShare(f"error statting shared resource: {e.message}") from None
        return out

    # -- user shares -------------------------------------------------------------------------
    async def CreateShare(self, request: collab.CreateShareRequest, context: Any) -> Any:
        async def run() -> Any:
            share = await self._call(
                context,
                collab.CreateShareResponse,
                self.shares.create,
                self._caller(),
                request.resource_info,
                request.grant,
            )
            return (
                share
                if isinstance(share, collab.CreateShareResponse)
                else collab.CreateShareResponse(status=status(), share=share)
            )

        return await run()

    async def RemoveShare(self, request: collab.RemoveShareRequest, context: Any) -> Any:
        result = await self._call(
            context, collab.RemoveShareResponse, self.shares.remove, request.ref, self._caller()
        )
        return (
            result
            if isinstance(result, collab.RemoveShareResponse)
            else collab.RemoveShareResponse(status=status())
        )

    async def GetShare(self, request: collab.GetShareRequest, context: Any) -> Any:
        result = await self._call(
            context, collab.GetShareResponse, self.shares.get, request.ref, self._caller()
        )
        return (
            result
            if isinstance(result, collab.GetShareResponse)
            else collab.GetShareResponse(status=status(), share=result)
        )

    async def UpdateShare(self, request: collab.UpdateShareRequest, context: Any) -> Any:
        result = await self._call(
            context, collab.UpdateShareResponse, self.shares.update, request, self._caller()
        )
        return (
            result
            if isinstance(result, collab.UpdateShareResponse)
            else collab.UpdateShareResponse(status=status(), share=result)
        )

    async def ListShares(self, request: collab.ListSharesRequest, context: Any) -> Any:
        shares = await self._call(
            context, collab.ListSharesResponse, self.shares.list, self._caller(), list(request.filters)
        )
        return (
            shares
            if isinstance(shares, collab.ListSharesResponse)
            else collab.ListSharesResponse(status=status(), shares=shares)
        )

    async def ListExistingShares(self, request: collab.ListSharesRequest, context: Any) -> Any:
        caller = self._caller()

        def run() -> list[tuple[Any, Any]]:
            return self._existing(
                self.shares.list(caller, list(request.filters)), lambda s: s.resource_id, caller
            )

        pairs = await self._call(context, gw.ListExistingSharesResponse, run)
        if isinstance(pairs, gw.ListExistingSharesResponse):
            return pairs
        infos = [gw_res.ShareResourceInfo(share=s, resource_info=i) for s, i in pairs]
        return gw.ListExistingSharesResponse(status=status(), share_infos=infos)

    async def ListReceivedShares(self, request: collab.ListReceivedSharesRequest, context: Any) -> Any:
        shares = await self._call(
            context,
            collab.ListReceivedSharesResponse,
            self.shares.received,
            self._caller(),
            list(request.filters),
        )
        if isinstance(shares, collab.ListReceivedSharesResponse):
            return shares
        return collab.ListReceivedSharesResponse(status=status(), shares=shares)

    async def ListExistingReceivedShares(
        self, request: collab.ListReceivedSharesRequest, context: Any
    ) -> Any:
        caller = self._caller()

        def run() -> list[tuple[Any, Any]]:
            received = self.shares.received(caller, list(request.filters))
            return self._existing(received, lambda r: r.share.resource_id, caller)

        pairs = await self._call(context, gw.ListExistingReceivedSharesResponse, run)
        if isinstance(pairs, gw.ListExistingReceivedSharesResponse):
            return pairs
        infos = [gw_res.ReceivedShareResourceInfo(received_share=r, resource_info=i) for r, i in pairs]
        return gw.ListExistingReceivedSharesResponse(status=status(), share_infos=infos)

    async def GetReceivedShare(self, request: collab.GetReceivedShareRequest, context: Any) -> Any:
        result = await self._call(
            context, collab.GetReceivedShareResponse, self.shares.get_received, request.ref, self._caller()
        )
        if isinstance(result, collab.GetReceivedShareResponse):
            return result
        return collab.GetReceivedShareResponse(status=status(), share=result)

    async def UpdateReceivedShare(self, request: collab.UpdateReceivedShareRequest, context: Any) -> Any:
        result = await self._call(
            context,
            collab.UpdateReceivedShareResponse,
            self.shares.update_received,
            request.share,
            list(request.update_mask.paths),
            self._caller(),
        )
        if isinstance(result, collab.UpdateReceivedShareResponse):
            return result
        return collab.UpdateReceivedShareResponse(status=status(), share=result)

    # -- public links ------------------------------------------------------------------------
    async def CreatePublicShare(self, request: link.CreatePublicShareRequest, context: Any) -> Any:
        result = await self._call(
            context, link.CreatePublicShareResponse, self.shares.create_link, self._caller(), request
        )
        if isinstance(result, link.CreatePublicShareResponse):
            return result
        return link.CreatePublicShareResponse(status=status(), share=result)

    async def RemovePublicShare(self, request: link.RemovePublicShareRequest, context: Any) -> Any:
        result = await self._call(
            context, link.RemovePublicShareResponse, self.shares.remove_link, request.ref, self._caller()
        )
        return (
            result
            if isinstance(result, link.RemovePublicShareResponse)
            else link.RemovePublicShareResponse(status=status())
        )

    async def GetPublicShare(self, request: link.GetPublicShareRequest, context: Any) -> Any:
        result = await self._call(
            context, link.GetPublicShareResponse, self.shares.get_link, request.ref, self._caller()
        )
        if isinstance(result, link.GetPublicShareResponse):
            return result
        return link.GetPublicShareResponse(status=status(), share=result)

    async def GetPublicShareByToken(self, request: link.GetPublicShareByTokenRequest, context: Any) -> Any:
        result = await self._call(
            context,
            link.GetPublicShareByTokenResponse,
            self.shares.get_link_by_token,
            request.token,
            request.authentication.password,
        )
        if isinstance(result, link.GetPublicShareByTokenResponse):
            return result
        return link.GetPublicShareByTokenResponse(status=status(), share=result)

    async def UpdatePublicShare(self, request: link.UpdatePublicShareRequest, context: Any) -> Any:
        result = await self._call(
            context, link.UpdatePublicShareResponse, self.shares.update_link, request, self._caller()
        )
        if isinstance(result, link.UpdatePublicShareResponse):
            return result
        return link.UpdatePublicShareResponse(status=status(), share=result)

    async def ListPublicShares(self, request: link.ListPublicSharesRequest, context: Any) -> Any:
        result = await self._call(
            context,
            link.ListPublicSharesResponse,
            self.shares.list_links,
            self._caller(),
            list(request.filters),
        )
        if isinstance(result, link.ListPublicSharesResponse):
            return result
        return link.ListPublicSharesResponse(status=status(), share=result)

    async def ListExistingPublicShares(self, request: link.ListPublicSharesRequest, context: Any) -> Any:
        caller = self._caller()

        def run() -> list[tuple[Any, Any]]:
            return self._existing(
                self.shares.list_links(caller, list(request.filters)), lambda s: s.resource_id, caller
            )

        pairs = await self._call(context, gw.ListExistingPublicSharesResponse, run)
        if isinstance(pairs, gw.ListExistingPublicSharesResponse):
            return pairs
        infos = [gw_res.PublicShareResourceInfo(public_share=s, resource_info=i) for s, i in pairs]
        return gw.ListExistingPublicSharesResponse(status=status(), share_infos=infos)

    # -- users and groups --------------------------------------------------------------------
    async def FindUsers(self, request: user_api_pb2.FindUsersRequest, context: Any) -> Any:
        queries = [f.query.lower() for f in request.filters if f.query]
        users = [
            user_proto(u)
            for u in self.storage.config.users
            if all(
                q in u.username.lower() or q in u.mail.lower() or q in u.display_name.lower() for q in queries
            )
        ]
        return user_api_pb2.FindUsersResponse(status=status(), users=users)

    def _group(self, name: str, with_members: bool = True) -> group_res.Group | None:
        config = self.storage.config
        display = config.all_groups().get(name)
        if display is None:
            return None
        members = [user_id_proto(u) for u in config.users if name in u.groups] if with_members else []
        return group_res.Group(
            id=group_res.GroupId(idp=config.idp, opaque_id=name, type=group_res.GROUP_TYPE_REGULAR),
            group_name=name,
            display_name=display,
            members=members,
        )

    async def FindGroups(self, request: group_api_pb2.FindGroupsRequest, context: Any) -> Any:
        queries = [f.query.lower() for f in request.filters if f.query]
        groups = []
        for name, display in sorted(self.storage.config.all_groups().items()):
            if all(q in name.lower() or q in display.lower() for q in queries):
                group = self._group(name, not request.skip_fetching_members)
                assert group is not None
                groups.append(group)
        return group_api_pb2.FindGroupsResponse(status=status(), groups=groups)

    async def GetGroup(self, request: group_api_pb2.GetGroupRequest, context: Any) -> Any:
        group = self._group(request.group_id.opaque_id, not request.skip_fetching_members)
        if group is None:
            return group_api_pb2.GetGroupResponse(status=status(code_pb2.CODE_NOT_FOUND, "group not found"))
        return group_api_pb2.GetGroupResponse(status=status(), group=group)

    async def GetGroupByClaim(self, request: group_api_pb2.GetGroupByClaimRequest, context: Any) -> Any:
        name = request.value if request.claim in ("group_name", "groupid", "group_id") else ""
        group = self._group(name, not request.skip_fetching_members)
        if group is None:
            return group_api_pb2.GetGroupByClaimResponse(
                status=status(code_pb2.CODE_NOT_FOUND, "group not found")
            )
        return group_api_pb2.GetGroupByClaimResponse(status=status(), group=group)

    async def GetMembers(self, request: group_api_pb2.GetMembersRequest, context: Any) -> Any:
        group = self._group(request.group_id.opaque_id)
        if group is None:
            return group_api_pb2.GetMembersResponse(status=status(code_pb2.CODE_NOT_FOUND, "group not found"))
        return group_api_pb2.GetMembersResponse(status=status(), members=list(group.members))

    async def HasMember(self, request: group_api_pb2.HasMemberRequest, context: Any) -> Any:
        group = self._group(request.group_id.opaque_id)
        if group is None:
            return group_api_pb2.HasMemberResponse(status=status(code_pb2.CODE_NOT_FOUND, "group not found"))
        ok = any(m.opaque_id == request.user_id.opaque_id for m in group.members)
        return group_api_pb2.HasMemberResponse(status=status(), ok=ok)
