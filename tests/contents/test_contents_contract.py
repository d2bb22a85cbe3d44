"""The contract on hostile and unlucky paths (issue 12), through the REST API: signed-out saves,
saves after a conflict, foreign deletes, foreign locks, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contents_helpers import body, status_of


def _swap(path: Path, text: str) -> str:
    """Write ``text`` to ``path``, returning what it held."""
    old = path.read_text()
    path.write_text(text)
    return old


async def test_a_save_while_signed_out_is_journaled_and_lands_after_signing_in(
    jp_fetch: Any, cm: Any, cs3_root: Any, cs3_settings: dict
) -> None:
    """A save answered 2xx is in the journal even when the token is refused, `status` shows the auth
    pause, and the save lands once the token file holds a good secret again."""
    token = Path(cs3_settings["CS3Sync"]["token_path"])
    good = _swap(token, "not-the-password")
    model = {"type": "file", "format": "text", "content": "written while signed out"}
    code = await status_of(jp_fetch, "api", "contents", "later.txt", method="PUT", body=json.dumps(model))
    engine = await cm.get_engine()
    entries = [e for e in await engine.entries() if e.path.endswith("/later.txt")]
    if code < 300:
        assert entries, "a 2xx save must be in the journal"
    else:  # refused: then nothing may claim it was kept
        assert code == 503 and not entries
    assert entries, "a save while signed out is kept (journaled), like a save while offline"
    got = body(await jp_fetch("api", "contents", "later.txt"))
    assert got["content"] == "written while signed out"  # read-your-writes from the spool
    for _ in range(200):  # the engine tried it, found the token refused and paused
        if engine.state == "auth":
            break
        await engine.changed.wait(timeout=0.1)
    assert engine.state == "auth"
    control = await engine.journal.control()
    assert control.engine_state == "auth"  # what `python -m cs3sync status` shows
    _swap(token, good)
    assert await engine.wait(entries[-1].id, timeout=60)
    assert (cs3_root[1] / "later.txt").read_bytes() == b"written while signed out"
