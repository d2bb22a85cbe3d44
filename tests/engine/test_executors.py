"""Each executor against the emulator (both profiles): the effect, the remote-state bookkeeping and the
"already done?" check that makes a second run a no-op."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cs3sync.engine import ConflictError, FailedError, SyncEngine
from cs3sync.journal import State

pytestmark = pytest.mark.anyio


async def read(client: Any, path: str) -> bytes:
    return await client.read_bytes(path)


async def test_save_mkdir_rename_delete(make_engine: Any, client: Any, home: str) -> None:
    async with make_engine() as engine:
        engine: SyncEngine
        with anyio.fail_after(20):
            d = await engine.submit_mkdir(f"{home}/dir")
            s = await engine.submit_save(f"{home}/dir/a.txt", b"hello")
            assert await engine.wait(d, 10)
            assert await engine.wait(s, 10)
        assert await read(client, f"{home}/dir/a.txt") == b"hello"
        info = await client.stat(f"{home}/dir/a.txt")
        entry = await engine.journal.entry(s)
        assert entry.state == State.DONE and entry.result_etag == info.etag
        rs = await engine.journal.remote_state(f"{home}/dir/a.txt")
        assert rs is not None and rs.etag == info.etag

        with anyio.fail_after(20):
            r = await engine.submit_rename(f"{home}/dir/a.txt", f"{home}/dir/b.txt", str(info.file_id))
            assert await engine.wait(r, 10)
        assert await client.stat_or_none(f"{home}/dir/a.txt") is None
        assert await read(client, f"{home}/dir/b.txt") == b"hello"

        b = await client.stat(f"{home}/dir/b.txt")
        with anyio.fail_after(20):
            x = await engine.submit_delete(f"{home}/dir/b.txt", b.etag, str(b.file_id))
            assert await engine.wait(x, 10)
        assert await client.stat_or_none(f"{home}/dir/b.txt") is None


async def test_save_conflict_makes_a_copy(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    path = f"{home}/n.ipynb"
    async with make_engine() as engine:
        e1 = await engine.submit_save(path, b"v1")
        assert await engine.wait(e1, 10)
        base = (await client.stat(path)).etag
        emulator.storage.external_write(path, b"theirs")
        e2 = await engine.submit_save(path, b"mine", base_etag=base)
        with pytest.raises(ConflictError) as err:
            await engine.wait(e2, 10)
        copy = err.value.conflict_path
        assert copy and "(conflicted copy " in copy and copy.endswith(".ipynb")
        assert await read(client, path) == b"theirs"
        assert await read(client, copy) == b"mine"


async def test_mkdir_is_idempotent_and_refuses_a_file(make_engine: Any, client: Any, home: str) -> None:
    await client.mkdir(f"{home}/exists")
    await client.upload(f"{home}/afile", b"x", 1)
    async with make_engine() as engine:
        ok = await engine.submit_mkdir(f"{home}/exists")
        assert await engine.wait(ok, 10)
        bad = await engine.submit_mkdir(f"{home}/afile")
        with pytest.raises((ConflictError, FailedError)):
            await engine.wait(bad, 10)
    assert (await client.stat(f"{home}/afile")).type == "file"


async def test_delete_checks_the_base(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    await client.upload(f"{home}/d.txt", b"one", 3)
    base = await client.stat(f"{home}/d.txt")
    emulator.storage.external_write(f"{home}/d.txt", b"someone else's")
    async with make_engine() as engine:
        gone = await engine.submit_delete(f"{home}/never-existed.txt", "etag", None)
        assert await engine.wait(gone, 10)  # NOT_FOUND = done
        eid = await engine.submit_delete(f"{home}/d.txt", base.etag, str(base.file_id))
        with pytest.raises(ConflictError):
            await engine.wait(eid, 10)
        entry = await engine.journal.entry(eid)
        assert entry.state == State.CONFLICT
    assert await read(client, f"{home}/d.txt") == b"someone else's"


async def test_rename_postconditions(make_engine: Any, client: Any, home: str) -> None:
    await client.upload(f"{home}/r1.txt", b"r1", 2)
    await client.upload(f"{home}/taken.txt", b"t", 1)
    info = await client.stat(f"{home}/r1.txt")
    async with make_engine() as engine:
        taken = await engine.submit_rename(f"{home}/r1.txt", f"{home}/taken.txt", str(info.file_id))
        with pytest.raises(ConflictError):
            await engine.wait(taken, 10)
        assert await read(client, f"{home}/taken.txt") == b"t"
        # Already applied (by an earlier run that crashed before recording it): done, not a conflict.
        await client.move(f"{home}/r1.txt", f"{home}/r2.txt")
        again = await engine.submit_rename(f"{home}/r1.txt", f"{home}/r2.txt", str(info.file_id))
        assert await engine.wait(again, 10)
        assert (await engine.journal.entry(again)).state == State.DONE


async def test_copy_from_storage_and_from_a_pending_save(make_engine: Any, client: Any, home: str) -> None:
    await client.upload(f"{home}/src.txt", b"remote bytes", 12)
    async with make_engine() as engine:
        c1 = await engine.submit_copy(f"{home}/src.txt", f"{home}/copy1.txt")
        assert await engine.wait(c1, 10)
        assert await read(client, f"{home}/copy1.txt") == b"remote bytes"
    async with make_engine(workers=0, large_upload_limit=0) as engine:  # nothing runs: all stays pending
        await engine.submit_save(f"{home}/src.txt", b"pending bytes")
        await engine.submit_copy(f"{home}/src.txt", f"{home}/copy2.txt")
        overlay = engine.overlay(f"{home}/copy2.txt")
        assert overlay is not None and overlay.size == len(b"pending bytes") and overlay.blob
    async with make_engine() as engine:
        await engine.wait_idle(20)
    assert await read(client, f"{home}/copy2.txt") == b"pending bytes"
    assert await read(client, f"{home}/src.txt") == b"pending bytes"


async def test_checkpoint_is_written_beside(make_engine: Any, client: Any, home: str) -> None:
    await client.mkdir(f"{home}/.ipynb_checkpoints")
    async with make_engine() as engine:
        eid = await engine.submit_checkpoint(
            f"{home}/nb.ipynb", f"{home}/.ipynb_checkpoints/nb-c1.ipynb", b"{}", checkpoint_id="c1"
        )
        assert await engine.wait(eid, 10)
        rows = await engine.journal.checkpoints(f"{home}/nb.ipynb")
        assert [r.checkpoint_id for r in rows] == ["c1"]
    assert await read(client, f"{home}/.ipynb_checkpoints/nb-c1.ipynb") == b"{}"


async def test_consecutive_saves_with_a_stale_base_are_not_a_conflict(
    make_engine: Any, client: Any, home: str
) -> None:
    """The editor keeps the base it loaded while our own earlier save of the file is applied: our own
    versions are not someone else's edits."""
    await client.upload(f"{home}/s.txt", b"v0", 2)
    base = (await client.stat(f"{home}/s.txt")).etag
    async with make_engine() as engine:
        e1 = await engine.submit_save(f"{home}/s.txt", b"v1", base_etag=base)
        assert await engine.wait(e1, 10)
        e2 = await engine.submit_save(f"{home}/s.txt", b"v2", base_etag=base)
        assert await engine.wait(e2, 10)
    assert await read(client, f"{home}/s.txt") == b"v2"


