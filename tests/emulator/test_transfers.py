from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp

from cs3sync.emulator import DropAfter, Emulator, EmulatorConfig

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


def _tus_emulator(emulator: Emulator) -> None:
    if "tus" not in (emulator.config.upload_protocols or []):
        emulator.config.upload_protocols = [*(emulator.config.upload_protocols or []), "tus"]


async def _tus_session(gw: Gateway, path: str, length: int) -> tuple[str, dict[str, str]]:
    reply = await gw.initiate_upload(path, length)
    proto = gw.protocol(reply, "tus")
    return proto.upload_endpoint, {"X-Reva-Transfer": proto.token}


async def test_protocols_per_profile(emulator: Emulator, gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("a"), 1)
    names = sorted(p.protocol for p in reply.protocols)
    assert names == (["simple"] if emulator.config.profile == "cernbox" else ["simple", "tus"])
    assert all(p.upload_endpoint.endswith("/datagateway") for p in reply.protocols)


async def test_tus_resume_after_dropped_patch(emulator: Emulator, gw: Gateway) -> None:
    _tus_emulator(emulator)
    data = bytes(range(256)) * 40  # 10240 bytes
    url, headers = await _tus_session(gw, gw.p("big.bin"), len(data))
    emulator.faults.http("PATCH", DropAfter(4000))
    with pytest.raises(httpx.TransportError):
        await gw.http.patch(url, content=data, headers={**headers, **TUS, "Upload-Offset": "0"})
    await emulator.wait_http_idle()
    head = await gw.http.head(url, headers={**headers, "Tus-Resumable": "1.0.0"})
    assert head.status_code == 200 and head.headers["Upload-Length"] == str(len(data))
    assert "Upload-Expires" in head.headers
    offset = int(head.headers["Upload-Offset"])
    assert offset == 4000  # the bytes of the interrupted PATCH are kept
    wrong = await gw.http.patch(url, content=data[1:], headers={**headers, **TUS, "Upload-Offset": "1"})
    assert wrong.status_code == 409
    done = await gw.http.patch(
        url, content=data[offset:], headers={**headers, **TUS, "Upload-Offset": str(offset)}
    )
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(data))
    assert emulator.storage.read(gw.p("big.bin")) == data
    gone = await gw.http.head(url, headers={**headers, "Tus-Resumable": "1.0.0"})
    assert gone.status_code == 404


async def test_tus_header_checks(emulator: Emulator, gw: Gateway) -> None:
    _tus_emulator(emulator)
    url, headers = await _tus_session(gw, gw.p("t.bin"), 4)
    no_version = await gw.http.patch(url, content=b"ab", headers={**headers, "Upload-Offset": "0"})
    assert no_version.status_code == 412
    bad_type = await gw.http.patch(
        url, content=b"ab", headers={**headers, "Tus-Resumable": "1.0.0", "Upload-Offset": "0"}
    )
    assert bad_type.status_code == 400
    too_long = await gw.http.patch(url, content=b"abcdef", headers={**headers, **TUS, "Upload-Offset": "0"})
    assert too_long.status_code == 413


async def test_simple_put_drop_consumes_session(emulator: Emulator, gw: Gateway) -> None:
    data = b"x" * 5000
    reply = await gw.initiate_upload(gw.p("s.bin"), len(data))
    proto = gw.protocol(reply)
    emulator.faults.http("PUT", DropAfter(1000))
    with pytest.raises(httpx.TransportError):
        await gw.put(proto, data)
    await emulator.wait_http_idle()
    assert not emulator.storage.exists(gw.p("s.bin"))
    if emulator.config.replayable_upload_tokens:
        # EOS: the token names the path and stays usable (storage behaviours row 9)
        assert (await gw.put(proto, data)).status_code == 200
        assert emulator.http_log[-2].status == 0 and emulator.http_log[-1].status == 200
        return
    assert (await gw.put(proto, data)).status_code == 404  # never PUT twice with one token
    assert emulator.http_log[-2].status == 0 and emulator.http_log[-1].status == 404


async def test_short_body_and_missing_length(emulator: Emulator, gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("short"), 10)
    short = await gw.put(gw.protocol(reply), b"abc", headers={"Upload-Length": "10"})
    assert short.status_code == 400
    assert not emulator.storage.exists(gw.p("short"))


