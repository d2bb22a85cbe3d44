"""Retention, blob garbage collection, the events ring; user actions (retry, discard, resolve)."""

from __future__ import annotations

import pytest

from cs3sync.journal import InvalidTransition, Journal, Op, RemoteState, Resolution, State

from .helpers import drain_ids, save

pytestmark = pytest.mark.anyio
DAY = 24 * 3600.0


def blob_files(journal: Journal) -> set[str]:
    return {p.name for p in journal.spool.root.glob("??/*")}


async def test_done_rows_expire_after_retention_but_parked_never(journal: Journal, clock) -> None:
    done = await save(journal, "/h/done", b"done")
    failed = await save(journal, "/h/failed", b"failed")
    conflict = await save(journal, "/h/conflict", b"conflict")
    await journal.claim("w")
    await journal.mark_done(done.id)
    await journal.claim("w")
    await journal.mark_failed(failed.id, error="no")
    await journal.claim("w")
    await journal.mark_conflict(conflict.id, conflict_path=None, error="etag")

    clock.advance(6 * DAY)
    assert (await journal.gc())["entries"] == 0
    clock.advance(2 * DAY)
    assert (await journal.gc())["entries"] == 1
    assert {e.id for e in await journal.entries()} == {failed.id, conflict.id}
    assert blob_files(journal) == {failed.sha256, conflict.sha256}, "parked entries keep the user's bytes"


async def test_row_cap(journal: Journal, clock) -> None:
    journal.settings.retention_rows = 5
    for i in range(12):
        await save(journal, f"/h/{i}", b"%d" % i)
    await drain_ids(journal)
    counters = await journal.gc(batch=3)
    assert counters["entries"] == 7
    assert [e.id for e in await journal.entries()] == list(range(8, 13))


async def test_unreferenced_blobs_are_unlinked_after_grace(journal: Journal, clock) -> None:
    a = await save(journal, "/h/a", b"v1")
    b = await save(journal, "/h/a", b"v2")  # supersedes: v1 unreferenced at once
    assert blob_files(journal) == {a.sha256, b.sha256}
    assert (await journal.gc())["blobs"] == 0, "still within the grace period"
    clock.advance(journal.settings.blob_grace_seconds + 1)
    assert (await journal.gc())["blobs"] == 1
    assert blob_files(journal) == {b.sha256}


async def test_pinned_blob_survives_gc(journal: Journal, clock) -> None:
    blob = await journal.store_blob(b"stored, not yet enqueued")
    clock.advance(journal.settings.blob_grace_seconds + 1)
    await journal.gc()
    assert blob.path.exists()
    await journal.enqueue(Op.SAVE, "/h/a", blob=blob)
    await journal.gc()
    assert blob.path.exists()


async def test_cached_blob_keeps_content_alive(journal: Journal, clock) -> None:
    entry = await save(journal, "/h/a", b"cached content")
    await journal.claim("w")
    await journal.mark_done(
        entry.id, result_etag="e2", remote=RemoteState(path="/h/a", etag="e2", size=14), cache_blob=True
    )
    clock.advance(journal.settings.blob_grace_seconds + 1)
    await journal.gc()
    state = await journal.remote_state("/h/a")
    assert state is not None and state.cached_blob == entry.sha256
    assert journal.blob_path(entry.sha256).exists()
    await journal.put_remote_state(RemoteState(path="/h/a", etag="e3-foreign", size=3))
    await journal.gc()
    assert not journal.blob_path(entry.sha256).exists(), "a new etag drops the cached copy"


async def test_events_ring_is_bounded(journal: Journal) -> None:
    journal.settings.events_max = 10
    for i in range(30):
        await journal.append_event("note", message=str(i))
    events = await journal.events(limit=100)
    assert len(events) <= 10 and events[-1].message == "29"


