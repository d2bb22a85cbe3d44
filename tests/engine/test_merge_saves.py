"""A pending save that finds a foreign change merges with it (cs3sync/rebase.py), against the emulator in
both profiles: notebooks by cell, text by line, binary never; the merge is uploaded on the storage's
version, the open editor's view (the overlay) shows it, and a collision keeps today's conflict copy."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from notebooks import analysis, data, edited, load, set_source, sources

from cs3sync.engine import ConflictError, ManualClock, SyncEngine
from cs3sync.journal import State

from .helpers import reconnected, until

pytestmark = pytest.mark.anyio


async def saved(engine: SyncEngine, path: str, content: bytes) -> str:
    """Save through the engine and return the etag it left (the base of the next save)."""
    eid = await engine.submit_save(path, content)
    assert await engine.wait(eid, 20)
    etag = (await engine.journal.entry(eid)).result_etag
    assert etag
    return etag


async def listing(client: Any, home: str) -> list[str]:
    return sorted(i.name for i in await client.list(home))


def marie_edits(nb: Any) -> Any:
    return edited(nb, set_source(0, "# Half-lives\nMeasurements of the radium samples (corrected)."))


def einstein_adds_cells(nb: Any) -> Any:
    cells = [new_markdown_cell("## Conclusion"), new_code_cell("lam * 2"), new_code_cell("print(lam)")]
    return edited(nb, lambda n: n.cells.extend(cells))


async def test_notebook_edits_in_different_cells_merge_into_one_file(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    path = f"{home}/decay.ipynb"
    base = analysis()
    async with make_engine() as engine:
        base_etag = await saved(engine, path, data(base))
        emulator.storage.external_write(path, data(marie_edits(base)))
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)), base_etag=base_etag)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        entry = await engine.journal.entry(eid)
        known = await engine.journal.remote_state(path)
    merged = load(await client.read_bytes(path))
    assert merged.cells[0].source.endswith("(corrected).")  # marie's edit
    assert sources(merged)[-3:] == ["## Conclusion", "lam * 2", "print(lam)"]  # einstein's cells
    assert not [n for n in await listing(client, home) if "conflicted copy" in n]
    assert entry.state == State.DONE and entry.extra["merge"]["merged"] is True
    assert entry.extra["merge"]["message"] == "merged with a change on the storage, 1 cell"
    # The merge is what the journal knows as current (the next save is based on it), shown with a
    # last_modified newer than the save's, so the editor sees that the file changed.
    info = await client.stat(path)
    assert entry.result_etag == info.etag
    assert known is not None and known.etag == info.etag
    assert known.presented_mtime is not None and known.presented_mtime > entry.created_at


async def test_the_same_cell_on_both_sides_keeps_the_conflict_copy_and_names_the_cell(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    path = f"{home}/decay.ipynb"
    base = analysis()
    theirs = data(edited(base, set_source(3, "## Decay\nλ = ln 2 / T½.")))
    ours = data(edited(base, set_source(3, "## Decay\nThe decay constant is ln 2 over the half-life.")))
    async with make_engine() as engine:
        base_etag = await saved(engine, path, data(base))
        emulator.storage.external_write(path, theirs)
        eid = await engine.submit_save(path, ours, base_etag=base_etag)
        with pytest.raises(ConflictError) as err, anyio.fail_after(20):
            await engine.wait(eid, 20)
        entry = await engine.journal.entry(eid)
    assert await client.read_bytes(path) == theirs  # remote untouched
    assert err.value.conflict_path and await client.read_bytes(err.value.conflict_path) == ours
    assert entry.extra["merge"]["collisions"] == [4]
    assert "both changed cell 4" in (entry.last_error or "")


async def test_output_only_differences_merge(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    path = f"{home}/run.ipynb"
    base = analysis()

    def rerun(count: int, text: str) -> Any:
        def change(nb: Any) -> None:
            nb.cells[2].execution_count = count
            nb.cells[2].outputs[0].text = text

        return edited(base, change)

    async with make_engine() as engine:
        base_etag = await saved(engine, path, data(base))
        emulator.storage.external_write(path, data(rerun(9, "1599\n")))
        eid = await engine.submit_save(path, data(rerun(4, "1601\n")), base_etag=base_etag)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    cell = load(await client.read_bytes(path)).cells[2]
    assert (cell.execution_count, cell.outputs[0].text) == (4, "1601\n")  # ours is the newer run


async def test_text_edits_on_different_lines_merge(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    path = f"{home}/data.csv"
    base = b"name,half_life\nradium,1600\npolonium,138\n"
    async with make_engine() as engine:
        base_etag = await saved(engine, path, base)
        emulator.storage.external_write(path, base + b"thorium,1.4e10\n")
        eid = await engine.submit_save(path, base.replace(b"1600", b"1602"), base_etag=base_etag)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    assert await client.read_bytes(path) == b"name,half_life\nradium,1602\npolonium,138\nthorium,1.4e10\n"
    assert not [n for n in await listing(client, home) if "conflicted copy" in n]


async def test_binary_files_still_conflict(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    path = f"{home}/plot.png"
    base = b"\x89PNG\r\n\x1a\n\0\0" + bytes(range(200))
    async with make_engine() as engine:
        base_etag = await saved(engine, path, base)
        emulator.storage.external_write(path, base + b"\x01")
        eid = await engine.submit_save(path, base + b"\x02", base_etag=base_etag)
        with pytest.raises(ConflictError) as err, anyio.fail_after(20):
            await engine.wait(eid, 20)
    assert await client.read_bytes(path) == base + b"\x01"
    assert err.value.conflict_path and await client.read_bytes(err.value.conflict_path) == base + b"\x02"
    assert "binary files cannot be merged" in str(err.value)


async def test_merging_can_be_turned_off(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    path = f"{home}/data.csv"
    base = b"a\nb\nc\n"
    async with make_engine(merge_conflicts=False) as engine:
        base_etag = await saved(engine, path, base)
        emulator.storage.external_write(path, b"a\nb\nc\nd\n")
        eid = await engine.submit_save(path, b"A\nb\nc\n", base_etag=base_etag)
        with pytest.raises(ConflictError), anyio.fail_after(20):
            await engine.wait(eid, 20)
        assert "merge" not in (await engine.journal.entry(eid)).extra
    assert await client.read_bytes(path) == b"a\nb\nc\nd\n"


async def test_the_base_comes_from_the_storage_versions_when_the_journal_has_none(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    """A notebook einstein never wrote (marie's work in his home): the journal kept no copy of the version
    he opened, so the base is read from the storage's version history."""
    path = f"{home}/shared.ipynb"
    base = analysis()
    emulator.storage.external_write(path, data(base))
    base_etag = (await client.stat(path)).etag
    emulator.storage.external_write(path, data(marie_edits(base)))
    async with make_engine() as engine:
        assert await engine.journal.remote_state(path) is None
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)), base_etag=base_etag)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    merged = load(await client.read_bytes(path))
    assert merged.cells[0].source.endswith("(corrected).") and sources(merged)[-1] == "print(lam)"


