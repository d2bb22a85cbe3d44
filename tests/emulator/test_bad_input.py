"""Malformed input gets a clear 4xx (data plane, admin API) or a typed CS3 status, never a 500; checksums
are verified; committed uploads are fsynced; oCIS-style version keys; secrets never show."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from typing import Any
from unittest import mock

import httpx
import pytest
from aiohttp.test_utils import make_mocked_request
from cs3.gateway.v1beta1 import gateway_api_pb2 as gwpb
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from cs3sync.emulator import Emulator
from cs3sync.emulator.admin import ADMIN_HEADER, AdminAPI

from .helpers import PASSWORDS, Gateway, admin_headers, opaque, ref

pytestmark = pytest.mark.anyio
OK = code_pb2.CODE_OK


def _no_server_errors(emu: Emulator) -> None:
    assert all(r.status < 500 for r in emu.http_log), [(r.method, r.path, r.status) for r in emu.http_log]


# --- data plane -------------------------------------------------------------------------------------


async def test_bad_range_headers_are_416_not_500(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("r.txt"), b"0123456789")
    for header in (
        "bytes=abc-",
        "bytes=5-2",
        "bytes=0-1,4-5",
        "lines=0-1",
        "bytes=-0",
        "bytes=²-".encode(),
        "bytes=99-",
    ):
        reply = await gw.download(gw.p("r.txt"), headers={"Range": header})
        assert reply.status_code == 416, header
        assert reply.headers["Content-Range"] == "bytes */10"
    _no_server_errors(emulator)


@pytest.mark.parametrize("profile", ["ocis"])
async def test_bad_tus_headers_are_4xx(emulator: Emulator, gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("t.bin"), 10)
    tus = gw.protocol(reply, "tus")
    base = {
        "X-Reva-Transfer": tus.token,
        "Tus-Resumable": "1.0.0",
        "Content-Type": "application/offset+octet-stream",
    }
    for offset, expected in (("abc", 400), ("-1", 400), ("²".encode(), 400), ("", 400), ("3", 409)):
        headers = {**base, "Upload-Offset": offset} if offset else base
        r = await gw.http.patch(tus.upload_endpoint, content=b"x", headers=headers)
        assert r.status_code == expected, offset
    r = await gw.http.patch(tus.upload_endpoint, content=b"x", headers={**base, "Upload-Offset": "0"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "1"
    # an upload initiated without a length needs a numeric Upload-Length on its first PATCH
    unknown = gw.protocol(await gw.initiate_upload(gw.p("u.bin"), None), "tus")
    r = await gw.http.patch(
        unknown.upload_endpoint,
        content=b"x",
        headers={**base, "X-Reva-Transfer": unknown.token, "Upload-Offset": "0", "Upload-Length": "ten"},
    )
    assert r.status_code == 400
    _no_server_errors(emulator)


@pytest.mark.parametrize("profile", ["ocis"])
async def test_bad_mtime_is_rejected_not_a_crash(emulator: Emulator, gw: Gateway) -> None:
    for bad in ("yesterday", "nan", "inf", "-5"):
        reply = await gw.call(
            "InitiateFileUpload",
            sp.InitiateFileUploadRequest(
                ref=ref(gw.p("m.txt")), opaque=opaque({"Upload-Length": "1", "X-OC-Mtime": bad})
            ),
        )
        assert reply.status.code == code_pb2.CODE_INVALID_ARGUMENT, bad
    reply = await gw.initiate_upload(gw.p("m.txt"), 1)
    r = await gw.put(gw.protocol(reply), b"m", headers={"X-OC-Mtime": "not-a-time"})
    assert r.status_code == 400
    assert await gw.upload(gw.p("m.txt"), b"m", headers={"X-OC-Mtime": "1700000000.5"}) == 200
    info = (await gw.stat(gw.p("m.txt"))).info
    assert (info.mtime.seconds, info.mtime.nanos) == (1700000000, 500_000_000)
    _no_server_errors(emulator)


async def test_upload_checksum_is_verified(emulator: Emulator, gw: Gateway) -> None:
    data = b"checksummed bytes"
    good = {
        "adler32": f"{zlib.adler32(data):08x}",
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
    }
    for algo, digest in good.items():
        reply = await gw.call(
            "InitiateFileUpload",
            sp.InitiateFileUploadRequest(
                ref=ref(gw.p(f"{algo}.txt")),
                opaque=opaque(
                    {"Upload-Length": str(len(data)), "Upload-Checksum": f"{algo.upper()} {digest}"}
                ),
            ),
        )
        assert reply.status.code == OK
        assert (await gw.put(gw.protocol(reply), data)).status_code == 200, algo
        assert emulator.storage.read(gw.p(f"{algo}.txt")) == data
    wrong = await gw.call(
        "InitiateFileUpload",
        sp.InitiateFileUploadRequest(
            ref=ref(gw.p("md5.txt")),
            opaque=opaque({"Upload-Length": str(len(data)), "Upload-Checksum": "md5 " + "0" * 32}),
        ),
    )
    assert (await gw.put(gw.protocol(wrong), b"checksummed BYTES")).status_code == 419
    assert emulator.storage.read(gw.p("md5.txt")) == data  # nothing replaced
    for bad in ("crc64 abcd", "md5 not-hex", "md5"):
        reply = await gw.call(
            "InitiateFileUpload",
            sp.InitiateFileUploadRequest(
                ref=ref(gw.p("x.txt")), opaque=opaque({"Upload-Length": "1", "Upload-Checksum": bad})
            ),
        )
        assert reply.status.code == code_pb2.CODE_INVALID_ARGUMENT, bad
    _no_server_errors(emulator)


async def test_committed_uploads_are_fsynced(emulator: Emulator, gw: Gateway) -> None:
    real_fsync = os.fsync
    with mock.patch("os.fsync", side_effect=real_fsync) as fsync:
        assert await gw.upload(gw.p("durable.txt"), b"keep me") == 200
    assert fsync.call_count >= 2  # the file before the rename, the folder after it


# --- oCIS-style version keys ------------------------------------------------------------------------


async def test_version_keys_follow_the_profile(emulator: Emulator, gw: Gateway, profile: str) -> None:
    for content in (b"first", b"second", b"third"):
        assert await gw.upload(gw.p("v.txt"), content) == 200
    info = (await gw.stat(gw.p("v.txt"))).info
    versions = (
        await gw.call("ListFileVersions", sp.ListFileVersionsRequest(ref=ref(gw.p("v.txt"))))
    ).versions
    assert len({v.key for v in versions}) == 2
    oldest = versions[-1].key
    if profile == "ocis":
        # decomposedfs: "<node id>.REV.<RFC 3339 mtime>", itself a resource id
        assert all(v.key.startswith(info.id.opaque_id + ".REV.") and v.key.endswith("Z") for v in versions)
        rid = res.ResourceId(storage_id=info.id.storage_id, space_id=info.id.space_id, opaque_id=oldest)
        reply = await gw.call(
            "InitiateFileDownload",
            sp.InitiateFileDownloadRequest(ref=res.Reference(resource_id=rid, path=".")),
        )
        assert reply.status.code == OK
        proto = reply.protocols[0]
        got = await gw.http.get(
            proto.download_endpoint, headers={"X-Reva-Transfer": proto.token, "x-access-token": gw.token}
        )
        assert got.content == b"first"
    else:
        assert all(".REV." not in v.key for v in versions)
    # both forms of the EOS-style reference keep working in both profiles
    by_at = res.ResourceId(
        storage_id=info.id.storage_id, space_id=info.id.space_id, opaque_id=f"{info.id.opaque_id}@{oldest}"
    )
    reply = await gw.call(
        "InitiateFileDownload", sp.InitiateFileDownloadRequest(ref=res.Reference(resource_id=by_at, path="."))
    )
    proto = reply.protocols[0]
    got = await gw.http.get(
        proto.download_endpoint, headers={"X-Reva-Transfer": proto.token, "x-access-token": gw.token}
    )
    assert got.content == b"first"
    restore = await gw.call(
        "RestoreFileVersion", sp.RestoreFileVersionRequest(ref=ref(gw.p("v.txt")), key=oldest)
    )
    assert restore.status.code == OK and emulator.storage.read(gw.p("v.txt")) == b"first"


# --- admin API --------------------------------------------------------------------------------------


async def test_admin_rejects_bad_input_with_400(emulator: Emulator) -> None:
    async with httpx.AsyncClient(
        base_url=emulator.http_url + "/_admin", timeout=10, headers=admin_headers(emulator)
    ) as admin:
        cases: list[tuple[str, dict]] = [
            ("/faults", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
            ("/faults", {"json": [1, 2]}),
            ("/faults", {"json": "a string"}),
            ("/faults", {"json": {"kind": "grpc", "match": "Stat"}}),  # no action
            (
                "/faults",
                {"json": {"kind": "grpc", "match": "Stat", "action": {"type": "delay", "seconds": "x"}}},
            ),
            (
                "/faults",
                {"json": {"kind": "grpc", "match": "Stat", "action": {"type": "grpc_abort", "code": "NO"}}},
            ),
            (
                "/faults",
                {"json": {"kind": "http", "match": "GET", "action": {"type": "drop_after", "bytes": -1}}},
            ),
            ("/faults", {"json": {"kind": "http", "match": "GET", "action": {"type": "nope"}}}),
            ("/faults", {"json": {"kind": "http", "match": "GET", "action": "drop"}}),
            ("/auth/fail", {"json": [{"code": 9}]}),
            ("/auth/ttl", {"json": {"seconds": None}}),
            ("/clock/advance", {"json": {"seconds": "soon"}}),
            (
                "/storage/external_write",
                {"json": {"path": emulator.home("einstein") + "/x", "data_b64": "***"}},
            ),
            ("/storage/fail_next_write", {"json": {"errno": "ENOTANERRNO"}}),
            ("/auth/revoke", {"json": {}}),
        ]
        for path, kwargs in cases:
            r = await admin.post(path, **kwargs)
            assert r.status_code == 400, (path, kwargs, r.text)
            assert "error" in r.json()
        outside = await admin.post("/storage/external_write", json={"path": "/etc/passwd", "data": "x"})
        assert 400 <= outside.status_code < 500
        assert (await admin.get("/info")).status_code == 200  # still serving


async def test_admin_is_loopback_only(emulator: Emulator) -> None:
    handler = AdminAPI(emulator)._wrap(AdminAPI(emulator).info)
    for peer, expected in (
        (("192.0.2.7", 5555), 403),
        (("127.0.0.1", 5555), 200),
        (("::1", 5555, 0, 0), 200),
    ):
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None, peer=peer: (
            peer if name == "peername" else default
        )
        headers = {"Host": "127.0.0.1:8080", **admin_headers(emulator)}
        request = make_mocked_request("GET", "/_admin/info", headers=headers, transport=transport)
        assert (await handler(request)).status == expected, peer


async def test_admin_refuses_cross_site_and_secretless_requests(emulator: Emulator) -> None:
    """What a web page could send (a text/plain POST with its Origin, a rebound Host name) and what
    any local process could send without this run's secret: all refused, nothing planted."""
    target = {"path": emulator.home("einstein") + "/planted.txt", "data": "x"}
    url = emulator.http_url + "/_admin/storage/external_write"
    good = admin_headers(emulator)
    async with httpx.AsyncClient(timeout=10) as client:
        for headers, content, expected in [
            ({}, json.dumps(target), 403),  # no secret
            ({ADMIN_HEADER: "guess"}, json.dumps(target), 403),
            ({**good, "Content-Type": "text/plain"}, json.dumps(target), 415),
            (
                {**good, "Content-Type": "application/json", "Origin": "https://evil.example"},
                json.dumps(target),
                403,
            ),
            ({**good, "Content-Type": "application/json", "Host": "evil.example"}, json.dumps(target), 403),
        ]:
            r = await client.post(url, content=content, headers=headers)
            assert r.status_code == expected, (headers, r.text)
        assert not emulator.storage.exists(target["path"])
        r = await client.post(url, json=target, headers=good)
        assert r.status_code == 200 and emulator.storage.exists(target["path"])
        assert (
            await client.post(emulator.http_url + "/_admin/auth/token", json={"user": "marie"})
        ).status_code == 403


