"""Checkpoints through the exact REST sequences JupyterLab sends (one checkpoint per file,
id ``checkpoint``): new notebook, "Rename and Save", "Save and create checkpoint", "Revert to
checkpoint"; with the storage applying our writes at once, with the writes still pending (the storage's
uploads held), and offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from contents_helpers import body, status_of

from cs3sync.emulator.faults import Hang

NB = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _nb(*sources: str) -> dict[str, Any]:
    cells = [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": s, "outputs": [], "execution_count": i}
        for i, s in enumerate(sources, start=1)
    ]
    return {"type": "notebook", "content": {**NB, "cells": cells}}


def _sources(model: dict[str, Any]) -> list[str]:
    return [c["source"] for c in model["content"]["cells"]]


def _disk_sources(path: Path) -> list[str]:
    """The cell sources of a notebook as the storage holds it."""
    return [c.source for c in nbformat.reads(path.read_text(), as_version=4).cells]


async def _post(jp_fetch: Any, *parts: str, **kw: Any) -> Any:
    return await jp_fetch(*parts, method="POST", allow_nonstandard_methods=True, **kw)


async def _lab_open(jp_fetch: Any, path: str) -> dict[str, Any]:
    """What a document context does on open: the model, then the checkpoint list (creating one if
    there is none)."""
    params = {"type": "notebook", "content": "1", "hash": "1"}
    opened = body(await jp_fetch("api", "contents", path, params=params))
    listed = body(await jp_fetch("api", "contents", path, "checkpoints"))
    if not listed:
        body(await _post(jp_fetch, "api", "contents", path, "checkpoints"))
    return opened


async def _lab_save(jp_fetch: Any, path: str, model: dict[str, Any]) -> dict[str, Any]:
    """A toolbar save: the "File Changed" check, then the PUT."""
    await jp_fetch("api", "contents", path, params={"content": "0", "hash": "1"})
    return body(await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model)))


async def _lab_revert(jp_fetch: Any, path: str) -> dict[str, Any]:
    """File -> Revert to checkpoint as JupyterLab 4 does it: list; one checkpoint is restored directly,
    several are offered newest-first as ``reversed(list)`` in "Choose a checkpoint", preselecting the
    first item, i.e. the LAST one we listed. Accepting the default restores it, then re-reads."""
    listed = body(await jp_fetch("api", "contents", path, "checkpoints"))
    assert "checkpoint" in [c["id"] for c in listed], listed
    shown = listed[::-1]  # "Choose a checkpoint" with several; the first item is preselected
    target = shown[0]
    await _post(jp_fetch, "api", "contents", path, "checkpoints", target["id"])
    return body(await jp_fetch("api", "contents", path, params={"type": "notebook", "content": "1"}))


async def _lab_session(jp_fetch: Any) -> dict[str, Any]:
    """New notebook, run a cell, "Rename and Save" to analysis.ipynb, "Save and create checkpoint",
    edit and save, "Revert to checkpoint". Returns the reverted model."""
    created = body(
        await _post(jp_fetch, "api", "contents", body=json.dumps({"type": "notebook", "ext": ".ipynb"}))
    )
    assert created["path"] == "Untitled.ipynb"
    await _lab_open(jp_fetch, "Untitled.ipynb")
    await jp_fetch("api", "contents", "Untitled.ipynb", params={"content": "0", "hash": "1"})
    renamed = body(
        await jp_fetch(
            "api", "contents", "Untitled.ipynb", method="PATCH", body=json.dumps({"path": "analysis.ipynb"})
        )
    )
    assert renamed["path"] == "analysis.ipynb"
    await _lab_save(jp_fetch, "analysis.ipynb", _nb("print(1)"))
    await _lab_save(jp_fetch, "analysis.ipynb", _nb("print(1)", "x = 2"))  # "Save and create checkpoint"
    body(await _post(jp_fetch, "api", "contents", "analysis.ipynb", "checkpoints"))
    await _lab_save(jp_fetch, "analysis.ipynb", _nb("print(1)", "x = 2", "later edit"))
    return await _lab_revert(jp_fetch, "analysis.ipynb")


async def test_lab_rename_and_save_then_checkpoint_then_revert(jp_fetch: Any, cm: Any, cs3_root: Any) -> None:
    """The browser bug: Lab reverted to the empty notebook from creation time. The storage keeps
    versions (both profiles), listed beside ours; Lab restores the last one listed."""
    reverted = await _lab_session(jp_fetch)
    assert _sources(reverted) == ["print(1)", "x = 2"]
    listed = body(await jp_fetch("api", "contents", "analysis.ipynb", "checkpoints"))
    assert len(listed) > 1 and listed[-1]["id"] == "checkpoint", listed  # versions first, oldest first
    versions = [c["last_modified"] for c in listed[:-1]]
    assert all(c["id"].startswith("v-") for c in listed[:-1]) and versions == sorted(versions)
    assert await (await cm.get_engine()).wait_idle(timeout=30)
    assert _disk_sources(cs3_root[1] / "analysis.ipynb") == ["print(1)", "x = 2"]
    assert not (cs3_root[1] / "Untitled.ipynb").exists()


async def test_lab_sequence_while_the_writes_are_still_pending(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """The storage holds every upload: the saves, the rename and the checkpoints all stay in the
    journal, and each answer must come from our own (read-your-writes) state."""
    emu = emulator_thread
    cm.cs3.write_through_timeout = 0.0  # reply at once (optimistically), as after a slow upload
    hang = emu.faults.http("PUT", Hang(), times=None)
    hang_patch = emu.faults.http("PATCH", Hang(), times=None)
    try:
        reverted = await _lab_session(jp_fetch)
        assert _sources(reverted) == ["print(1)", "x = 2"]
    finally:
        emu.faults.remove(hang)
        emu.faults.remove(hang_patch)
        emu.call(emu.faults.release_hangs)
    engine = await cm.get_engine()
    engine.wake()
    assert await engine.wait_idle(timeout=60)
    assert _disk_sources(cs3_root[1] / "analysis.ipynb") == ["print(1)", "x = 2"]
    assert not (cs3_root[1] / "Untitled.ipynb").exists()


async def test_checkpoint_is_replaced_after_a_pending_save(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """A checkpoint taken while the save before it is still pending snapshots that save's bytes."""
    emu = emulator_thread
    await jp_fetch("api", "contents", "p.ipynb", method="PUT", body=json.dumps(_nb("v1")))
    await (await cm.get_engine()).wait_idle(timeout=30)
    cm.cs3.write_through_timeout = 0.0
    hang = emu.faults.http("PUT", Hang(), times=None)
    try:
        await _lab_save(jp_fetch, "p.ipynb", _nb("v2"))
        body(await _post(jp_fetch, "api", "contents", "p.ipynb", "checkpoints"))
        await _lab_save(jp_fetch, "p.ipynb", _nb("v3"))
        assert _sources(await _lab_revert(jp_fetch, "p.ipynb")) == ["v2"]
    finally:
        emu.faults.remove(hang)
        emu.call(emu.faults.release_hangs)
    engine = await cm.get_engine()
    engine.wake()
    assert await engine.wait_idle(timeout=60)


