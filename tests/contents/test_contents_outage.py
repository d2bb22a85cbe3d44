"""Outages seen through the REST API (issue 13, items 4, 6 and 8): the queue reopens on the first
request after the storage returns; offline renames and saves to new paths; a server restarted during an
outage serves everything it had seen or saved."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from contents_helpers import body, put_text

from cs3sync.emulator import Unavailable


async def _channel_ready(cm: Any) -> None:
    """The client's gRPC channel reconnected after the emulator came back (grpc-core's own backoff)."""
    channel = (await cm.get_client()).gateway._channel
    if channel is not None:
        with anyio.fail_after(15):
            await channel.channel_ready()


async def test_the_first_request_after_the_storage_returns_reopens_the_queue(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Before: the queue waited for the next timed probe (31 s measured with the default 15 s
    doubling). A read answered offline nudges the probe; the save lands without any timed probe."""
    await put_text(jp_fetch, "r.txt", "v1")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    # In this test only a request can bring the queue back (the fixture caps the probe at 0.5 s).
    engine.offline_probe_interval = engine.offline_probe_max = 3600.0
    engine.offline_threshold = 1
    cm.cs3.write_through_timeout = 0.0
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        await put_text(jp_fetch, "r.txt", "v2, saved while the storage was down")
        with anyio.fail_after(30):
            while engine.state != "offline":
                await engine.changed.wait(timeout=30)
        [entry] = [e for e in engine.active_entries() if e.path.endswith("/r.txt")]
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    await _channel_ready(cm)
    returned = time.monotonic()
    got = body(await jp_fetch("api", "contents", "r.txt", params={"content": "0"}))  # the next request
    assert got["size"] == len("v2, saved while the storage was down")
    assert await engine.wait(entry.id, timeout=30)
    landed = time.monotonic() - returned
    print(f"queued save landed {landed:.3f} s after the storage returned")  # measured, not asserted
    assert engine.state == "online"