async def test_transfer_token_expiry(emulator: Emulator, gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("e.txt"), 1)
    emulator.transfers.expire_all()
    assert (await gw.put(gw.protocol(reply), b"e")).status_code == 403
    emulator.transfers.set_ttl(5)
    reply = await gw.initiate_upload(gw.p("e.txt"), 1)
    emulator.clock.advance(6)
    assert (await gw.put(gw.protocol(reply), b"e")).status_code == 403
    bogus = await gw.http.put(
        f"{emulator.http_url}/datagateway", content=b"e", headers={"X-Reva-Transfer": "x"}
    )
    assert bogus.status_code == 403
    emulator.transfers.set_ttl(600)
    assert await gw.upload(gw.p("e.txt"), b"e") == 200


async def test_token_in_path_segment(gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("seg.txt"), 3)
    proto = gw.protocol(reply)
    r = await gw.http.put(
        f"{proto.upload_endpoint}/{proto.token}",
        content=b"seg",
        headers={"x-access-token": gw.token, "Upload-Length": "3"},
    )
    assert r.status_code == 200


async def test_simple_put_needs_upload_length_on_eos(emulator: Emulator, gw: Gateway) -> None:
    """Storage behaviours row 9: the datagateway re-sends the PUT without Content-Length, so EOS sees no
    length unless Upload-Length is there: 500 on cernbox. Success is 200."""
    reply = await gw.initiate_upload(gw.p("len.txt"), 3)
    proto = gw.protocol(reply)
    bare = await gw.http.put(
        proto.upload_endpoint,
        content=b"len",
        headers={"x-access-token": gw.token, "X-Reva-Transfer": proto.token},
    )
    assert bare.status_code == (500 if emulator.config.put_needs_upload_length else 200)
    if emulator.config.put_needs_upload_length:
        assert not emulator.storage.exists(gw.p("len.txt"))
        assert (await gw.put(proto, b"len")).status_code == 200


async def test_range_downloads(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("r.txt"), b"0123456789")
    full = await gw.download(gw.p("r.txt"))
    assert full.status_code == 200 and full.headers["Content-Length"] == "10" and "ETag" not in full.headers
    part = await gw.download(gw.p("r.txt"), headers={"Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert part.headers["Content-Range"] == "bytes 2-4/10"
    assert (await gw.download(gw.p("r.txt"), headers={"Range": "bytes=7-"})).content == b"789"
    assert (await gw.download(gw.p("r.txt"), headers={"Range": "bytes=-3"})).content == b"789"
    assert (await gw.download(gw.p("r.txt"), headers={"Range": "bytes=20-30"})).status_code == 416
    emulator.config.range_support = False
    assert (await gw.download(gw.p("r.txt"), headers={"Range": "bytes=2-4"})).status_code == 416


async def test_download_missing_is_http_404_and_head_works(emulator: Emulator, gw: Gateway) -> None:
    assert (await gw.download(gw.p("missing"))).status_code == 404
    await gw.upload(gw.p("h.txt"), b"hello")
    reply = await gw.call("InitiateFileDownload", sp.InitiateFileDownloadRequest(ref=ref(gw.p("h.txt"))))
    proto = reply.protocols[0]
    head = await gw.http.head(
        proto.download_endpoint, headers={"X-Reva-Transfer": proto.token, "x-access-token": gw.token}
    )
    assert head.status_code == 200 and head.headers["Content-Length"] == "5"
    no_access = await gw.http.get(proto.download_endpoint, headers={"X-Reva-Transfer": proto.token})
    assert no_access.status_code == 401


async def test_download_by_id_uses_spaces(gw: Gateway) -> None:
    await gw.upload(gw.p("byid.txt"), b"id!")
    info = (await gw.stat(gw.p("byid.txt"))).info
    from cs3.storage.provider.v1beta1 import resources_pb2 as res

    reply = await gw.call(
        "InitiateFileDownload",
        sp.InitiateFileDownloadRequest(ref=res.Reference(resource_id=info.id, path=".")),
    )
    assert reply.protocols[0].protocol == "spaces"
    proto = reply.protocols[0]
    r = await gw.http.get(
        proto.download_endpoint, headers={"X-Reva-Transfer": proto.token, "x-access-token": gw.token}
    )
    assert r.content == b"id!"


async def test_initiate_upload_errors(emulator: Emulator, gw: Gateway) -> None:
    folder = await gw.initiate_upload(gw.home + "/..", 1)
    assert folder.status.code == code_pb2.CODE_PERMISSION_DENIED
    await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("dir"))))
    is_dir = await gw.initiate_upload(gw.p("dir"), 1)
    assert is_dir.status.code == code_pb2.CODE_FAILED_PRECONDITION
    emulator.storage.set_quota(50)
    over = await gw.initiate_upload(gw.p("big"), 100)
    if emulator.config.profile == "cernbox":
        # EOS checks nothing at initiate; the PUT is refused (storage behaviours row 7).
        assert over.status.code == code_pb2.CODE_OK
        assert (await gw.put(gw.protocol(over), b"x" * 100)).status_code == 500
    else:
        assert over.status.code == code_pb2.CODE_INSUFFICIENT_STORAGE