def test_secrets_are_per_run_and_the_state_is_private(tmp_path: Any) -> None:
    from cs3sync.emulator import EmulatorConfig

    one, two = EmulatorConfig(root=tmp_path / "a"), EmulatorConfig(root=tmp_path / "b")
    assert one.jwt_secret != two.jwt_secret and one.admin_secret != two.admin_secret
    assert one.transfer_secret != two.transfer_secret


async def test_state_database_is_not_world_readable(emulator: Emulator) -> None:
    state = emulator.storage.state_dir
    assert state.stat().st_mode & 0o077 == 0
    assert (state / "state.db").stat().st_mode & 0o077 == 0


# --- secrets ----------------------------------------------------------------------------------------


async def test_secrets_never_show_in_logs_or_reprs(emulator: Emulator, gw: Gateway) -> None:
    await gw.call("WhoAmI", gwpb.WhoAmIRequest(token=gw.token))
    await gw.upload(gw.p("s.txt"), b"s")
    secrets = [gw.token, *PASSWORDS.values(), emulator.config.jwt_secret, emulator.config.machine_api_key]
    texts = [
        repr(emulator.config),
        repr(emulator.config.users),
        *map(repr, emulator.calls),
        *map(repr, emulator.http_log),
    ]
    async with httpx.AsyncClient(
        base_url=emulator.http_url + "/_admin", timeout=10, headers=admin_headers(emulator)
    ) as admin:
        texts.append((await admin.get("/calls")).text)
        texts.append((await admin.get("/http_log")).text)
    for text in texts:
        for secret in secrets:
            assert secret not in text, text[:200]
    assert any(c.method == "Authenticate" for c in emulator.calls)


async def test_login_with_bad_password_names_no_secret(emulator: Emulator) -> None:
    g = Gateway(emulator)
    reply = await g.stub.Authenticate(
        gwpb.AuthenticateRequest(type="basic", client_id="einstein", client_secret="hunter2-secret")
    )
    assert reply.status.code != OK and "hunter2" not in reply.status.message
    await g.close()
