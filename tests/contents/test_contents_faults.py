"""The contents manager when the journal's disk is full or the engine dies (issue 13, items 1 and 7).

The full disk is injected deterministically (the ``full_disk`` fixture: every journal COMMIT fails with
SQLITE_FULL); the engine's death is a task of its own that raises (a bug it cannot survive).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from contents_helpers import body, put_text, status_of
from tornado.httpclient import HTTPClientError

from cs3sync.engine import SyncEngine


async def until(engine: SyncEngine, predicate: Any) -> None:
    """Wait on the engine's change signal (set by every journal failure and recovery)."""
    with anyio.fail_after(30):
        while True:
            since = engine.changed.generation
            if predicate():
                return
            await engine.changed.wait(since)


async def journal_status(jp_fetch: Any) -> dict[str, Any]:
    return body(await jp_fetch("api", "cs3sync", "journal"))


async def test_a_full_journal_disk_is_507_and_shown_as_health(jp_fetch: Any, cm: Any, full_disk: Any) -> None:
    await put_text(jp_fetch, "a1.txt", "kept")
    await jp_fetch("api", "contents", "d1", method="PUT", body=json.dumps({"type": "directory"}))
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    with full_disk(engine.journal):
        for method, path, payload in [
            ("DELETE", "a1.txt", None),
            ("PUT", "d2", {"type": "directory"}),
            ("PUT", "a2.txt", {"type": "file", "format": "text", "content": "x"}),
            ("PATCH", "a1.txt", {"path": "a3.txt"}),
        ]:
            kw = {"body": json.dumps(payload)} if payload is not None else {}
            try:
                await jp_fetch("api", "contents", path, method=method, **kw)
                raise AssertionError(f"{method} {path} answered 2xx with a full disk")
            except HTTPClientError as e:
                assert e.code == 507, (method, path, e.code)
                message = body(e.response)["message"]
                assert "Local disk full" in message and path in message, message
        # The heartbeat cannot be written either: the sync item shows why.
        await until(engine, lambda: engine.health == "journal_error")
        status = await journal_status(jp_fetch)
        assert status["health"] == "journal_error" and "disk full" in status["health_error"]
    await until(engine, lambda: engine.health == "ok")  # the next heartbeat goes through
    status = await journal_status(jp_fetch)
    assert status["health"] == "ok" and status["health_error"] is None
    assert await status_of(jp_fetch, "api", "contents", "a1.txt", method="DELETE") == 204


async def test_a_dead_engine_is_restarted_by_its_host(jp_fetch: Any, cm: Any) -> None:
    cm.cs3.write_through_timeout = 0.0  # answer before the engine applies the save
    engine = await cm.get_engine()

    async def bug() -> None:
        raise RuntimeError("a bug the engine cannot survive")

    engine._tg.start_soon(bug)
    await engine.wait_ended()
    assert engine.health == "dead"
    restarted = await cm.get_engine()  # waits for the host's restart
    assert restarted is not engine and restarted.health == "ok"
    await put_text(jp_fetch, "after.txt", "applied by the new engine")
    assert await restarted.wait_idle(timeout=30)
    status = await journal_status(jp_fetch)
    assert status["health"] == "ok" and status["pending"] == 0
    assert body(await jp_fetch("api", "contents", "after.txt"))["content"] == "applied by the new engine"
