"""Offline reads and the presented mtime across restarts, through REST and
through a manager without a server."""

from __future__ import annotations

import json
from typing import Any

from contents_helpers import body, status_of

NB = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _nb(text: str) -> dict[str, Any]:
    cell = {"cell_type": "markdown", "id": "c1", "metadata": {}, "source": text}
    return {"type": "notebook", "content": {**NB, "cells": [cell]}}


async def test_editor_saves_while_the_storage_is_down(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """JupyterLab's save of an open document: GET ?content=0&hash=1 (its "File Changed" check), PUT,
    GET ?content=0&hash=1 again. All three succeed during an outage; the listing still shows the
    folder; the save reaches the storage when it comes back."""
    emu = emulator_thread
    await jp_fetch("api", "contents", "essay", method="PUT", body=json.dumps({"type": "directory"}))
    await jp_fetch("api", "contents", "essay/n.ipynb", method="PUT", body=json.dumps(_nb("v1")))
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    (cs3_root[1] / "essay" / "foreign.txt").write_bytes(b"never read by us")
    opened = body(await jp_fetch("api", "contents", "essay/n.ipynb", params={"content": "1", "hash": "1"}))
    body(await jp_fetch("api", "contents", "", params={"content": "1"}))
    body(await jp_fetch("api", "contents", "essay", params={"content": "1"}))
    await cm.flush_observations()

    emu.call(emu.faults.outage)
    try:
        cm.invalidate(cm.path_map.to_cs3("essay"), cm.path_map.to_cs3(""))  # no answers from the stat cache
        check = body(await jp_fetch("api", "contents", "essay/n.ipynb", params={"content": "0", "hash": "1"}))
        assert check["last_modified"] == opened["last_modified"] and check["hash"] == opened["hash"]
        saved = body(
            await jp_fetch("api", "contents", "essay/n.ipynb", method="PUT", body=json.dumps(_nb("offline")))
        )
        after = body(await jp_fetch("api", "contents", "essay/n.ipynb", params={"content": "0", "hash": "1"}))
        assert after["last_modified"] == saved["last_modified"] > opened["last_modified"]
        assert after["hash"] and after["hash"] != opened["hash"]
        assert await cm.file_exists("essay/n.ipynb") and await cm.dir_exists("essay")
        root = body(await jp_fetch("api", "contents", "", params={"content": "1"}))
        assert "essay" in [c["name"] for c in root["content"]]
        listing = body(await jp_fetch("api", "contents", "essay", params={"content": "1"}))
        assert {"n.ipynb", "foreign.txt"} <= {c["name"] for c in listing["content"]}
        content = body(await jp_fetch("api", "contents", "essay/n.ipynb"))
        assert content["content"]["cells"][0]["source"] == "offline"  # from the spool
        code = await status_of(jp_fetch, "api", "contents", "essay/foreign.txt")
        assert code == 503  # known, but its bytes were never read: no cached copy, and never a 404
        code = await status_of(jp_fetch, "api", "contents", "essay/never-seen.txt", params={"content": "0"})
        assert code == 503
    finally:
        emu.call(emu.faults.restart)
    engine.wake()
    entry_ids = [e.id for e in await engine.entries() if e.path.endswith("/essay/n.ipynb")]
    assert await engine.wait(entry_ids[-1], timeout=60)
    on_disk = json.loads((cs3_root[1] / "essay" / "n.ipynb").read_text())
    assert "".join(on_disk["cells"][0]["source"]) == "offline"
    cm.invalidate(cm.path_map.to_cs3("essay/n.ipynb"))
    back = body(await jp_fetch("api", "contents", "essay/n.ipynb", params={"content": "0"}))
    assert back["last_modified"] == saved["last_modified"]  # stable once applied


async def test_last_modified_survives_a_restart(make_cm: Any, emulator_thread: Any) -> None:
    first = make_cm()
    saved = await first.save({"type": "file", "format": "text", "content": "x"}, "r.txt")
    nb_saved = await first.save(_nb("n"), "r.ipynb")
    await (await first.get_engine()).wait_idle(timeout=30)
    got = await first.get("r.txt", content=False, require_hash=True)
    assert got["last_modified"] == saved["last_modified"]
    await first.shutdown()

    second = make_cm()  # a new server process on the same journal
    again = await second.get("r.txt", content=False, require_hash=True)
    assert again["last_modified"] == saved["last_modified"]
    assert again["hash"] == got["hash"]
    assert (await second.get("r.ipynb", content=False))["last_modified"] == nb_saved["last_modified"]
    listing = await second.get("", content=True)
    times = {c["name"]: c["last_modified"] for c in listing["content"]}
    assert times["r.txt"] == saved["last_modified"]
    await second.shutdown()


async def test_restart_during_an_outage_answers_from_the_journal(make_cm: Any, emulator_thread: Any) -> None:
    first = make_cm()
    await first.save({"type": "directory"}, "d")
    saved = await first.save({"type": "file", "format": "text", "content": "kept"}, "d/k.txt")
    await (await first.get_engine()).wait_idle(timeout=30)
    await first.get("", content=True)
    await first.get("d", content=True)
    await first.shutdown()

    emulator_thread.call(emulator_thread.faults.outage)
    try:
        second = make_cm()
        assert await second.dir_exists("d") and await second.file_exists("d/k.txt")
        listing = await second.get("d", content=True)
        assert [c["name"] for c in listing["content"]] == ["k.txt"]
        model = await second.get("d/k.txt", content=True)
        assert model["content"] == "kept"  # the journal kept the bytes of our own last write
        assert model["last_modified"] == saved["last_modified"]
        await second.shutdown()
    finally:
        emulator_thread.call(emulator_thread.faults.restart)


async def test_a_notebook_saved_earlier_opens_during_an_outage(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Issue 15: reloading during an outage answered "no cached copy of welcome.ipynb" for a notebook
    saved minutes earlier. Our landed save's bytes are known: a reload (the folder listing, then the
    notebook with its content) serves them once the stat and content caches have expired."""
    emu = emulator_thread
    saved = body(
        await jp_fetch("api", "contents", "welcome.ipynb", method="PUT", body=json.dumps(_nb("mine")))
    )
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    await cm.flush_observations()
    emu.call(emu.faults.outage)
    try:
        cm.invalidate(cm.path_map.to_cs3("welcome.ipynb"), cm.path_map.to_cs3(""))  # caches expired
        root = body(await jp_fetch("api", "contents", "", params={"content": "1"}))
        assert "welcome.ipynb" in [c["name"] for c in root["content"]]
        opened = body(
            await jp_fetch("api", "contents", "welcome.ipynb", params={"content": "1", "hash": "1"})
        )
        assert opened["content"]["cells"][0]["source"] == "mine"
        assert opened["last_modified"] == saved["last_modified"]
    finally:
        emu.call(emu.faults.restart)


async def test_a_file_downloads_during_an_outage_from_what_we_know(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """``/files/`` during an outage: a file whose bytes we know (our own landed save) streams from them;
    one we only listed, or never saw, is a 503, never a 500 (the outage is not a failure of the server)."""
    emu = emulator_thread
    await jp_fetch("api", "contents", "data.csv", method="PUT", body=json.dumps(_text("a,b\n1,2\n")))
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    (cs3_root[1] / "foreign.csv").write_bytes(b"never read by us")
    body(await jp_fetch("api", "contents", "", params={"content": "1"}))  # lists (knows) foreign.csv
    await cm.flush_observations()
    emu.call(emu.faults.outage)
    try:
        cm.invalidate(cm.path_map.to_cs3("data.csv"), cm.path_map.to_cs3(""))  # caches expired
        response = await jp_fetch("files", "data.csv", raise_error=False)
        assert response.code == 200 and response.body == b"a,b\n1,2\n"
        ranged = await jp_fetch("files", "data.csv", headers={"Range": "bytes=4-"}, raise_error=False)
        assert ranged.code == 206 and ranged.body == b"1,2\n"
        assert await status_of(jp_fetch, "files", "foreign.csv") == 503
        assert await status_of(jp_fetch, "files", "never-seen.csv") == 503
    finally:
        emu.call(emu.faults.restart)


def _text(text: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": text}
