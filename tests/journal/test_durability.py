"""Acknowledged write order (blob durable before the row), ENOSPC, crash points, recovery."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from cs3sync.journal import Journal, Op, SpoolFull, State, spool
from cs3sync.journal import fs as journal_fs
from cs3sync.journal import unit as unit_module

from .helpers import save

pytestmark = pytest.mark.anyio


async def test_blob_is_fsynced_and_renamed_before_the_row_commits(journal: Journal, monkeypatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace, real_fsync_dir = spool.os_fsync, os.replace, journal_fs.fsync_dir
    monkeypatch.setattr(spool, "os_fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(spool.os, "replace", lambda a, b: (calls.append("rename"), real_replace(a, b))[1])
    monkeypatch.setattr(spool, "fsync_dir", lambda p: (calls.append("fsync_dir"), real_fsync_dir(p))[1])

    blob = await journal.store_blob(b"notebook bytes")
    # data fsynced, renamed into place, the rename made durable; the prefix folders exist from the
    # journal's creation on (one fsync of the spool for all 256), so a save makes none of its own
    assert calls == ["fsync", "rename", "fsync_dir"]
    assert blob.path.read_bytes() == b"notebook bytes"
    assert blob.path == journal.blob_path(blob.sha256)
    assert blob.path.parent.name == blob.sha256[:2]
    assert await journal.counts() == dict.fromkeys(State.ALL, 0), "no row before enqueue"

    calls.clear()
    entry = await journal.enqueue(Op.SAVE, "/h/a", blob=blob)
    assert calls == ["fsync"], "the manifest line is fsynced (before the commit)"
    assert (await journal.entry(entry.id)).blob == blob.sha256


async def test_a_saves_blob_is_made_durable_while_its_rows_are_written(journal: Journal, monkeypatch) -> None:
    """`write_blob` (a save's content): written and hashed, then fsynced, renamed into place and its
    folder fsynced while the enqueue writes its rows; all of that and the manifest line's fsync are done
    when the commit comes."""
    from cs3sync.journal import queue

    calls: list[str] = []
    real_fsync, real_replace, real_fsync_dir = spool.os_fsync, os.replace, journal_fs.fsync_dir

    def fsync(fd: int) -> None:
        what = "manifest" if os.readlink(f"/proc/self/fd/{fd}").endswith("manifest.log") else "blob"
        calls.append(f"fsync {what}")
        real_fsync(fd)

    monkeypatch.setattr(spool, "os_fsync", fsync)
    monkeypatch.setattr(spool.os, "replace", lambda a, b: (calls.append("rename"), real_replace(a, b))[1])
    monkeypatch.setattr(spool, "fsync_dir", lambda p: (calls.append("fsync_dir"), real_fsync_dir(p))[1])
    monkeypatch.setattr(queue, "crash_point", lambda label: calls.append(label))
    monkeypatch.setattr(spool, "crash_point", lambda label: calls.append(label))

    blob, installing = await journal.write_blob(b"saved bytes")
    entry = await journal.enqueue(Op.SAVE, "/h/saved", blob=blob, installing=installing)
    assert calls[-1] == "committed"
    blob_steps = [c for c in calls if c in ("fsync blob", "rename", "fsync_dir", "blob_written")]
    assert blob_steps == ["fsync blob", "rename", "fsync_dir", "blob_written"], calls
    assert calls.index("fsync manifest") < calls.index("manifest_written")
    assert calls.index("blob_written") < calls.index("manifest_written") < calls.index("committed")
    assert blob.path.read_bytes() == b"saved bytes" and list(journal.spool.tmp.iterdir()) == []
    assert (await journal.entry(entry.id)).blob == blob.sha256


async def test_a_written_blob_that_cannot_be_made_durable_rolls_back_its_enqueue(
    journal: Journal, monkeypatch
) -> None:
    kept = await save(journal, "/h/a", b"v1", base_etag="e1")

    def full(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(spool, "os_fsync", full)
    blob, installing = await journal.write_blob(b"v2")
    with pytest.raises(SpoolFull):
        await journal.enqueue(Op.SAVE, "/h/a", blob=blob, installing=installing)
    monkeypatch.undo()
    # Nothing of the failed enqueue happened, not even the coalescing; no file left behind.
    assert [e.id for e in await journal.active_entries()] == [kept.id]
    assert (await journal.entry(kept.id)).state == State.QUEUED
    assert list(journal.spool.tmp.iterdir()) == [] and not blob.path.exists()


async def test_a_burst_of_saves_shares_a_few_threads(journal: Journal, monkeypatch) -> None:
    """The spool's blocking calls run at most `spool.SPOOL_THREADS` at once: anyio starts a worker thread
    when none is idle, and each start holds the event loop until the new thread runs; 50 saves at once
    started ~40 (each up to 100 ms and more on a busy machine)."""
    import threading

    limit = spool.SPOOL_THREADS
    in_flight, most = 0, 0
    changed = threading.Condition()
    real_fsync = spool.os_fsync

    def fsync(fd: int) -> None:  # each blob's fsync waits (briefly) for one more than the limit
        nonlocal in_flight, most
        with changed:
            in_flight += 1
            most = max(most, in_flight)
            changed.notify_all()
            changed.wait_for(lambda: in_flight > limit, timeout=0.3)
        real_fsync(fd)
        with changed:
            in_flight -= 1

    monkeypatch.setattr(spool, "os_fsync", fsync)

    async def one(i: int) -> None:
        blob, installing = await journal.write_blob(b"content %d" % i)
        await journal.enqueue(Op.SAVE, f"/h/burst{i}", blob=blob, installing=installing)

    async with anyio.create_task_group() as tg:
        for i in range(2 * limit + 2):
            tg.start_soon(one, i)
    assert len(await journal.active_entries()) == 2 * limit + 2
    assert most == limit, f"{most} blocking spool calls at once"


async def test_only_acknowledgements_fsync_the_wal(journal: Journal, monkeypatch) -> None:
    """An enqueue (what Jupyter acknowledges) commits with synchronous=FULL; the engine's claim and
    done mark commit with NORMAL (rolled back by a power cut = a crash before them: re-run)."""
    modes: list[tuple[str, int]] = []
    writer = journal.unit._writer
    assert writer is not None
    real_execute = writer.execute

    async def execute(sql: str, *args: object) -> object:
        if sql == "COMMIT":  # the mode the commit runs under
            rows = await (await real_execute("PRAGMA synchronous")).fetchall()
            modes.append((sql, rows[0][0]))
        return await real_execute(sql, *args)

    monkeypatch.setattr(writer, "execute", execute)
    # Transactions made in one round trip to the writer's thread (`UnitOfWork.run_transaction`: the done
    # mark) commit there: their mode is read on that thread just before their COMMIT.
    real_atomically = unit_module._atomically

    def atomically(conn: sqlite3.Connection, synchronous: str | None, body: Any) -> Any:
        def observed(c: sqlite3.Connection) -> Any:
            result = body(c)
            modes.append(("COMMIT", c.execute("PRAGMA synchronous").fetchone()[0]))
            return result

        return real_atomically(conn, synchronous, observed)

    monkeypatch.setattr(unit_module, "_atomically", atomically)
    entry = await save(journal, "/h/acked", b"v1")
    assert modes == [("COMMIT", 2)], "the enqueue commits with synchronous=FULL"
    modes.clear()
    claimed = await journal.claim("w")
    assert claimed is not None and claimed.id == entry.id
    await journal.mark_done(entry.id, result_etag="e1")
    assert [mode for _, mode in modes] == [1, 1], "claim and done commit with synchronous=NORMAL"
    modes.clear()
    await save(journal, "/h/acked", b"v2")
    assert [mode for _, mode in modes] == [2], "the next acknowledgement is FULL again"


async def test_store_blob_from_path_and_async_iterable(journal: Journal, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * spool.IO_CHUNK + 17))
    from_path = await journal.store_blob(source)
    assert from_path.size == source.stat().st_size
    assert from_path.path.read_bytes() == source.read_bytes()

    async def chunks():
        data = source.read_bytes()
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    from_stream = await journal.store_blob(chunks())
    assert from_stream == from_path


async def test_enospc_on_spool_fails_cleanly(journal: Journal, monkeypatch) -> None:
    kept = await save(journal, "/h/earlier", b"earlier save")

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "os_write", full)
    with pytest.raises(SpoolFull):
        await journal.store_blob(b"x" * 1000)
    monkeypatch.undo()

    assert list(journal.spool.tmp.iterdir()) == [], "no half-written file left"
    assert [e.id for e in await journal.active_entries()] == [kept.id]
    assert journal.blob_path(kept.sha256).read_bytes() == b"earlier save"
    later = await save(journal, "/h/later", b"space again")
    assert later.state == State.QUEUED


async def test_enospc_on_fsync_fails_cleanly(journal: Journal, monkeypatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(spool, "os_fsync", full)
    with pytest.raises(SpoolFull):
        await journal.store_blob(b"x")
    assert list(journal.spool.tmp.iterdir()) == []


async def test_enospc_on_manifest_rolls_back_the_enqueue(journal: Journal, monkeypatch) -> None:
    kept = await save(journal, "/h/a", b"v1", base_etag="e1")
    blob = await journal.store_blob(b"v2")

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "os_write", full)
    with pytest.raises(SpoolFull):
        await journal.enqueue(Op.SAVE, "/h/a", blob=blob)
    monkeypatch.undo()
    # Nothing of the failed enqueue happened, not even the coalescing.
    entry = await journal.entry(kept.id)
    assert entry.state == State.QUEUED
    assert [e.id for e in await journal.active_entries()] == [kept.id]


async def test_running_entries_are_requeued_with_check_at_restart(journal_dir, clock, local_mounts) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w")
    await journal.unit._writer.close()  # die without a clean close: the row still says running
    await journal.unit._reader.close()  # (a dead process's connections are gone too)
    journal.unit._lock.release()

    reopened = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        entry = await reopened.entry(s.id)
        assert entry.state == State.QUEUED
        assert entry.needs_check and entry.lease_owner is None
        claimed = await reopened.claim("w")
        assert claimed is not None and claimed.needs_check
        done = await reopened.mark_done(claimed.id)
        assert not done.needs_check
    finally:
        await reopened.close()


CRASHER = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from cs3sync.journal import Journal, Op

    async def main():
        journal = await Journal.open(Path(sys.argv[1]), owner=True, mounts_file=sys.argv[2])
        if sys.argv[3] == "store":
            blob = await journal.store_blob(b"acknowledged?")
            await journal.enqueue(Op.SAVE, "/h/a", blob=blob)
        else:  # a save's content, made durable while the enqueue writes its rows
            blob, installing = await journal.write_blob(b"acknowledged?")
            await journal.enqueue(Op.SAVE, "/h/a", blob=blob, installing=installing)
        print("replied", flush=True)

    anyio.run(main)
    """
)