async def test_a_folder_in_the_way_fails_the_save_and_keeps_the_bytes(
    make_engine: Any, client: Any, home: str
) -> None:
    await client.mkdir(f"{home}/folder")
    async with make_engine() as engine:
        eid = await engine.submit_save(f"{home}/folder", b"bytes")
        with pytest.raises(FailedError):
            await engine.wait(eid, 10)
        entry = await engine.journal.entry(eid)
        assert entry.state == State.FAILED and entry.blob
        assert engine.blob_path(entry.blob).read_bytes() == b"bytes"


async def test_overlay_shows_pending_commands(make_engine: Any, home: str) -> None:
    async with make_engine(workers=0, large_upload_limit=0) as engine:
        await engine.submit_mkdir(f"{home}/new")
        await engine.submit_save(f"{home}/new/a.ipynb", b"12345")
        await engine.submit_delete(f"{home}/old.txt", "e", None)
        await engine.submit_rename(f"{home}/x.txt", f"{home}/y.txt", None)
        assert engine.overlay(f"{home}/new").kind == "directory"
        saved = engine.overlay(f"{home}/new/a.ipynb")
        assert saved.size == 5 and not saved.deleted and saved.mtime and saved.blob
        assert engine.overlay(f"{home}/old.txt").deleted
        moved = engine.overlay(f"{home}/x.txt")
        assert moved.deleted and moved.renamed_to == f"{home}/y.txt"
        assert engine.overlay(f"{home}/y.txt").renamed_from == f"{home}/x.txt"
        assert engine.overlay(f"{home}/untouched") is None
        children = engine.overlay_children(home)
        assert set(children) == {"new", "old.txt", "x.txt", "y.txt"}
        assert set(engine.overlay_children(f"{home}/new")) == {"a.ipynb"}
        await engine.submit_rename(f"{home}/new", f"{home}/renamed", None, kind="directory")
        assert engine.overlay(f"{home}/renamed/a.ipynb").size == 5
        assert engine.overlay(f"{home}/new/a.ipynb").deleted


