"""Sequences of our own writes that must never read as someone else's (issue 13, item 3): delete b,
rename a -> b, save b, all pending, then drained. Nobody else touches the storage, so nothing may end
as a conflict."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from contents_helpers import body, put_text


@pytest.mark.parametrize("hold", ["paused", "offline"])
async def test_delete_b_rename_a_to_b_save_b_is_no_conflict(
    jp_fetch: Any, cm: Any, cs3_root: Any, emulator_thread: Any, hold: str
) -> None:
    await put_text(jp_fetch, "a.txt", "content of a")
    await put_text(jp_fetch, "b.txt", "content of b")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    await jp_fetch("api", "contents", "b.txt")  # the editor has b open
    await jp_fetch("api", "contents", "", params={"content": "1"})
    cm.cs3.write_through_timeout = 0.0
    if hold == "paused":  # the three writes stay pending until the queue resumes
        await engine.journal.set_control(paused=True)
        engine._paused = True
    else:
        emulator_thread.call(emulator_thread.faults.outage)
    try:
        await jp_fetch("api", "contents", "b.txt", method="DELETE")
        await jp_fetch("api", "contents", "a.txt", method="PATCH", body=json.dumps({"path": "b.txt"}))
        assert body(await jp_fetch("api", "contents", "b.txt"))["content"] == "content of a"
        await put_text(jp_fetch, "b.txt", "our save of b")
    finally:
        if hold == "paused":
            await engine.journal.set_control(paused=False)
            engine._paused = False
            engine.wake()
        else:
            emulator_thread.call(emulator_thread.faults.restart)
            engine.storage_answered()
    with anyio.fail_after(60):
        while any(e.state not in ("conflict", "failed") for e in engine.active_entries()):
            await engine.changed.wait(timeout=60)
    parked = [e for e in await engine.entries() if e.state in ("conflict", "failed")]
    assert parked == [], [(e.op, e.path, e.state, e.last_error) for e in parked]
    assert sorted(p.name for p in cs3_root[1].iterdir()) == ["b.txt"]
    assert (cs3_root[1] / "b.txt").read_bytes() == b"our save of b"
    assert body(await jp_fetch("api", "contents", "b.txt"))["content"] == "our save of b"