@pytest.mark.parametrize("blob_from", ["store", "write"])
@pytest.mark.parametrize(
    ("crash_at", "expect_entry"),
    [("blob_written:1", False), ("manifest_written:1", False), ("committed:1", True)],
)
async def test_kill_at_crash_points(
    journal_dir: Path, local_mounts: Path, crash_at: str, expect_entry: bool, blob_from: str
) -> None:
    env = {**os.environ, "CS3SYNC_CRASH_AT": crash_at}
    proc = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-c", CRASHER, str(journal_dir), str(local_mounts), blob_from],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert proc.returncode == 137, proc.stderr
    assert "replied" not in proc.stdout

    journal = await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    try:
        entries = await journal.entries()
        if expect_entry:
            # Committed but never replied: the command is there and will be applied (at least once).
            assert [e.state for e in entries] == [State.QUEUED]
            assert journal.blob_path(entries[0].sha256).read_bytes() == b"acknowledged?"
        else:
            # Never committed: no row; at most a garbage blob, which gc collects after the grace period.
            assert entries == []
            journal.settings.blob_grace_seconds = -1
            await journal.gc()
            assert [p for p in journal.spool.root.glob("??/*")] == []
    finally:
        await journal.close()


def test_crash_point_counts_hits(monkeypatch) -> None:
    from cs3sync.journal import crash

    monkeypatch.setenv(crash.ENV, "other:1,never:3")
    crash._hits.clear()
    crash.crash_point("never")
    crash.crash_point("never")
    assert crash._hits["never"] == 2
    crash._hits.clear()


