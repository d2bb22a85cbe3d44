from __future__ import annotations

import grpc
import pytest
from cs3.gateway.v1beta1 import gateway_api_pb2 as gwpb
from cs3.identity.group.v1beta1 import group_api_pb2
from cs3.identity.user.v1beta1 import user_api_pb2
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as collab_res
from cs3.sharing.link.v1beta1 import link_api_pb2 as link
from cs3.sharing.link.v1beta1 import resources_pb2 as link_res
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from google.protobuf import field_mask_pb2

from cs3sync.emulator import Emulator
from cs3sync.emulator.storage import EDITOR_PERMS, VIEWER_PERMS

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio
OK = code_pb2.CODE_OK


async def share(
    gw: Gateway, path: str, grantee: Gateway, perms: res.ResourcePermissions
) -> collab.CreateShareResponse:
    info = (await gw.stat(path)).info
    who = (await grantee.call("WhoAmI", gwpb.WhoAmIRequest(token=grantee.token))).user
    grant = collab_res.ShareGrant(
        grantee=res.Grantee(type=res.GRANTEE_TYPE_USER, user_id=who.id),
        permissions=collab_res.SharePermissions(permissions=perms),
    )
    return await gw.call("CreateShare", collab.CreateShareRequest(resource_info=info, grant=grant))


async def test_share_lifecycle_and_access(emulator: Emulator, gw: Gateway, marie: Gateway) -> None:
    await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("proj"))))
    await gw.upload(gw.p("proj/a.txt"), b"shared")
    await gw.upload(gw.p("private.txt"), b"secret")
    # marie cannot see einstein's files before sharing
    assert (await marie.stat(gw.p("proj/a.txt"))).status.code == code_pb2.CODE_PERMISSION_DENIED
    created = await share(gw, gw.p("proj"), marie, VIEWER_PERMS)
    assert created.status.code == OK and created.share.id.opaque_id.isdigit()
    # duplicate per profile
    if emulator.config.profile == "cernbox":
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await share(gw, gw.p("proj"), marie, VIEWER_PERMS)
        assert info.value.code() == grpc.StatusCode.UNKNOWN
    else:
        assert (
            await share(gw, gw.p("proj"), marie, VIEWER_PERMS)
        ).status.code == code_pb2.CODE_ALREADY_EXISTS
    outgoing = await gw.call("ListShares", collab.ListSharesRequest())
    assert [s.id.opaque_id for s in outgoing.shares] == [created.share.id.opaque_id]
    existing = await gw.call("ListExistingShares", collab.ListSharesRequest())
    assert existing.share_infos[0].resource_info.path == gw.p("proj")
    received = await marie.call("ListReceivedShares", collab.ListReceivedSharesRequest())
    state = received.shares[0].state
    expected = (
        collab_res.SHARE_STATE_ACCEPTED
        if emulator.config.profile == "cernbox"
        else collab_res.SHARE_STATE_PENDING
    )
    assert state == expected
    # the grantee reads by id and by path, but cannot write with a viewer share
    rid = existing.share_infos[0].resource_info.id
    listing = await marie.call(
        "ListContainer", sp.ListContainerRequest(ref=res.Reference(resource_id=rid, path="."))
    )
    assert [i.name for i in listing.infos] == ["a.txt"]
    assert (await marie.download(gw.p("proj/a.txt"))).content == b"shared"
    assert not (await marie.stat(gw.p("proj/a.txt"))).info.permission_set.initiate_file_upload
    denied = await marie.initiate_upload(gw.p("proj/b.txt"), 1)
    assert denied.status.code == code_pb2.CODE_PERMISSION_DENIED
    assert (await marie.stat(gw.p("private.txt"))).status.code == code_pb2.CODE_PERMISSION_DENIED
    # upgrade to editor: marie may write
    update = await gw.call(
        "UpdateShare",
        collab.UpdateShareRequest(
            ref=collab_res.ShareReference(id=created.share.id),
            field=collab.UpdateShareRequest.UpdateField(
                permissions=collab_res.SharePermissions(permissions=EDITOR_PERMS)
            ),
        ),
    )
    assert update.status.code == OK
    assert await marie.upload(gw.p("proj/b.txt"), b"from marie") == 200
    # hide it: CERNBox reports REJECTED
    rshare = received.shares[0]
    rshare.hidden = True
    hidden = await marie.call(
        "UpdateReceivedShare",
        collab.UpdateReceivedShareRequest(
            share=rshare, update_mask=field_mask_pb2.FieldMask(paths=["hidden"])
        ),
    )
    assert hidden.status.code == OK and hidden.share.hidden
    bad_mask = await marie.call(
        "UpdateReceivedShare",
        collab.UpdateReceivedShareRequest(
            share=rshare, update_mask=field_mask_pb2.FieldMask(paths=["alias"])
        ),
    )
    assert bad_mask.status.code == code_pb2.CODE_INTERNAL
    got = await marie.call(
        "GetReceivedShare", collab.GetReceivedShareRequest(ref=collab_res.ShareReference(id=created.share.id))
    )
    assert got.status.code == OK
    # remove: access is gone
    removed = await gw.call(
        "RemoveShare", collab.RemoveShareRequest(ref=collab_res.ShareReference(id=created.share.id))
    )
    assert removed.status.code == OK
    assert (await marie.stat(gw.p("proj/a.txt"))).status.code == code_pb2.CODE_PERMISSION_DENIED