async def test_retry_discard_resolve(journal: Journal) -> None:
    failed = await save(journal, "/h/f", b"f")
    await journal.claim("w")
    await journal.mark_failed(failed.id, error="quota")
    retried = await journal.retry(failed.id)
    assert retried.state == State.QUEUED and retried.needs_check and retried.attempts == 0
    assert (await journal.claim("w")).id == failed.id
    conflict = await journal.mark_conflict(failed.id, conflict_path="/h/f (conflicted copy)", error="etag")
    with pytest.raises(InvalidTransition):
        await journal.retry(conflict.id)
    forced = await journal.retry(conflict.id, force=True)
    assert forced.base_etag is None
    await journal.claim("w")
    await journal.mark_conflict(failed.id, conflict_path=None, error="etag")
    resolved = await journal.resolve(failed.id)
    assert resolved.state == State.DONE and resolved.resolution == Resolution.RESOLVED

    pending = await save(journal, "/h/p", b"p")
    discarded = await journal.discard(pending.id)
    assert discarded.state == State.CANCELLED and discarded.resolution == Resolution.DISCARDED
    assert journal.blob_path(pending.sha256).exists(), "the data stays until gc"
    assert await journal.active_entries() == []


async def test_retry_refuses_to_reorder_over_newer_commands(journal: Journal) -> None:
    old = await save(journal, "/h/a", b"old")
    await journal.claim("w")
    await journal.mark_failed(old.id, error="x")
    newer = await save(journal, "/h/a", b"newer")
    await journal.claim("w")
    await journal.mark_done(newer.id)
    with pytest.raises(InvalidTransition):
        await journal.retry(old.id)
    assert (await journal.retry(old.id, force=True)).state == State.QUEUED


async def test_retry_all_failed(journal: Journal) -> None:
    for path in ("/h/a", "/h/b"):
        await save(journal, path, path.encode())
        entry = await journal.claim("w")
        await journal.mark_failed(entry.id, error="boom")
    assert await journal.retry_all_failed() == [1, 2]
    assert (await journal.counts())[State.QUEUED] == 2


async def test_cli_writes_from_a_reader(journal: Journal, journal_dir) -> None:
    entry = await save(journal, "/h/a", b"1")
    reader = await Journal.open(journal_dir, owner=False)
    try:
        await reader.discard(entry.id)
        await reader.set_control(paused=True)
    finally:
        await reader.close()
    assert (await journal.entry(entry.id)).state == State.CANCELLED
    control = await journal.control()
    assert control.paused and control.generation == 2


async def test_upload_sessions(journal: Journal) -> None:
    entry = await save(journal, "/h/big", b"x" * 100)
    await journal.claim("w")
    await journal.record_upload_session(
        entry.id, protocol="tus", url="https://dp/u/1", token="t", token_expires=99.0, total=100, chunk_size=9
    )
    await journal.update_upload(entry.id, offset=40)
    await journal.update_upload(entry.id, sent=55)
    rec = await journal.upload_session(entry.id)
    assert rec is not None and (rec.offset, rec.sent, rec.resets) == (40, 55, 0)
    assert (await journal.stats()).bytes_to_upload == 60
    reset = await journal.reset_upload(entry.id)
    assert reset is not None and reset.url == "" and reset.resets == 1 and reset.offset == 0
    again = await journal.record_upload_session(
        entry.id, protocol="simple", url="https://dp/u/2", token="t2", token_expires=None, total=100
    )
    assert again.resets == 1
    await journal.mark_done(entry.id)
    assert await journal.upload_session(entry.id) is None


async def test_remote_state_and_presented_mtime(journal: Journal) -> None:
    await journal.put_remote_state(RemoteState(path="/h/d", kind="directory", etag="d1"))
    await journal.put_remote_state(RemoteState(path="/h/d/a", etag="e1", size=3, mtime=10.0, fileid="f"))
    await journal.put_remote_state(RemoteState(path="/h/d/sub/b", etag="e2"))
    assert [s.path for s in await journal.remote_children("/h/d")] == ["/h/d/a"]
    await journal.set_presented_mtime("/h/d/a", "e1", 10.25)
    assert await journal.presented_mtime("/h/d/a", "e1") == 10.25
    await journal.put_remote_state(RemoteState(path="/h/d/a", etag="e1", size=3, mtime=10.0))
    assert await journal.presented_mtime("/h/d/a", "e1") == 10.25, "same etag: kept"
    await journal.put_remote_state(RemoteState(path="/h/d/a", etag="e9", size=4, mtime=20.0))
    assert await journal.presented_mtime("/h/d/a", "e9") is None, "someone else's change: dropped"
    await journal.move_remote_state("/h/d", "/h/e")
    assert await journal.remote_state("/h/d/a") is None
    assert (await journal.remote_state("/h/e/sub/b")).etag == "e2"
    assert [s.path for s in await journal.remote_children("/h/e")] == ["/h/e/a"]
    await journal.delete_remote_state("/h/e")
    assert await journal.remote_state("/h/e/a") is None