async def test_concurrent_enqueues_share_one_commit_and_fail_alone(journal: Journal, monkeypatch) -> None:
    """Group commit: enqueues that arrive while another commits share its successor's transaction and
    manifest fsync; one that fails in a group fails alone, the others are journaled."""
    from cs3sync.journal import coalesce

    appends: list[int] = []
    real_append, real_plan = journal.spool.append_manifest, coalesce.plan

    async def append(records: list, *, durable: bool) -> None:
        appends.append(len(records))
        await real_append(records, durable=durable)

    def plan(conn, op, path, src):  # type: ignore[no-untyped-def]
        if path.startswith("/h/bad"):
            raise RuntimeError("refused")
        return real_plan(conn, op, path, src)

    monkeypatch.setattr(journal.spool, "append_manifest", append)
    monkeypatch.setattr(coalesce, "plan", plan)
    outcomes: dict[str, object] = {}

    async def one(path: str) -> None:
        blob = await journal.store_blob(path.encode())
        try:
            outcomes[path] = await journal.enqueue(Op.SAVE, path, blob=blob)
        except RuntimeError as exc:
            outcomes[path] = exc

    async def burst(paths: list[str]) -> None:
        async with anyio.create_task_group() as tg:
            for path in paths:
                tg.start_soon(one, path)

    await burst([f"/h/f{i}" for i in range(8)])
    assert len({e.id for e in outcomes.values()}) == 8  # type: ignore[attr-defined]
    assert sum(appends) == 8 and len(appends) < 8, f"no group commit: manifest appends of {appends} lines"

    outcomes.clear()
    await burst([f"/h/g{i}" for i in range(4)] + ["/h/bad"] + [f"/h/g{i}" for i in range(4, 8)])
    assert isinstance(outcomes.pop("/h/bad"), RuntimeError)
    assert sorted(e.path for e in outcomes.values()) == sorted(f"/h/g{i}" for i in range(8))  # type: ignore[attr-defined]
    assert await journal.counts() == dict.fromkeys(State.ALL, 0) | {State.QUEUED: 16}
    assert len(journal.spool.read_manifest()) == 16, "one manifest line per journaled entry"


async def test_a_transaction_in_one_round_trip_commits_or_rolls_back_whole(journal: Journal) -> None:
    """`run_transaction` (a staged chunk's rows): NORMAL when asked, all or nothing, and the next
    durable transaction is FULL again."""
    unit = journal.unit

    def insert(conn: sqlite3.Connection, fail: bool) -> int:
        conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'x')")
        if fail:
            raise RuntimeError("the body failed after a write")
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    with pytest.raises(RuntimeError):
        await unit.run_transaction(lambda c: insert(c, True), durable=False)
    assert await unit.read("SELECT 1 FROM meta WHERE key = 'probe'") == []
    assert await unit.run_transaction(lambda c: insert(c, False), durable=False) == 1  # NORMAL
    assert len(await unit.read("SELECT 1 FROM meta WHERE key = 'probe'")) == 1
    async with unit.transaction() as conn:
        rows = await (await conn.execute("PRAGMA synchronous")).fetchall()
    assert rows[0][0] == 2, "FULL again for an acknowledgement"