async def test_an_unknown_base_keeps_the_conflict_copy(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    path = f"{home}/lost.ipynb"
    base = analysis()
    emulator.storage.external_write(path, data(base))
    base_etag = (await client.stat(path)).etag
    emulator.storage.external_write(path, data(marie_edits(base)), version=False)  # no history kept
    async with make_engine() as engine:
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)), base_etag=base_etag)
        with pytest.raises(ConflictError) as err, anyio.fail_after(20):
            await engine.wait(eid, 20)
    assert "the version it was based on is no longer known" in str(err.value)


async def test_an_offline_edit_is_merged_after_reconnect(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    """einstein goes offline and adds cells; marie fixes a typo in the first cell meanwhile; when the
    storage is back the offline save merges with her change instead of conflicting."""
    path = f"{home}/train.ipynb"
    base = analysis()
    clock = ManualClock()
    async with make_engine(clock=clock, offline_threshold=1) as engine:
        base_etag = await saved(engine, path, data(base))
        await emulator.faults.outage()
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)))  # based on what we last wrote
        assert (await engine.journal.entry(eid)).base_etag == base_etag
        await until(engine, lambda: engine.state == "offline")
        emulator.storage.external_write(path, data(marie_edits(base)))
        await emulator.faults.restart()
        await reconnected(engine.client)
        clock.advance(15.0)  # the offline probe finds the storage back
        with anyio.fail_after(30):
            assert await engine.wait(eid, 30)
        # The editor's view (read-your-writes) is the merge, too.
        assert engine.overlay(path) is None
    merged = load(await client.read_bytes(path))
    assert merged.cells[0].source.endswith("(corrected).")
    assert sources(merged)[-3:] == ["## Conclusion", "lam * 2", "print(lam)"]
    assert not [n for n in await listing(client, home) if "conflicted copy" in n]


async def test_a_merge_in_a_shared_notebook_names_its_owner(
    make_engine: Any, client: Any, emulator: Any, tmp_path: Any
) -> None:
    """einstein edits marie's notebook through her share while she edits it too: the merge names her
    (CS3 records no last modifier: the owner of a file shared with us is the best we know)."""
    from cs3sync.cs3 import CS3Client, types

    from .conftest import PASSWORDS, client_config

    secret = tmp_path / "marie.secret"
    secret.write_text(PASSWORDS["marie"])
    secret.chmod(0o600)
    base = analysis()
    async with CS3Client(client_config(emulator, secret, user="marie")) as marie:
        folder = f"{await marie.home()}/radium"
        path = f"{folder}/decay.ipynb"
        await marie.mkdir(folder)
        await marie.upload(path, data(base))
        me = await client.whoami()
        share = await marie.create_share(folder, types.Grantee("user", me.opaque_id, me.idp), types.EDITOR)
        await client.update_received_share(share.id, state="accepted")
        base_etag = (await client.stat(path)).etag
        await marie.upload(path, data(marie_edits(base)))
    async with make_engine() as engine:
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)), base_etag=base_etag)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        entry = await engine.journal.entry(eid)
    assert entry.extra["merge"]["message"] == "merged with Marie Curie's change, 1 cell"
    merged = load(await client.read_bytes(path))
    assert merged.cells[0].source.endswith("(corrected).") and sources(merged)[-1] == "print(lam)"


async def test_an_unreadable_version_history_keeps_the_conflict_copy(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    """The storage fails to list versions (an untyped INTERNAL, as EOS answers): no base, no merge, the
    conflict copy as before; nothing is parked as failed."""
    from cs3sync.emulator import Status

    path = f"{home}/refused.ipynb"
    base = analysis()
    emulator.storage.external_write(path, data(base))
    base_etag = (await client.stat(path)).etag
    emulator.storage.external_write(path, data(marie_edits(base)))
    emulator.faults.grpc("ListFileVersions", Status(15, "eos: version folder unreadable"))  # CODE_INTERNAL
    async with make_engine() as engine:
        eid = await engine.submit_save(path, data(einstein_adds_cells(base)), base_etag=base_etag)
        with pytest.raises(ConflictError) as err, anyio.fail_after(20):
            await engine.wait(eid, 20)
    assert "the version it was based on is no longer known" in str(err.value)
    assert err.value.conflict_path and load(await client.read_bytes(err.value.conflict_path)).cells[-1].source
