"""Read-your-writes right after a write lands in the background (issue 13, item 2).

A write that answered optimistically (here: ``write_through_timeout = 0``) lands later, when no request
waits for it. Whatever a read cached meanwhile (a Stat of the old version, or "not found" for a new
file) must not outlive the landing: our own landed writes never read as someone else's, never as
missing, never as "already exists" elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from contents_helpers import body, put_text, rpc_names, status_of


async def _landed(cm: Any) -> None:
    """Wait (on engine events) until every journaled write has been applied."""
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)


async def test_our_landed_writes_never_read_as_someone_elses(jp_fetch: Any, cm: Any) -> None:
    cm.cs3.write_through_timeout = 0.0  # every write answers before it lands
    cm.cs3.stat_cache_ttl = 3600.0  # a stale cache entry would last the whole test
    await jp_fetch("api", "contents", "rw", method="PUT", body=json.dumps({"type": "directory"}))
    await _landed(cm)
    for i in range(5):
        name = f"rw/f{i}.txt"
        # A new file: the read while pending Stats the path (not found on the storage yet).
        await put_text(jp_fetch, name, f"v1-{i}")
        assert body(await jp_fetch("api", "contents", name))["content"] == f"v1-{i}"
        await _landed(cm)
        got = body(await jp_fetch("api", "contents", name))
        assert got["content"] == f"v1-{i}", f"round {i}: new file after landing"

        # An overwrite: the read while pending Stats the old version.
        await put_text(jp_fetch, name, f"v2-{i}")
        assert body(await jp_fetch("api", "contents", name))["content"] == f"v2-{i}"
        await _landed(cm)
        code = await status_of(jp_fetch, "api", "contents", name)
        assert code == 200, f"round {i}: overwritten file after landing answered {code}"
        assert body(await jp_fetch("api", "contents", name))["content"] == f"v2-{i}"

        # A rename onto a name that was renamed away, both landed in the background.
        moved = f"rw/m{i}.txt"
        await jp_fetch("api", "contents", name, method="PATCH", body=json.dumps({"path": moved}))
        assert await status_of(jp_fetch, "api", "contents", name) == 404
        await _landed(cm)
        await jp_fetch("api", "contents", moved, method="PATCH", body=json.dumps({"path": name}))
        await _landed(cm)
        assert body(await jp_fetch("api", "contents", name))["content"] == f"v2-{i}"

        # A delete of the landed file.
        code = await status_of(jp_fetch, "api", "contents", name, method="DELETE")
        assert code == 204, f"round {i}: delete after landing answered {code}"
        await _landed(cm)
        assert await status_of(jp_fetch, "api", "contents", name) == 404


async def test_metadata_after_a_landed_save_needs_no_rpc(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """JupyterLab asks for a file's model (``content=0``) around every save. Once the save landed, the
    answer comes from the engine's own Stat after the upload: no RPC, the storage's new size, and the
    same last_modified and hash the save's reply and the pending answers gave (no "File Changed")."""
    cm.cs3.write_through_timeout = 0.0
    await put_text(jp_fetch, "meta.txt", "v1")
    await _landed(cm)
    for i in range(3):
        text = f"version {i} " * (i + 1)
        saved = await put_text(jp_fetch, "meta.txt", text)
        pending = body(await jp_fetch("api", "contents", "meta.txt", params={"content": "0", "hash": "1"}))
        await _landed(cm)
        mark = len(emulator_thread.calls)
        got = body(await jp_fetch("api", "contents", "meta.txt", params={"content": "0", "hash": "1"}))
        assert rpc_names(emulator_thread, mark) == [], f"round {i}"
        assert got["last_modified"] == saved["last_modified"] == pending["last_modified"]
        assert got["size"] == len(text.encode())
        assert got["hash"] == pending["hash"]
        # The storage holds what was saved (read with content: the cached Stat names the new version).
        assert body(await jp_fetch("api", "contents", "meta.txt"))["content"] == text