async def test_restore_while_offline(jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any) -> None:
    emu = emulator_thread
    await jp_fetch("api", "contents", "o.ipynb", method="PUT", body=json.dumps(_nb("v1")))
    body(await _post(jp_fetch, "api", "contents", "o.ipynb", "checkpoints"))
    await jp_fetch("api", "contents", "o.ipynb", method="PUT", body=json.dumps(_nb("v2")))
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    emu.call(emu.faults.outage)
    try:
        cm.invalidate(cm.path_map.to_cs3("o.ipynb"))
        await _lab_save(jp_fetch, "o.ipynb", _nb("v3 offline"))
        body(await _post(jp_fetch, "api", "contents", "o.ipynb", "checkpoints"))  # replaces v1, offline
        await _lab_save(jp_fetch, "o.ipynb", _nb("v4 offline"))
        assert _sources(await _lab_revert(jp_fetch, "o.ipynb")) == ["v3 offline"]
    finally:
        emu.call(emu.faults.restart)
    engine.wake()
    # Blocked (offline) entries count as idle: wait for the last write of o.ipynb itself, the restore.
    entry_ids = [e.id for e in await engine.entries() if e.path == cm.path_map.to_cs3("o.ipynb")]
    assert await engine.wait(entry_ids[-1], timeout=60)
    assert _disk_sources(cs3_root[1] / "o.ipynb") == ["v3 offline"]


