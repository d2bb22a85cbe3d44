"""DropReply: the request is processed fully, then the reply is lost on the wire."""

from __future__ import annotations

import httpx
import pytest
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp

from cs3sync.emulator import DropAfter, DropReply, Emulator
from cs3sync.emulator.faults import action_from_json, action_to_json

from .helpers import Gateway, admin_headers, ref

pytestmark = pytest.mark.anyio
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


async def _versions(gw: Gateway, path: str) -> int:
    reply = await gw.call("ListFileVersions", sp.ListFileVersionsRequest(ref=ref(path)))
    return len(reply.versions)


async def test_simple_put_commits_but_the_client_sees_a_drop(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("r.txt")
    assert await gw.upload(path, b"v1") == 200
    before = (await gw.stat(path)).info
    versions = await _versions(gw, path)
    rule = emulator.faults.http("PUT", DropReply())
    reply = await gw.initiate_upload(path, 3000)
    proto = gw.protocol(reply)
    with pytest.raises(httpx.TransportError):
        await gw.put(proto, b"v2 " * 1000)
    await emulator.wait_http_idle()
    assert rule.fired == 1
    record = emulator.http_log[-1]
    assert record.method == "PUT" and record.status == 0 and record.bytes_in == 3000
    # The commit happened: new content, new etag, the old content archived as a version.
    assert emulator.storage.read(path) == b"v2 " * 1000
    after = (await gw.stat(path)).info
    assert after.etag != before.etag and after.size == 3000
    assert after.id.opaque_id == before.id.opaque_id
    assert await _versions(gw, path) == versions + 1
    if emulator.config.replayable_upload_tokens:
        # EOS: the token names the path; replaying the PUT writes again (storage behaviours row 9).
        assert (await gw.put(proto, b"v3 " * 1000)).status_code == 200
        assert emulator.storage.read(path) == b"v3 " * 1000
    else:
        # The session was consumed by the commit: replaying the PUT is a 404, and nothing changes.
        assert (await gw.put(proto, b"v3")).status_code == 404
        assert emulator.storage.read(path) == b"v2 " * 1000
    # times=1: the next upload is answered normally.
    assert await gw.upload(path, b"v4") == 200


async def test_drop_reply_drops_a_refused_reply_too(emulator: Emulator, gw: Gateway) -> None:
    """Whatever the reply would have been, it is lost: here a 404 for a used session."""
    reply = await gw.initiate_upload(gw.p("u.txt"), 1)
    proto = gw.protocol(reply)
    assert (await gw.put(proto, b"a")).status_code == 200
    emulator.faults.http("PUT", DropReply())
    with pytest.raises(httpx.TransportError):
        await gw.put(proto, b"b")
    await emulator.wait_http_idle()
    assert emulator.http_log[-1].status == 0
    # EOS tokens are replayable: the second PUT committed (row 9); elsewhere it was refused (404).
    expected = b"b" if emulator.config.replayable_upload_tokens else b"a"
    assert emulator.storage.read(gw.p("u.txt")) == expected


async def test_tus_patch_keeps_its_bytes_and_commits(emulator: Emulator, gw: Gateway) -> None:
    if "tus" not in (emulator.config.upload_protocols or []):
        emulator.config.upload_protocols = [*(emulator.config.upload_protocols or []), "tus"]
    path = gw.p("t.bin")
    data = bytes(range(256)) * 40  # 10240 bytes
    half = 6000
    reply = await gw.initiate_upload(path, len(data))
    proto = gw.protocol(reply, "tus")
    url, headers = proto.upload_endpoint, {"X-Reva-Transfer": proto.token}
    head_headers = {**headers, "Tus-Resumable": "1.0.0"}
    emulator.faults.http("PATCH", DropReply())
    with pytest.raises(httpx.TransportError):
        await gw.http.patch(url, content=data[:half], headers={**headers, **TUS, "Upload-Offset": "0"})
    await emulator.wait_http_idle()
    assert emulator.http_log[-1].status == 0 and emulator.http_log[-1].bytes_in == half
    head = await gw.http.head(url, headers=head_headers)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(half)  # bytes kept
    # The same PATCH again (a client that assumed nothing arrived) is refused: the offset moved on.
    again = await gw.http.patch(url, content=data[:half], headers={**headers, **TUS, "Upload-Offset": "0"})
    assert again.status_code == 409
    # The last PATCH commits the file, and its reply is lost too.
    emulator.faults.http("PATCH", DropReply())
    with pytest.raises(httpx.TransportError):
        await gw.http.patch(url, content=data[half:], headers={**headers, **TUS, "Upload-Offset": str(half)})
    await emulator.wait_http_idle()
    assert emulator.http_log[-1].status == 0
    assert emulator.storage.read(path) == data
    assert (await gw.http.head(url, headers=head_headers)).status_code == 404  # session finished


async def test_get_is_dropped_before_any_byte(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("g.bin"), b"g" * 5000)
    emulator.faults.http("GET", DropReply())
    with pytest.raises(httpx.TransportError):
        await gw.download(gw.p("g.bin"))
    await emulator.wait_http_idle()
    record = emulator.http_log[-1]
    assert record.method == "GET" and record.status == 0 and record.bytes_out == 0
    assert (await gw.download(gw.p("g.bin"))).content == b"g" * 5000


def test_action_json_round_trip_and_type_checks() -> None:
    assert action_from_json({"type": "drop_reply"}) == DropReply()
    assert action_to_json(DropReply()) == {"type": "drop_reply"}
    with pytest.raises(ValueError, match="drop_reply takes no bytes"):
        action_from_json({"type": "drop_reply", "bytes": 10})
    with pytest.raises(ValueError):
        action_from_json({"type": "DropReply"})
    # Unknown fields are refused for every action, not only this one.
    with pytest.raises(ValueError, match="drop_after takes no seconds"):
        action_from_json({"type": "drop_after", "bytes": 1, "seconds": 2})
    assert action_from_json({"type": "drop_after", "bytes": 5}) == DropAfter(5)


async def test_admin_json_drop_reply(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("a.txt")
    async with httpx.AsyncClient(
        base_url=emulator.http_url + "/_admin", timeout=10, headers=admin_headers(emulator)
    ) as admin:
        rule = {"kind": "http", "match": "PUT /data/simple/*", "action": {"type": "drop_reply"}}
        added = await admin.post("/faults", json=rule)
        assert added.status_code == 200
        listed = (await admin.get("/faults")).json()["rules"]
        assert [r["action"] for r in listed if r["id"] == added.json()["id"]] == [{"type": "drop_reply"}]
        bad = {**rule, "action": {"type": "drop_reply", "bytes": "10"}}
        refused = await admin.post("/faults", json=bad)
        assert refused.status_code == 400 and "error" in refused.json()
        reply = await gw.initiate_upload(path, 5)
        with pytest.raises(httpx.TransportError):
            await gw.put(gw.protocol(reply), b"hello")
        await emulator.wait_http_idle()
        assert emulator.storage.read(path) == b"hello"
        log = (await admin.get("/http_log")).json()["requests"]
        assert log[-1]["method"] == "PUT" and log[-1]["status"] == 0
        fired = (await admin.get("/faults")).json()["rules"]
        assert [r["fired"] for r in fired if r["id"] == added.json()["id"]] == [1]
