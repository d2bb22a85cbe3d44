"""What the storage says a user may not do is refused before anything is journaled (issue 12 #6): a
viewer share, a rename across spaces. A refusal found only when applying parks the entry with a plain
reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cs3sync.cs3 import CS3Client
from cs3sync.emulator import EmulatorThread
from cs3sync.emulator.faults import Status

PERMISSION_DENIED = 8  # cs3.rpc.v1beta1.Code.CODE_PERMISSION_DENIED
INTERNALS = ("/eos/", "/home/", "PERMISSION_DENIED", "Traceback", "Error(", "[")


async def _accept_all(client: CS3Client) -> None:
    for rs in await client.list_incoming_shares():
        if rs.state != "accepted":
            await client.update_received_share(rs.share.id, state="accepted")


async def _call(jp_fetch: Any, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    kwargs: dict[str, Any] = {"method": method, "raise_error": False}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PATCH", "PUT"):
        kwargs["body"] = "{}"
    if method == "DELETE":
        kwargs["allow_nonstandard_methods"] = True
    response = await jp_fetch("api", "contents", *[p for p in path.split("/") if p], **kwargs)
    text = response.body.decode() if response.body else ""
    return response.code, (json.loads(text) if text.startswith("{") else {})


TEXT = {"type": "file", "format": "text", "content": "an edit"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "Shared with me/radium/new.txt", TEXT),
        ("PUT", "Shared with me/radium/measurements.csv", TEXT),
        ("PUT", "Shared with me/radium/folder", {"type": "directory"}),
        ("PATCH", "Shared with me/radium/measurements.csv", {"path": "Shared with me/radium/renamed.csv"}),
        ("DELETE", "Shared with me/radium/measurements.csv", None),
        ("POST", "Shared with me/radium", {"copy_from": "data.csv"}),
        ("POST", "Shared with me/radium/measurements.csv/checkpoints", None),
        ("PATCH", "data.csv", {"path": "Spaces/cosmology/data.csv"}),
    ],
)
async def test_refused_before_journaling(
    jp_fetch: Any,
    jp_serverapp: Any,
    demo_emulator: EmulatorThread,
    cs3_config: Any,
    method: str,
    path: str,
    body: Any,
) -> None:
    einstein = CS3Client(cs3_config(demo_emulator, "einstein"))
    try:
        await _accept_all(einstein)
    finally:
        await einstein.aclose()
    assert (await _call(jp_fetch, "GET", "Shared with me/radium"))[0] == 200
    cm = jp_serverapp.contents_manager
    engine = await cm.get_engine()
    before = len(await engine.entries())
    status, reply = await _call(jp_fetch, method, path, body)
    assert status in (400, 403, 404), (status, reply)
    if path.startswith("Shared with me/radium"):
        assert status == 403, reply
    message = reply.get("message", "")
    assert message and not any(x in message for x in INTERNALS), message
    assert len(await engine.entries()) == before  # nothing journaled, nothing parked
    assert demo_emulator.storage.exists(f"{demo_emulator.home('marie')}/radium/measurements.csv")


async def test_a_refusal_found_when_applying_parks_the_entry_with_a_plain_reason(
    api: Any, jp_fetch: Any, jp_serverapp: Any, demo_emulator: EmulatorThread
) -> None:
    demo_emulator.call(
        demo_emulator.faults.grpc,
        "InitiateFileUpload",
        Status(PERMISSION_DENIED, "permission denied"),
        times=50,
    )
    status, reply = await _call(jp_fetch, "PUT", "refused.txt", TEXT)
    assert status in (201, 403), reply
    engine = await jp_serverapp.contents_manager.get_engine()
    await engine.wait_idle(timeout=30)
    entries = [e for e in await engine.entries() if e.path.endswith("/refused.txt")]
    assert [e.state for e in entries] == ["failed"]
    _, journal = await api("journal")
    shown = [e for e in journal["entries"] if e["api_path"] == "refused.txt"]
    assert shown and shown[0]["last_error"] == "permission denied: you may not write refused.txt"
