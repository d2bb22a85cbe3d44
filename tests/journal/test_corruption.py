"""A broken database is quarantined (renamed, never deleted) and pending saves come back from the
manifest."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import pytest

from cs3sync.journal import Journal, JournalUnreadable, Op, State

from .helpers import save

pytestmark = pytest.mark.anyio


def quarantined_dbs(journal_dir: Path) -> list[Path]:
    return [p for p in journal_dir.glob("journal.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]


def corrupt(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:100] = b"\x00garbage" * 12 + b"\x00" * 4  # the header: no longer a SQLite file
    db.write_bytes(bytes(data))


async def test_quarantine_and_reimport(journal_dir: Path, clock, local_mounts: Path) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    done = await save(journal, "/h/done", b"applied already")
    assert (await journal.claim("w")).id == done.id
    await journal.mark_done(done.id)
    await save(journal, "/h/a", b"a v1", base_etag="ea")
    pending_a = await save(journal, "/h/a", b"a v2", base_etag="ignored")  # supersedes v1
    pending_b = await save(journal, "/h/b", b"b", base_etag="eb", base_fileid="fb")
    await save(journal, "/h/gone", b"deleted later", base_etag="eg")
    await journal.enqueue(Op.DELETE, "/h/gone", base_etag="eg")
    await save(journal, "/h/moved/x", b"renamed later")
    await journal.enqueue(Op.RENAME, "/h/elsewhere", src_path="/h/moved")
    await journal.close()

    await anyio.to_thread.run_sync(corrupt, journal_dir / "journal.db")
    with pytest.raises(JournalUnreadable):
        await Journal.open(journal_dir, owner=False)

    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        assert journal.quarantined is not None
        aside, reason, ids = journal.quarantined
        assert aside.exists() and aside.name.startswith("journal.db.corrupt-")
        assert reason
        entries = await journal.active_entries()
        assert [(e.path, e.base_etag, e.base_fileid) for e in entries] == [
            ("/h/a", "ea", None),
            ("/h/b", "eb", "fb"),
        ]
        assert [e.id for e in entries] == ids
        assert all(e.needs_check and e.extra == {"reimported": True} for e in entries)
        assert journal.blob_path(entries[0].blob).read_bytes() == b"a v2"
        assert entries[0].sha256 == pending_a.sha256 and entries[1].sha256 == pending_b.sha256
        events = [ev.kind for ev in await journal.events()]
        assert "quarantined" in events
    finally:
        await journal.close()

    # A second quarantine keeps the first one too: nothing is ever deleted.
    await anyio.to_thread.run_sync(corrupt, journal_dir / "journal.db")
    clock.advance(5)
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        assert journal.quarantined is not None
        assert len(quarantined_dbs(journal_dir)) == 2
        assert [e.path for e in await journal.active_entries()] == ["/h/a", "/h/b"]
        assert (await journal.counts())[State.QUEUED] == 2
    finally:
        await journal.close()


async def test_truncated_database_is_quarantined(journal_dir: Path, local_mounts: Path) -> None:
    journal = await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    await save(journal, "/h/a", b"1")
    await journal.close()
    db = journal_dir / "journal.db"
    await anyio.to_thread.run_sync(lambda: db.write_bytes(db.read_bytes()[:5000]))
    journal = await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    try:
        assert journal.quarantined is not None
        assert [e.path for e in await journal.active_entries()] == ["/h/a"]
    finally:
        await journal.close()