async def test_after_a_long_outage_the_first_request_reopens_the_queue_before_the_channel_is_back(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Issue 14's drain after a long outage (the breaker open): the storage comes back while the
    client's gRPC channel still waits out its reconnect backoff, so the probe that the next request
    nudges fails fast (modelled by failing the probe's Stats). Before: nothing probed again until the
    next timed probe (17.9 s measured after a 30 s outage; an hour here), so the save waited. Now a
    failed probe is repeated for a few seconds after a nudge: the save lands without any timed probe."""
    await put_text(jp_fetch, "l.txt", "v1")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    # In this test only a request can bring the queue back: no timed probe within the hour.
    engine.offline_probe_interval = engine.offline_probe_max = 3600.0
    engine.offline_threshold = 1
    cm.cs3.write_through_timeout = 0.0
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        await put_text(jp_fetch, "l.txt", "v2, saved during a long outage")
        with anyio.fail_after(30):
            while engine.state != "offline":
                await engine.changed.wait(timeout=30)
        [entry] = [e for e in engine.active_entries() if e.path.endswith("/l.txt")]
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    # The storage is back, but the probe's Stat (with the client's retries) fails fast, as it does while
    # our channel waits out its reconnect backoff after a long outage (grpc-core fails calls fast in
    # TRANSIENT_FAILURE until its next connection attempt).
    retries = (await cm.get_client()).config.retry_attempts
    emulator_thread.faults.grpc("Stat", Unavailable(), times=retries)
    # At once, as JupyterLab's file browser does: answered from what we know, it nudges the probe.
    got = body(await jp_fetch("api", "contents", "", params={"content": "1"}))
    assert "l.txt" in {c["name"] for c in got["content"]}
    assert await engine.wait(entry.id, timeout=20)  # not the next timed probe, an hour away
    assert engine.state == "online"
    landed = body(await jp_fetch("api", "contents", "l.txt", params={"content": "1"}))
    assert landed["content"] == "v2, saved during a long outage"


async def test_after_a_short_outage_the_first_request_makes_the_waiting_save_due(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Issue 14's drain through the REST API: an outage shorter than the breaker's threshold leaves the
    save waiting out a connectivity backoff with the queue still "online". The backoff here is an hour,
    so only the path under test can land it: the next request is answered from what the server knows
    (the storage counts as unreachable for a moment), nudges the engine, whose check of the storage
    makes the waiting save due at once."""
    await put_text(jp_fetch, "s.txt", "v1")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    engine.backoff_base = engine.backoff_max = 3600.0
    engine.offline_probe_interval = engine.offline_probe_max = 3600.0
    cm.cs3.write_through_timeout = 0.0
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        await put_text(jp_fetch, "s.txt", "v2, saved during a short outage")
        [entry] = [e for e in engine.active_entries() if e.path.endswith("/s.txt")]
        with anyio.fail_after(30):
            while (await engine.journal.entry(entry.id)).attempts < 1:
                await engine.changed.wait(timeout=30)
        waiting = await engine.journal.entry(entry.id)
        assert waiting.state == "retrying" and waiting.last_error_kind == "connectivity"
        assert engine.state == "online"  # one failure of three: the breaker is still closed
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    await _channel_ready(cm)
    got = body(await jp_fetch("api", "contents", "", params={"content": "1"}))  # the next request
    assert "s.txt" in {c["name"] for c in got["content"]}
    assert await engine.wait(entry.id, timeout=30)  # not its one-hour backoff
    landed = body(await jp_fetch("api", "contents", "s.txt", params={"content": "1"}))
    assert landed["content"] == "v2, saved during a short outage"
    assert (await engine.journal.entry(entry.id)).attempts == 1  # the early run did not cost an attempt


async def test_a_server_restarted_during_an_outage_serves_what_it_had_seen(
    make_cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """Issue 13 item 4: files looked up one by one (saved and landed, or read) vanished from the
    recorded storage state when their folder was listed afterwards (the listing dropped every known
    child it did not record anew, and it records only what changed)."""
    (cs3_root[1] / "w").mkdir()
    (cs3_root[1] / "w" / "read.txt").write_bytes(b"written by someone else")
    first = make_cm()
    await first.save({"type": "file", "format": "text", "content": "landed"}, "w/landed.txt")
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    await first.save({"type": "notebook", "content": nb}, "w/n.ipynb")
    assert await (await first.get_engine()).wait_idle(timeout=30)
    assert (await first.get("w/read.txt", content=True))["content"] == "written by someone else"
    for name in ("landed.txt", "n.ipynb", "read.txt"):
        await first.get(f"w/{name}", content=False)
    await first.get("", content=True)
    await first.get("w", content=True)  # the listing comes last
    await first.shutdown()

    emulator_thread.call(emulator_thread.faults.outage)
    try:
        second = make_cm()  # a new server process on the same journal, started during the outage
        listing = await second.get("w", content=True)
        assert {c["name"] for c in listing["content"]} == {"landed.txt", "n.ipynb", "read.txt"}
        for name in ("landed.txt", "n.ipynb", "read.txt"):
            assert (await second.get(f"w/{name}", content=False))["name"] == name
        assert (await second.get("w/landed.txt", content=True))["content"] == "landed"  # our bytes
        await second.shutdown()
    finally:
        emulator_thread.call(emulator_thread.faults.restart)


async def _offline(cm: Any, emulator_thread: Any) -> Any:
    """Take the storage down and wait until the engine knows (a save it cannot apply opens its breaker)."""
    engine = await cm.get_engine()
    engine.offline_threshold = 1
    emulator_thread.call(emulator_thread.faults.outage)
    await cm.save({"type": "file", "format": "text", "content": "x"}, "trigger.txt")
    with anyio.fail_after(30):
        while engine.state != "offline":
            await engine.changed.wait(timeout=30)
    return engine


async def test_offline_renames_and_saves_to_new_names(
    jp_fetch: Any, cm: Any, emulator_thread: Any, monkeypatch: Any
) -> None:
    """Issue 13 item 6. Offline, after the folder was listed: a rename to a new name answered 503 'no
    cached copy of <target>'; a save to a path never seen asked the dead storage first (~1.6 s of
    client retries each); the saves waiting for the storage showed as 'queued'."""
    await jp_fetch("api", "contents", "o", method="PUT", body=json.dumps({"type": "directory"}))
    await put_text(jp_fetch, "o/a.txt", "content of a")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    body(await jp_fetch("api", "contents", "o", params={"content": "1"}))  # the folder is listed
    cm.cs3.write_through_timeout = 0.0
    engine = await _offline(cm, emulator_thread)
    try:
        client = await cm.get_client()
        asked: list[str] = []
        stat = client.stat

        async def counting_stat(path: str, *args: Any, **kw: Any) -> Any:
            asked.append(path)
            return await stat(path, *args, **kw)

        monkeypatch.setattr(client, "stat", counting_stat)
        await jp_fetch("api", "contents", "o/a.txt", method="PATCH", body=json.dumps({"path": "o/b.txt"}))
        assert body(await jp_fetch("api", "contents", "o/b.txt"))["content"] == "content of a"
        await put_text(jp_fetch, "o/never-seen.txt", "new while offline")
        assert asked == [], "the storage is known to be down: nothing was asked"
        listing = body(await jp_fetch("api", "contents", "o", params={"content": "1"}))
        assert {c["name"] for c in listing["content"]} == {"b.txt", "never-seen.txt"}
        status = body(await jp_fetch("api", "cs3sync", "journal"))
        waiting = {e["api_path"]: (e["state"], e["blocked_reason"]) for e in status["entries"]}
        assert waiting["o/b.txt"] == ("blocked", "offline")
        assert waiting["o/never-seen.txt"] == ("blocked", "offline")
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    await _channel_ready(cm)
    engine.storage_answered()
    assert await engine.wait_idle(timeout=60)


async def test_the_status_says_offline_from_the_first_save_that_cannot_reach_the_storage(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any, monkeypatch: Any
) -> None:
    """Issue 15: the status bar said 'online' for ~25 s after an outage began with a save pending (the
    breaker opens after `offline_threshold` failures, with backoff between). Here the backoff is so long
    that the breaker never opens during the test: the status must say offline from the first failure,
    stay offline while the outage lasts, and say online again once a request reaches the storage."""
    await put_text(jp_fetch, "s.txt", "v1")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    assert body(await jp_fetch("api", "cs3sync", "journal"))["state"] == "online"
    engine.backoff_base = engine.backoff_max = 3600.0
    cm.cs3.write_through_timeout = 0.0
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        await put_text(jp_fetch, "s.txt", "v2, saved while the storage was down")
        [entry] = [e for e in engine.active_entries() if e.path.endswith("/s.txt")]
        with anyio.fail_after(30):  # the first attempt failed
            while True:
                since = engine.changed.generation
                if any(e.id == entry.id and e.state == "retrying" for e in engine.active_entries()):
                    break
                await engine.changed.wait(since)
        assert engine.state == "online", "the breaker has not opened (one failure of three)"
        for _ in range(3):  # the status item polls: offline every time while the outage lasts
            status = body(await jp_fetch("api", "cs3sync", "journal"))
            assert status["state"] == "offline"
            assert status["last_error"]
            assert status["pending"] == 1
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    await _channel_ready(cm)
    (cs3_root[1] / "other.txt").write_bytes(b"written by someone else")
    # Reads answer from what we know for a few seconds after one found no storage; not this one.
    monkeypatch.setattr("contents.remote.UNREACHABLE_GRACE", 0.0)
    body(await jp_fetch("api", "contents", "other.txt", params={"content": "0"}))  # reaches the storage
    assert body(await jp_fetch("api", "cs3sync", "journal"))["state"] == "online"
    # (the save itself lands at its next attempt, an hour away here; landing after an outage is tested above)


async def test_a_new_folder_made_while_the_storage_is_down(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Issue 15: JupyterLab's New Folder during an outage failed with "no cached copy of Untitled Folder".
    Its requests: POST (an untitled folder), GET of the new folder, PATCH to the name typed; then a file
    saved in it. All answer from what we created; everything lands when the storage returns."""
    await jp_fetch("api", "contents", "p", method="PUT", body=json.dumps({"type": "directory"}))
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    body(await jp_fetch("api", "contents", "p", params={"content": "1"}))  # the folder is listed
    cm.cs3.write_through_timeout = 0.0
    engine = await _offline(cm, emulator_thread)
    try:
        made = body(
            await jp_fetch("api", "contents", "p", method="POST", body=json.dumps({"type": "directory"}))
        )
        assert (made["type"], made["path"]) == ("directory", "p/Untitled Folder")
        opened = body(await jp_fetch("api", "contents", "p/Untitled Folder", params={"content": "1"}))
        assert (opened["type"], opened["content"]) == ("directory", [])
        await jp_fetch(
            "api", "contents", "p/Untitled Folder", method="PATCH", body=json.dumps({"path": "p/results"})
        )
        await put_text(jp_fetch, "p/results/r.txt", "made offline")
        listing = body(await jp_fetch("api", "contents", "p/results", params={"content": "1"}))
        assert [c["name"] for c in listing["content"]] == ["r.txt"]
        parent = body(await jp_fetch("api", "contents", "p", params={"content": "1"}))
        assert "results" in {c["name"] for c in parent["content"]}
        assert body(await jp_fetch("api", "contents", "p/results/r.txt"))["content"] == "made offline"
        waiting = engine.active_entries()
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    await _channel_ready(cm)
    engine.storage_answered()
    for entry in waiting:
        assert await engine.wait(entry.id, timeout=60)
    assert (await (await cm.get_client()).stat(cm.path_map.to_cs3("p/results/r.txt"))).size == len(
        "made offline"
    )