async def test_checkpoints(journal: Journal, clock) -> None:
    blob = await journal.store_blob(b"snapshot")
    remote = "/h/.ipynb_checkpoints/nb-checkpoint.ipynb"
    row = await journal.add_checkpoint("/h/nb.ipynb", "checkpoint", blob, remote_path=remote)
    assert row.blob == blob.sha256
    await journal.move_checkpoints("/h/nb.ipynb", "/h/renamed.ipynb")
    assert [c.checkpoint_id for c in await journal.checkpoints("/h/renamed.ipynb")] == ["checkpoint"]
    clock.advance(journal.settings.blob_grace_seconds + 1)
    await journal.gc()
    assert blob.path.exists(), "referenced by the checkpoint"
    await journal.delete_checkpoint("/h/renamed.ipynb", "checkpoint")
    await journal.gc()
    assert not blob.path.exists()


async def test_observe_remote_batches_reads_and_never_overwrites_newer_rows(journal: Journal) -> None:
    await journal.observe_remote(
        [
            RemoteState(path="/h/d", kind="directory", etag="d1", updated_at=100.0),
            RemoteState(path="/h/d/a", etag="a1", size=1, mtime=5.0, updated_at=100.0),
            RemoteState(path="/h/d/b", etag="b1", size=2, updated_at=100.0),
            RemoteState(path="/h/d/sub", kind="directory", etag="s1", updated_at=100.0),
            RemoteState(path="/h/d/sub/c", etag="c1", updated_at=100.0),
        ]
    )
    assert [r.path for r in await journal.remote_children("/h/d")] == ["/h/d/a", "/h/d/b", "/h/d/sub"]
    await journal.set_presented_mtime("/h/d/a", "a1", 7.5)
    # The engine writes a newer row (e.g. after applying a save); an older read must not undo it.
    await journal.put_remote_state(RemoteState(path="/h/d/b", etag="b2", size=3, presented_mtime=9.0))
    newer = await journal.remote_state("/h/d/b")
    assert newer is not None
    await journal.observe_remote(
        [RemoteState(path="/h/d/b", etag="b1", size=2, updated_at=newer.updated_at - 1)]
    )
    assert (await journal.remote_state("/h/d/b")).etag == "b2"  # type: ignore[union-attr]
    # Same etag again keeps the presented time; a listing drops children it no longer holds.
    await journal.observe_remote(
        [RemoteState(path="/h/d/a", etag="a1", size=1, mtime=5.0, updated_at=newer.updated_at + 10)],
        listed=[("/h/d", newer.updated_at + 10, ["a"])],
    )
    assert (await journal.presented_mtime("/h/d/a", "a1")) == 7.5
    assert [r.path for r in await journal.remote_children("/h/d")] == ["/h/d/a"]
    assert await journal.remote_state("/h/d/sub/c") is None  # went with its folder
    # A child the listing holds stays, though unchanged (not among the states): issue 13, item 4.
    await journal.observe_remote(listed=[("/h/d", newer.updated_at + 15, ["a"])])
    assert [r.path for r in await journal.remote_children("/h/d")] == ["/h/d/a"]
    await journal.observe_remote(gone=[("/h/d/a", newer.updated_at + 20)])
    assert await journal.remote_state("/h/d/a") is None


async def test_observe_remote_of_a_big_listing_is_recorded_like_a_small_one(journal: Journal) -> None:
    """A listing of more than CONVERT_INLINE_ROWS children (its statements prepared off the loop):
    every child recorded, then the children a later listing no longer holds dropped, a gone one too."""
    from cs3sync.journal.db import CONVERT_INLINE_ROWS

    names = [f"f{i:04d}" for i in range(CONVERT_INLINE_ROWS + 100)]
    states = [RemoteState(path=f"/h/big/{n}", etag=f"e{n}", size=1, updated_at=100.0) for n in names]
    await journal.observe_remote(states, listed=[("/h/big", 100.0, names)])
    assert [r.path for r in await journal.remote_children("/h/big")] == [f"/h/big/{n}" for n in names]
    kept = names[: CONVERT_INLINE_ROWS + 1]
    await journal.observe_remote(listed=[("/h/big", 200.0, kept)], gone=[(f"/h/big/{kept[0]}", 200.0)])
    assert [r.path for r in await journal.remote_children("/h/big")] == [f"/h/big/{n}" for n in kept[1:]]