@pytest.mark.parametrize("settle", [True, False], ids=["applied", "pending"])
async def test_checkpoint_then_rename_then_restore_under_the_new_name(
    jp_fetch: Any, cm: Any, emulator_thread: Any, settle: bool
) -> None:
    emu = emulator_thread
    await jp_fetch("api", "contents", "old.ipynb", method="PUT", body=json.dumps(_nb("v1")))
    await jp_fetch("api", "contents", "old.ipynb", method="PUT", body=json.dumps(_nb("v2")))
    body(await _post(jp_fetch, "api", "contents", "old.ipynb", "checkpoints"))
    engine = await cm.get_engine()
    hang = None
    if settle:
        await engine.wait_idle(timeout=30)
    else:
        cm.cs3.write_through_timeout = 0.0
        hang = emu.faults.http("PUT", Hang(), times=None)
    try:
        await jp_fetch("api", "contents", "old.ipynb", method="PATCH", body=json.dumps({"path": "new.ipynb"}))
        assert body(await jp_fetch("api", "contents", "old.ipynb", "checkpoints")) == [] or (
            await status_of(jp_fetch, "api", "contents", "old.ipynb", "checkpoints") == 404
        )
        await _lab_save(jp_fetch, "new.ipynb", _nb("v3"))
        assert _sources(await _lab_revert(jp_fetch, "new.ipynb")) == ["v2"]
    finally:
        if hang is not None:
            emu.faults.remove(hang)
            emu.call(emu.faults.release_hangs)
    engine.wake()
    assert await engine.wait_idle(timeout=60)
    cm.invalidate(cm.path_map.to_cs3("new.ipynb"))
    assert _sources(body(await jp_fetch("api", "contents", "new.ipynb"))) == ["v2"]


async def test_delete_deletes_the_checkpoints(jp_fetch: Any, cm: Any) -> None:
    await jp_fetch("api", "contents", "d.ipynb", method="PUT", body=json.dumps(_nb("v1")))
    body(await _post(jp_fetch, "api", "contents", "d.ipynb", "checkpoints"))
    engine = await cm.get_engine()
    cs3_path = cm.path_map.to_cs3("d.ipynb")
    assert [r.checkpoint_id for r in await engine.journal.checkpoints(cs3_path)] == ["checkpoint"]
    await jp_fetch("api", "contents", "d.ipynb", method="DELETE")
    assert await engine.journal.checkpoints(cs3_path) == []
    # A new file of the same name starts without the old one's checkpoint (its first save makes one).
    await jp_fetch("api", "contents", "d.ipynb", method="PUT", body=json.dumps(_nb("fresh")))
    assert _sources(await _lab_revert(jp_fetch, "d.ipynb")) == ["fresh"]


async def test_first_save_makes_a_checkpoint_even_where_the_storage_lists_versions(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """A notebook written by someone else has storage versions but no checkpoint of ours: our first
    save still makes one (Lab's revert restores it), the versions do not stand in for it."""
    cs3_path = cm.path_map.to_cs3("foreign.ipynb")
    for _ in range(2):
        emulator_thread.storage.external_write(cs3_path, nbformat.writes(nbformat.v4.new_notebook()).encode())
    cm.invalidate(cs3_path)
    before = body(await jp_fetch("api", "contents", "foreign.ipynb", "checkpoints"))
    assert before and all(c["id"].startswith("v-") for c in before), before
    await _lab_save(jp_fetch, "foreign.ipynb", _nb("ours"))
    listed = body(await jp_fetch("api", "contents", "foreign.ipynb", "checkpoints"))
    assert listed[-1]["id"] == "checkpoint"
    await _lab_save(jp_fetch, "foreign.ipynb", _nb("ours, later"))
    assert _sources(await _lab_revert(jp_fetch, "foreign.ipynb")) == ["ours"]


async def test_first_save_checkpoints_from_the_saves_own_blob(
    jp_fetch: Any, cm: Any, cs3_root: Any, monkeypatch: Any
) -> None:
    """A new notebook's first save makes its checkpoint from the pending save's spool blob: the content
    is written and fsynced once, and the checkpoint on the storage holds the saved notebook."""
    from cs3sync.journal.spool import Spool

    stored: list[object] = []
    real_store, real_write = Spool.store, Spool.write

    async def store(self: Spool, source: Any, **kw: Any) -> Any:
        stored.append(source)
        return await real_store(self, source, **kw)

    async def write(self: Spool, data: bytes) -> Any:  # a save's content (made durable meanwhile)
        stored.append(data)
        return await real_write(self, data)

    monkeypatch.setattr(Spool, "store", store)
    monkeypatch.setattr(Spool, "write", write)
    cm.cs3.write_through_timeout = 0.0
    await jp_fetch("api", "contents", "fresh.ipynb", method="PUT", body=json.dumps(_nb("first")))
    assert len(stored) == 1, "the checkpoint stored the content a second time"
    checkpoints = body(await jp_fetch("api", "contents", "fresh.ipynb", "checkpoints"))
    assert [c["id"] for c in checkpoints][-1:] == ["checkpoint"]
    assert await (await cm.get_engine()).wait_idle(timeout=30)
    assert _disk_sources(cs3_root[1] / ".ipynb_checkpoints" / "fresh-checkpoint.ipynb") == ["first"]
    assert _disk_sources(cs3_root[1] / "fresh.ipynb") == ["first"]
