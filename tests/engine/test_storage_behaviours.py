"""The engine against the real servers' behaviours (docs/storage-behaviours.md), in process against
the emulator in both profiles, each behaviour on by default where the real server has it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cs3sync.journal import State

pytestmark = pytest.mark.anyio


async def test_save_into_a_removed_folder_recreates_it(make_engine: Any, emulator: Any, home: str) -> None:
    """Row 1: EOS refuses the PUT with 409 (it used to read as a lock and be retried for ever), oCIS
    the initiate with FAILED_PRECONDITION. Both are a missing folder: recreate it and land the save."""
    emulator.storage.external_mkdir(f"{home}/project")
    async with make_engine() as engine:
        first = await engine.submit_save(f"{home}/project/a.ipynb", b"v1")
        with anyio.fail_after(30):
            assert await engine.wait(first, 30)
        emulator.storage.external_delete(f"{home}/project")
        second = await engine.submit_save(f"{home}/project/b.ipynb", b"v2")
        with anyio.fail_after(30):
            assert await engine.wait(second, 30)
        entry = await engine.journal.entry(second)
    assert entry.state == State.DONE and entry.attempts == 0
    assert emulator.storage.read(f"{home}/project/b.ipynb") == b"v2"


async def test_folder_rename_onto_a_folder_created_meanwhile_is_not_nested(
    make_engine: Any, client: Any, emulator: Any, home: str
) -> None:
    """Row 5: EOS moves a folder *into* an existing destination folder. Someone creates the destination
    after our last look; the fast-path Move (fresh base, no Stat) must not leave our folder nested in
    theirs: it is moved back and the rename reported as a conflict (oCIS refuses the Move outright)."""
    await client.mkdir(f"{home}/src")
    await client.upload(f"{home}/src/n.txt", b"n")
    info = await client.stat(f"{home}/src")
    emulator.storage.external_mkdir(f"{home}/dst")  # after our look
    async with make_engine() as engine:
        eid = await engine.submit_rename(
            f"{home}/src",
            f"{home}/dst",
            str(info.file_id),
            kind="directory",
            base_observed_at=engine.clock.now(),
        )
        with anyio.fail_after(30):
            await engine.wait_idle(30)
        entry = await engine.journal.entry(eid)
    assert entry.state == State.CONFLICT, entry
    assert emulator.storage.read(f"{home}/src/n.txt") == b"n"
    assert not emulator.storage.exists(f"{home}/dst/src")