async def test_share_errors(gw: Gateway, marie: Gateway) -> None:
    await gw.upload(gw.p("mine.txt"), b"m")
    await marie.upload(marie.p("hers.txt"), b"h")
    info = (await marie.stat(marie.p("hers.txt"))).info
    grant = collab_res.ShareGrant(
        grantee=res.Grantee(type=res.GRANTEE_TYPE_USER, user_id=info.owner),
        permissions=collab_res.SharePermissions(permissions=VIEWER_PERMS),
    )
    stolen = await gw.call("CreateShare", collab.CreateShareRequest(resource_info=info, grant=grant))
    assert stolen.status.code == code_pb2.CODE_PERMISSION_DENIED
    info.id.opaque_id = "does-not-exist"
    missing = await gw.call("CreateShare", collab.CreateShareRequest(resource_info=info, grant=grant))
    assert missing.status.code == code_pb2.CODE_NOT_FOUND


async def test_list_existing_fails_on_broken_share(emulator: Emulator, gw: Gateway, marie: Gateway) -> None:
    await gw.upload(gw.p("gone.txt"), b"g")
    assert (await share(gw, gw.p("gone.txt"), marie, VIEWER_PERMS)).status.code == OK
    emulator.storage.external_delete(gw.p("gone.txt"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.call("ListExistingShares", collab.ListSharesRequest())
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert len((await gw.call("ListShares", collab.ListSharesRequest())).shares) == 1


async def test_public_links(gw: Gateway) -> None:
    await gw.upload(gw.p("pub.txt"), b"p")
    info = (await gw.stat(gw.p("pub.txt"))).info
    created = await gw.call(
        "CreatePublicShare",
        link.CreatePublicShareRequest(
            resource_info=info,
            grant=link_res.Grant(
                permissions=link_res.PublicSharePermissions(permissions=VIEWER_PERMS), password="pw"
            ),
            description="for the world",
        ),
    )
    assert created.status.code == OK and len(created.share.token) == 15 and created.share.password_protected
    token = created.share.token
    anonymous = await gw.stub.GetPublicShareByToken(
        link.GetPublicShareByTokenRequest(
            token=token, authentication=link_res.PublicShareAuthentication(password="pw")
        )
    )
    assert anonymous.status.code == OK and anonymous.share.description == "for the world"
    wrong = await gw.stub.GetPublicShareByToken(
        link.GetPublicShareByTokenRequest(
            token=token, authentication=link_res.PublicShareAuthentication(password="no")
        )
    )
    assert wrong.status.code == code_pb2.CODE_PERMISSION_DENIED
    listed = await gw.call("ListPublicShares", link.ListPublicSharesRequest())
    assert [s.token for s in listed.share] == [token]
    existing = await gw.call("ListExistingPublicShares", link.ListPublicSharesRequest())
    assert existing.share_infos[0].resource_info.path == gw.p("pub.txt")
    updated = await gw.call(
        "UpdatePublicShare",
        link.UpdatePublicShareRequest(
            ref=link_res.PublicShareReference(token=token),
            update=link.UpdatePublicShareRequest.Update(
                type=link.UpdatePublicShareRequest.Update.TYPE_DISPLAYNAME, display_name="nice"
            ),
        ),
    )
    assert updated.share.display_name == "nice"
    got = await gw.call(
        "GetPublicShare", link.GetPublicShareRequest(ref=link_res.PublicShareReference(id=created.share.id))
    )
    assert got.share.token == token
    removed = await gw.call(
        "RemovePublicShare", link.RemovePublicShareRequest(ref=link_res.PublicShareReference(token=token))
    )
    assert removed.status.code == OK
    assert (await gw.call("ListPublicShares", link.ListPublicSharesRequest())).share == []


async def test_find_users_and_groups(gw: Gateway) -> None:
    users = await gw.call(
        "FindUsers",
        user_api_pb2.FindUsersRequest(
            filters=[user_api_pb2.Filter(type=user_api_pb2.Filter.TYPE_QUERY, query="mar")]
        ),
    )
    assert [u.username for u in users.users] == ["marie"]
    everyone = await gw.call("FindUsers", user_api_pb2.FindUsersRequest())
    assert len(everyone.users) == 3
    groups = await gw.call(
        "FindGroups",
        group_api_pb2.FindGroupsRequest(
            filters=[group_api_pb2.Filter(type=group_api_pb2.Filter.TYPE_QUERY, query="physics")]
        ),
    )
    assert [g.group_name for g in groups.groups] == ["physics-lovers"] and len(groups.groups[0].members) == 3


async def test_group_lookups(gw: Gateway) -> None:
    from cs3.identity.group.v1beta1 import resources_pb2 as group_res

    gid = group_res.GroupId(opaque_id="physics-lovers")
    group = await gw.call("GetGroup", group_api_pb2.GetGroupRequest(group_id=gid))
    assert group.status.code == OK and len(group.group.members) == 3
    members = await gw.call("GetMembers", group_api_pb2.GetMembersRequest(group_id=gid))
    assert len(members.members) == 3
    missing = await gw.call(
        "GetGroup", group_api_pb2.GetGroupRequest(group_id=group_res.GroupId(opaque_id="x"))
    )
    assert missing.status.code == code_pb2.CODE_NOT_FOUND