async def test_fresh_base_skips_the_stats(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    """A rename whose caller Stat'ed the source a moment ago costs exactly one Move."""
    await client.upload(f"{home}/f1.txt", b"f", 1)
    info = await client.stat(f"{home}/f1.txt")
    async with make_engine() as engine:
        emulator.calls.clear()
        eid = await engine.submit_rename(
            f"{home}/f1.txt", f"{home}/f2.txt", str(info.file_id), base_observed_at=engine.clock.now()
        )
        assert await engine.wait(eid, 10)
        assert [c.method.rsplit("/", 1)[-1] for c in emulator.calls] == ["Move"]
    assert await read(client, f"{home}/f2.txt") == b"f"


async def test_overlay_follows_every_change_without_reloading(make_engine: Any, home: str) -> None:
    """The engine applies the entries its writes changed to its cached overlay (no full reload per
    change); at every step it must answer exactly what folding all active entries answers: while saves
    queue up, supersede each other, run and land, around a delete and a rename (which make it refold)."""
    from cs3sync import overlay

    paths = [f"{home}/q/f{i}.txt" for i in range(6)] + [f"{home}/q", f"{home}/q/gone.txt", f"{home}/r"]

    async def same_as_fold(engine: SyncEngine) -> None:
        view = overlay.fold(await engine.journal.active_entries())
        for path in paths:
            assert engine.overlay(path) == overlay.lookup(view, path), path
        assert engine.overlay_children(f"{home}/q") == overlay.children(view, f"{home}/q")
        assert [e.id for e in engine.active_entries()] == [
            e.id for e in await engine.journal.active_entries()
        ]

    async with make_engine(workers=0, large_upload_limit=0) as engine:  # nothing runs: all stays pending
        await engine.submit_mkdir(f"{home}/q")
        for i in range(6):
            await engine.submit_save(f"{home}/q/f{i}.txt", f"v1 {i}".encode())
            await same_as_fold(engine)
        superseding = await engine.submit_save(f"{home}/q/f0.txt", b"v2")  # supersedes v1
        await same_as_fold(engine)
        assert engine.overlay(f"{home}/q/f0.txt").entry_id == superseding
    async with make_engine() as engine:  # reopened: runs and lands them
        assert engine.overlay(f"{home}/q/f0.txt") is not None
        with anyio.fail_after(30):
            assert await engine.wait_idle(20)
        await same_as_fold(engine)
        assert all(engine.overlay(p) is None for p in paths)
        await engine.submit_save(f"{home}/q/gone.txt", b"x")
        delete = await engine.submit_delete(f"{home}/q/gone.txt")
        await same_as_fold(engine)
        rename = await engine.submit_rename(f"{home}/q/f1.txt", f"{home}/r", None)
        await engine.submit_save(f"{home}/q/f2.txt", b"v3")
        await same_as_fold(engine)
        with anyio.fail_after(30):
            await engine.wait(delete, 20)
            await engine.wait(rename, 20)
            assert await engine.wait_idle(20)
        await same_as_fold(engine)
        await engine.submit_save(f"{home}/q/f3.txt", b"after the refold")
        await same_as_fold(engine)
        assert engine.overlay(f"{home}/q/f3.txt").size == len(b"after the refold")
        assert engine.overlay(f"{home}/r") is None and engine.overlay(f"{home}/q/f1.txt") is None


async def test_a_create_whose_name_someone_else_took_meanwhile_is_a_conflict_copy(
    make_engine: Any, client: Any, home: str, emulator: Any
) -> None:
    """The caller saw no file (``create``); by the time the save is applied someone else made one:
    theirs stays, ours goes beside it. Without ``create`` (nothing known either way) it is written."""
    path = f"{home}/new.txt"
    async with make_engine() as engine:
        await engine.journal.set_control(paused=True)  # applied after the foreign write
        engine.set_paused(True)
        ours = await engine.submit_save(path, b"ours", create=True)
        emulator.storage.external_write(path, b"someone else's")
        await engine.journal.set_control(paused=False)
        engine.set_paused(False)
        engine.wake()
        with pytest.raises(ConflictError) as err:
            await engine.wait(ours, 10)
        assert await read(client, path) == b"someone else's"
        copy = err.value.conflict_path
        assert copy and "(conflicted copy " in copy and await read(client, copy) == b"ours"
        assert "was created on the storage" in (await engine.journal.entry(ours)).last_error

        # Our own create that landed is ours: the next create-like save of the path writes over it.
        mine = await engine.submit_save(f"{home}/mine.txt", b"v1", create=True)
        assert await engine.wait(mine, 10)
        again = await engine.submit_save(f"{home}/mine.txt", b"v2", create=True)
        assert await engine.wait(again, 10)
        assert await read(client, f"{home}/mine.txt") == b"v2"
