from __future__ import annotations

import grpc
import jwt
import pytest
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.identity.user.v1beta1 import user_api_pb2
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp

from cs3sync.emulator import Emulator

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio


async def test_basic_login_returns_reva_jwt(gw: Gateway) -> None:
    claims = jwt.decode(gw.token, options={"verify_signature": False})
    assert claims["aud"] == ["reva"] and claims["exp"] > claims["iat"]
    assert claims["user"]["username"] == "einstein"
    assert claims["user"]["id"]["opaqueId"] == "4c510ada-c86b-4815-8820-42cdf82c3d51"


@pytest.mark.parametrize(
    ("auth_type", "client_id", "secret", "code"),
    [
        ("basic", "einstein", "wrong", code_pb2.CODE_PERMISSION_DENIED),
        ("basic", "nobody", "x", code_pb2.CODE_NOT_FOUND),
        ("kerberos", "einstein", "relativity", code_pb2.CODE_INTERNAL),
        ("machine", "einstein", "bad-key", code_pb2.CODE_PERMISSION_DENIED),
    ],
)
async def test_authenticate_failures(
    emulator: Emulator, auth_type: str, client_id: str, secret: str, code: int
) -> None:
    g = Gateway(emulator)
    reply = await g.stub.Authenticate(
        gw.AuthenticateRequest(type=auth_type, client_id=client_id, client_secret=secret)
    )
    assert reply.status.code == code
    if auth_type == "kerberos":
        assert reply.status.message == "error getting auth provider client"
    await g.close()


async def test_machine_and_bearer_auth(emulator: Emulator) -> None:
    emulator.config.bearer_tokens["static-oidc-token"] = "marie"
    g = Gateway(emulator)
    reply = await g.stub.Authenticate(
        gw.AuthenticateRequest(
            type="machine", client_id="mail:einstein@example.org", client_secret="machine-secret"
        )
    )
    assert reply.status.code == code_pb2.CODE_OK and reply.user.username == "einstein"
    reply = await g.stub.Authenticate(
        gw.AuthenticateRequest(type="bearer", client_secret="static-oidc-token")
    )
    assert reply.status.code == code_pb2.CODE_OK and reply.user.username == "marie"
    providers = await g.stub.ListAuthProviders(
        gw.ListAuthProvidersRequest()
        if hasattr(gw, "ListAuthProvidersRequest")
        else __import__(
            "cs3.auth.registry.v1beta1.registry_api_pb2", fromlist=["x"]
        ).ListAuthProvidersRequest()
    )
    assert set(providers.types) == {"basic", "bearer", "machine"}
    await g.close()


async def test_missing_token_is_unauthenticated(gw: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.stub.Stat(sp.StatRequest(ref=ref(gw.home)))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "auth: core access token not found"


async def test_expired_token_is_permission_denied(emulator: Emulator, gw: Gateway) -> None:
    emulator.auth.set_ttl(2)
    await gw.login()
    assert (await gw.stat(gw.home)).status.code == code_pb2.CODE_OK
    emulator.clock.advance(3)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.stat(gw.home)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "auth: core access token is invalid"
    # and HTTP 401 on the data plane
    emulator.auth.set_ttl(3600)
    fresh = gw.token
    await gw.login()
    reply = await gw.initiate_upload(gw.p("x.txt"), 1)
    gw.token = fresh
    assert (await gw.put(gw.protocol(reply), b"x")).status_code == 401


async def test_expire_all_and_revoke(emulator: Emulator, gw: Gateway, marie: Gateway) -> None:
    emulator.auth.revoke("marie")
    assert (await gw.stat(gw.home)).status.code == code_pb2.CODE_OK
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await marie.stat(marie.home)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    emulator.auth.expire_all()
    with pytest.raises(grpc.aio.AioRpcError):
        await gw.stat(gw.home)
    await gw.login()
    assert (await gw.stat(gw.home)).status.code == code_pb2.CODE_OK


async def test_fail_authenticate_hook(emulator: Emulator) -> None:
    emulator.auth.fail_authenticate(code_pb2.CODE_UNAUTHENTICATED)
    g = Gateway(emulator)
    with pytest.raises(AssertionError):
        await g.login()
    await g.login()  # one failure only
    await g.close()


async def test_whoami_home_and_users(gw: Gateway) -> None:
    who = await gw.call("WhoAmI", gw_req := gw_whoami(gw.token))
    assert who.status.code == code_pb2.CODE_OK and who.user.username == "einstein"
    bad = await gw.call("WhoAmI", gw_whoami("garbage"))
    assert bad.status.code == code_pb2.CODE_UNAUTHENTICATED and gw_req
    home = await gw.call("GetHome", sp.GetHomeRequest())
    assert home.path == gw.home
    user = await gw.stub.GetUser(
        user_api_pb2.GetUserRequest(user_id=user_res.UserId(opaque_id=who.user.id.opaque_id))
    )
    assert user.user.username == "einstein"
    by_claim = await gw.stub.GetUserByClaim(
        user_api_pb2.GetUserByClaimRequest(claim="username", value="marie")
    )
    assert by_claim.user.mail == "marie@example.org"
    groups = await gw.stub.GetUserGroups(user_api_pb2.GetUserGroupsRequest(user_id=who.user.id))
    assert "physics-lovers" in groups.groups


def gw_whoami(token: str) -> gw.WhoAmIRequest:
    return gw.WhoAmIRequest(token=token)


async def test_unimplemented_rpc(gw: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.call("CreateSymlink", sp.CreateSymlinkRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