async def test_upload_into_a_missing_folder_per_profile(emulator: Emulator, gw: Gateway) -> None:
    """Storage behaviours row 1: EOS accepts the initiate and refuses the PUT with 409; decomposedfs
    refuses the initiate with FAILED_PRECONDITION; the kind switch keeps NOT_FOUND at initiate."""
    missing_parent = await gw.initiate_upload(gw.p("no/such/dir/f"), 1)
    if emulator.config.profile == "cernbox":
        assert missing_parent.status.code == code_pb2.CODE_OK
        assert (await gw.put(gw.protocol(missing_parent), b"f")).status_code == 409
        assert not emulator.storage.exists(gw.p("no/such/dir/f"))
    else:
        assert missing_parent.status.code == code_pb2.CODE_FAILED_PRECONDITION
        assert missing_parent.status.message == "failed precondition"
    # A folder removed between initiate and PUT: the same answers at commit.
    await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("gone"))))
    reply = await gw.initiate_upload(gw.p("gone/f"), 1)
    emulator.storage.external_delete(gw.p("gone"))
    status = (await gw.put(gw.protocol(reply), b"f")).status_code
    assert status == (409 if emulator.config.profile == "cernbox" else 404)


async def test_upload_into_a_missing_folder_kind_switch(tmp_path: Path) -> None:
    config = EmulatorConfig(root=tmp_path / "root", profile="cernbox", upload_missing_parent="not_found")
    async with Emulator(config) as emu:
        gw = await Gateway(emu).login()
        try:
            reply = await gw.initiate_upload(gw.p("no/such/dir/f"), 1)
        finally:
            await gw.close()
    assert reply.status.code == code_pb2.CODE_NOT_FOUND
    assert reply.status.message == "path not found when initiating upload"


async def test_conditional_upload_per_profile(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("c.txt"), b"c1")
    stale = await gw.initiate_upload(gw.p("c.txt"), 2, if_match='"stale"')
    exists = await gw.initiate_upload(gw.p("c.txt"), 2, if_not_exist=True)
    if emulator.config.profile == "cernbox":
        assert stale.status.code == code_pb2.CODE_OK and exists.status.code == code_pb2.CODE_OK
    else:
        assert (
            stale.status.code == code_pb2.CODE_FAILED_PRECONDITION and stale.status.message == "etag mismatch"
        )
        assert exists.status.code == code_pb2.CODE_ALREADY_EXISTS
        etag = (await gw.stat(gw.p("c.txt"))).info.etag
        good = await gw.initiate_upload(gw.p("c.txt"), 2, if_match=etag)
        emulator.storage.external_write(gw.p("c.txt"), b"zz")  # someone else wins the race
        assert (await gw.put(gw.protocol(good), b"c2")).status_code == 412


async def test_zero_length_upload(emulator: Emulator, gw: Gateway) -> None:
    reply = await gw.initiate_upload(gw.p("empty"), 0)
    status = (await gw.put(gw.protocol(reply), b"")).status_code
    assert emulator.storage.exists(gw.p("empty"))
    assert status == (404 if emulator.config.profile == "ocis" else 200)


async def test_oc_mtime_honoured_only_in_ocis(emulator: Emulator, gw: Gateway) -> None:
    from .helpers import opaque

    request = sp.InitiateFileUploadRequest(
        ref=ref(gw.p("m.txt")), opaque=opaque({"Upload-Length": "1", "X-OC-Mtime": "1000000000.5"})
    )
    reply = await gw.call("InitiateFileUpload", request)
    assert (await gw.put(gw.protocol(reply), b"m")).status_code == 200
    mtime = (await gw.stat(gw.p("m.txt"))).info.mtime
    if emulator.config.profile == "ocis":
        assert (mtime.seconds, mtime.nanos) == (1000000000, 500000000)
    else:
        assert mtime.seconds != 1000000000
