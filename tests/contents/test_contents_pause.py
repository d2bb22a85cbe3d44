"""Reads during the auth pause (issue 13, item 5): the token is refused, the engine pauses; a file with a
pending save is read from its journaled bytes, whatever the storage would answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contents_helpers import body, put_text


def _swap(path: Path, text: str) -> str:
    """Write ``text`` to ``path``, returning what it held."""
    old = path.read_text()
    path.write_text(text)
    return old


async def test_pending_files_are_readable_during_the_auth_pause(
    jp_fetch: Any, cm: Any, cs3_settings: dict, emulator_thread: Any
) -> None:
    await put_text(jp_fetch, "known.txt", "v1")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    token = Path(cs3_settings["CS3Sync"]["token_path"])
    good = _swap(token, "not-the-password")
    cm.cs3.write_through_timeout = 0.0
    try:
        emulator_thread.auth.expire_all()  # the next call must log in again, with the refused secret
        await put_text(jp_fetch, "known.txt", "v2 while signed out")
        await put_text(jp_fetch, "new.txt", "new while signed out")
        while engine.state != "auth":  # the engine tried a save, found the token refused and paused
            await engine.changed.wait(timeout=30)
        cm.invalidate(cm.path_map.to_cs3("known.txt"), cm.path_map.to_cs3("new.txt"))
        for name, text in [("known.txt", "v2 while signed out"), ("new.txt", "new while signed out")]:
            got = body(await jp_fetch("api", "contents", name))
            assert got["content"] == text
            meta = body(await jp_fetch("api", "contents", name, params={"content": "0", "hash": "1"}))
            assert meta["size"] == len(text)
    finally:
        _swap(token, good)
    assert await engine.wait_idle(timeout=60)
