"""Coalescing rules (cs3sync/journal/coalesce.py), applied inside the enqueue transaction."""

from __future__ import annotations

import pytest

from cs3sync.journal import Journal, Op, Resolution, State

from .helpers import drain_ids, save

pytestmark = pytest.mark.anyio

P = "/home/u/a.ipynb"


async def test_later_save_supersedes_queued_save_keeping_older_base(journal: Journal) -> None:
    first = await save(journal, P, b"v1", base_etag="e1", base_fileid="f1")
    second = await save(journal, P, b"v2", base_etag="e-other", base_fileid="f-other")

    old = await journal.entry(first.id)
    assert old.state == State.SUPERSEDED
    assert old.superseded_by == second.id
    assert old.resolution == Resolution.SUPERSEDED
    assert old.blob is None, "a save that never ran releases its blob at once"
    assert (second.base_etag, second.base_fileid) == ("e1", "f1")
    assert second.state == State.QUEUED


async def test_many_offline_saves_leave_one_upload(journal: Journal) -> None:
    # 200 rather than 1,000 to keep the suite fast: every save pays its real fsyncs.
    for i in range(200):
        await save(journal, P, f"version {i}".encode(), base_etag="e0")
    active = await journal.active_entries()
    assert len(active) == 1
    assert active[0].base_etag == "e0"
    assert (await journal.counts())[State.SUPERSEDED] == 199
    blobs = await journal.read("SELECT count(*) FROM blobs WHERE refcount > 0")
    assert blobs[0][0] == 1


async def test_running_save_is_not_superseded(journal: Journal) -> None:
    first = await save(journal, P, b"v1", base_etag="e1")
    claimed = await journal.claim("w")
    assert claimed is not None and claimed.id == first.id
    second = await save(journal, P, b"v2", base_etag="e2")
    assert (await journal.entry(first.id)).state == State.RUNNING
    assert second.state == State.QUEUED and second.base_etag == "e2"
    # ...and the second waits for the first.
    assert await journal.claim("w2") is None


async def test_blocked_and_retrying_saves_are_superseded_with_prior_blobs(journal: Journal, clock) -> None:
    first = await save(journal, P, b"v1", base_etag="e1")
    claimed = await journal.claim("w")
    assert claimed is not None
    await journal.mark_retry(first.id, error="down", next_attempt_at=clock() + 60)
    second = await save(journal, P, b"v2", base_etag="e9")
    assert (await journal.entry(first.id)).state == State.SUPERSEDED
    # The first had been attempted: its content may be on the storage, so the successor knows it.
    assert second.prior_blobs == (first.sha256,)
    assert second.base_etag == "e1"
    assert (await journal.entry(first.id)).blob == first.sha256, "kept: it may be on the storage"

    await journal.block_runnable("offline")
    third = await save(journal, P, b"v3")
    assert (await journal.entry(second.id)).state == State.SUPERSEDED
    assert third.prior_blobs == (first.sha256,)
    assert third.base_etag == "e1"


async def test_save_after_other_command_on_path_is_not_folded(journal: Journal) -> None:
    first = await save(journal, P, b"v1")
    rename = await journal.enqueue(Op.RENAME, "/home/u/b.ipynb", src_path=P)
    second = await save(journal, P, b"v2")
    assert (await journal.entry(first.id)).state == State.QUEUED
    assert second.state == State.QUEUED
    assert await drain_ids(journal) == [first.id, rename.id, second.id]


async def test_save_of_other_path_is_not_folded(journal: Journal) -> None:
    a = await save(journal, "/home/u/a", b"1")
    b = await save(journal, "/home/u/b", b"2")
    assert (await journal.entry(a.id)).state == State.QUEUED
    assert b.state == State.QUEUED


async def test_create_then_delete_annihilate(journal: Journal) -> None:
    created = await save(journal, P, b"new file")  # no base: the file does not exist remotely
    delete = await journal.enqueue(Op.DELETE, P)
    assert delete.state == State.CANCELLED
    assert delete.resolution == Resolution.ANNIHILATED
    assert (await journal.entry(created.id)).state == State.CANCELLED
    assert await journal.active_entries() == []


async def test_mkdir_children_then_delete_annihilate(journal: Journal) -> None:
    mkdir = await journal.enqueue(Op.MKDIR, "/home/u/d", kind="directory")
    child = await save(journal, "/home/u/d/x.txt", b"x")
    delete = await journal.enqueue(Op.DELETE, "/home/u/d", kind="directory")
    assert delete.state == State.CANCELLED
    assert {(await journal.entry(i)).state for i in (mkdir.id, child.id)} == {State.CANCELLED}


async def test_create_then_delete_after_claim_is_not_annihilated(journal: Journal) -> None:
    created = await save(journal, P, b"new file")
    assert await journal.claim("w") is not None  # it may have reached the storage
    delete = await journal.enqueue(Op.DELETE, P)
    assert delete.state == State.QUEUED
    assert (await journal.entry(created.id)).state == State.RUNNING


async def test_delete_after_saves_keeps_remote_base(journal: Journal) -> None:
    s1 = await save(journal, P, b"v1", base_etag="remote-e1", base_fileid="fid")
    s2 = await save(journal, P, b"v2", base_etag="ours-not-yet-real")
    delete = await journal.enqueue(Op.DELETE, P, base_etag="ours-not-yet-real")
    assert delete.state == State.QUEUED
    assert (delete.base_etag, delete.base_fileid) == ("remote-e1", "fid")
    assert {(await journal.entry(i)).state for i in (s1.id, s2.id)} == {State.SUPERSEDED}
    assert [e.id for e in await journal.active_entries()] == [delete.id]


async def test_delete_of_existing_dir_with_pending_child_create_is_ordered(journal: Journal) -> None:
    child = await save(journal, "/home/u/d/x.txt", b"x")  # /home/u/d exists remotely
    delete = await journal.enqueue(Op.DELETE, "/home/u/d", kind="directory", base_etag="d1")
    assert delete.state == State.QUEUED
    assert await drain_ids(journal) == [child.id, delete.id]


async def test_enqueue_validates(journal: Journal) -> None:
    with pytest.raises(ValueError):
        await journal.enqueue(Op.SAVE, P)  # no blob
    with pytest.raises(ValueError):
        await journal.enqueue(Op.RENAME, P)  # no source
    with pytest.raises(ValueError):
        await journal.enqueue("chmod", P)
    with pytest.raises(ValueError):
        await journal.enqueue(Op.MKDIR, "relative/path")


async def test_paths_are_normalised(journal: Journal) -> None:
    e = await journal.enqueue(Op.MKDIR, "/home//u/./d/", kind="directory")
    assert e.path == "/home/u/d"
