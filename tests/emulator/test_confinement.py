"""Nothing outside the root is reachable; the state dir is never listed; loopback only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from cs3sync.emulator import Emulator, EmulatorConfig

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio
DENIED = code_pb2.CODE_PERMISSION_DENIED


async def test_dotdot_and_absolute_paths(gw: Gateway) -> None:
    for path in (
        f"{gw.home}/../../m/marie",
        f"{gw.home}/..",
        "/etc/passwd",
        "/../../etc",
        f"{gw.home}/a/../../x",
    ):
        assert (await gw.stat(path)).status.code == DENIED, path
    info = (await gw.stat(gw.home)).info
    relative = await gw.call("Stat", sp.StatRequest(ref=res.Reference(resource_id=info.id, path="./../..")))
    assert relative.status.code == DENIED
    invalid = await gw.call("Stat", sp.StatRequest(ref=res.Reference(path="relative/path")))
    assert invalid.status.code == code_pb2.CODE_INTERNAL and invalid.status.message == "ref is invalid"


async def test_symlinks_out_are_unreachable_and_unlisted(
    emulator: Emulator, gw: Gateway, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    home_disk = emulator.config.root / "einstein"
    os.symlink(outside, home_disk / "escape")
    os.symlink(outside / "secret.txt", home_disk / "escape.txt")
    (home_disk / "inside.txt").write_text("ok")
    os.symlink(home_disk / "inside.txt", home_disk / "link-inside.txt")
    listing = await gw.call("ListContainer", sp.ListContainerRequest(ref=ref(gw.home)))
    names = sorted(i.name for i in listing.infos)
    assert names == ["inside.txt", "link-inside.txt"]
    assert (await gw.stat(gw.p("escape/secret.txt"))).status.code == DENIED
    assert (await gw.stat(gw.p("escape.txt"))).status.code == DENIED
    direct = await gw.http.get(
        f"{emulator.http_url}/data/simple{gw.p('escape.txt')}", headers={"x-access-token": gw.token}
    )
    assert direct.status_code == 403
    denied = await gw.initiate_upload(gw.p("escape/new.txt"), 1)
    assert denied.status.code == DENIED
    assert (await gw.download(gw.p("link-inside.txt"))).content == b"ok"


async def test_state_dir_never_listed_single_user(tmp_path: Path) -> None:
    config = EmulatorConfig(root=tmp_path / "home", single_user="einstein")
    config.root.mkdir()
    async with Emulator(config) as emu:
        g = await Gateway(emu).login()
        await g.upload(g.p("a.txt"), b"a")
        listing = await g.call("ListContainer", sp.ListContainerRequest(ref=ref(g.home)))
        assert [i.name for i in listing.infos] == ["a.txt"]
        assert (config.root / ".cs3gw").is_dir()
        assert (await g.stat(g.p(".cs3gw/state.db"))).status.code == DENIED
        direct = await g.http.get(
            f"{emu.http_url}/data/simple{g.p('.cs3gw/state.db')}", headers={"x-access-token": g.token}
        )
        assert direct.status_code == 403
        await g.close()


async def test_http_path_traversal(emulator: Emulator, gw: Gateway) -> None:
    base = f"{emulator.http_url}/data/simple"
    for tail in ("/eos/user/e/einstein/%2e%2e/%2e%2e/m/marie", "/home/einstein/%2E%2E/%2E%2E/etc/passwd"):
        r = await gw.http.get(base + tail, headers={"x-access-token": gw.token})
        assert r.status_code in (403, 404)


def test_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorConfig(root=tmp_path, host="0.0.0.0")


async def test_binds_loopback(emulator: Emulator) -> None:
    assert emulator.grpc_address.startswith("127.0.0.1:") and emulator.http_url.startswith(
        "http://127.0.0.1:"
    )


async def test_other_users_home_is_denied(gw: Gateway, marie: Gateway) -> None:
    await marie.upload(marie.p("x.txt"), b"x")
    assert (await gw.stat(marie.p("x.txt"))).status.code == DENIED
    direct = await gw.http.get(
        f"{gw.emu.http_url}/data/simple{marie.p('x.txt')}", headers={"x-access-token": gw.token}
    )
    assert direct.status_code == 403
    listing = await gw.call("ListContainer", sp.ListContainerRequest(ref=ref("/")))
    assert listing.status.code == code_pb2.CODE_OK
