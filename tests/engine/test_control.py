"""The engine's outward behaviour: the journal's paused flag (set by the CLI from another process),
upload progress, the change signal, and `python -m cs3sync drain` exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio
import pytest

from cs3sync import drain as drain_cmd
from cs3sync.emulator import Throttle
from cs3sync.journal import Journal, Op

from .helpers import until

pytestmark = pytest.mark.anyio


async def test_pause_from_another_process_stops_claims(
    make_engine: Any, journal_dir: Path, home: str, client: Any
) -> None:
    async with (
        make_engine(control_poll_interval=0.05) as engine,
        await Journal.open(journal_dir, owner=False) as cli,  # what `cs3sync pause` does
    ):
        await cli.set_control(paused=True)
        await until(engine, lambda: engine.paused)
        eid = await engine.submit_save(f"{home}/p.txt", b"paused")
        assert await engine.wait(eid, 0) is False
        assert (await engine.journal.entry(eid)).claims == 0
        await cli.set_control(paused=False)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    assert await client.read_bytes(f"{home}/p.txt") == b"paused"


async def test_waiting_for_a_pending_entry_reads_no_journal(make_engine: Any, home: str, monkeypatch) -> None:
    """A save's reply asks whether the entry it has just journaled was applied (write_through_timeout
    0): the cached active entries answer, without a round trip to the journal."""
    async with make_engine() as engine:
        engine.set_paused(True)  # the entry stays pending
        eid = await engine.submit_save(f"{home}/w.txt", b"w")
        reads: list[int] = []
        real_outcome = engine.journal.outcome

        async def outcome(entry_id: int) -> Any:
            reads.append(entry_id)
            return await real_outcome(entry_id)

        monkeypatch.setattr(engine.journal, "outcome", outcome)
        assert await engine.wait(eid, 0) is False
        assert reads == []
        engine.set_paused(False)
        engine.wake()
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert reads, "a settled entry is read from the journal (its outcome)"


async def test_workers_hold_back_while_a_request_is_saving(make_engine: Any, home: str, client: Any) -> None:
    """Requests first (engine/priority.py): no claim while a request is saving, up to the limit (here
    30 s); once it is done the entry lands. A request that waits for its entry gives up its priority."""
    async with make_engine(request_priority_limit=30.0) as engine:
        with engine.priority.request():
            eid = await engine.submit_save(f"{home}/held.txt", b"held")
            assert not await engine.wait(eid, 1.0)
            assert (await engine.journal.entry(eid)).claims == 0
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)

        with engine.priority.request():
            eid = await engine.submit_save(f"{home}/waited.txt", b"waited")
            with anyio.fail_after(20), engine.priority.waiting():
                assert await engine.wait(eid, 20)
        assert engine.priority.requests == 0
    assert await client.read_bytes(f"{home}/held.txt") == b"held"


async def test_requests_do_not_starve_the_workers(make_engine: Any, home: str) -> None:
    """A worker's step waits for the requests in flight at most `request_priority_limit` each time."""
    async with make_engine(request_priority_limit=0.05) as engine:
        with engine.priority.request():  # a request that never ends
            eid = await engine.submit_save(f"{home}/starved.txt", b"x")
            with anyio.fail_after(20):
                assert await engine.wait(eid, 20)


async def test_progress_and_change_signal(make_engine: Any, emulator: Any, home: str) -> None:
    size = 3 * 1024 * 1024
    emulator.faults.http("PUT", Throttle(4 * 1024 * 1024))
    emulator.faults.http("PATCH", Throttle(4 * 1024 * 1024), times=3)
    async with make_engine() as engine:
        persisted: list[int] = []  # what `status --watch` in another process reads
        real_update = engine.journal.update_upload

        async def update_upload(entry_id: int, **kw: Any) -> None:
            if entry_id == eid and kw.get("sent"):
                persisted.append(kw["sent"])
            await real_update(entry_id, **kw)

        engine.journal.update_upload = update_upload
        before = engine.changed.generation
        eid = await engine.submit_save(f"{home}/big.bin", b"x" * size)
        assert engine.changed.generation > before
        await until(engine, lambda: eid in engine.progress() and 0 < engine.progress()[eid].sent < size)
        p = engine.progress()[eid]
        assert p.total == size and p.path.endswith("big.bin")

        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert eid not in engine.progress()
        assert persisted and 0 < persisted[0] <= size


def drain_args(emulator: Any, journal_dir: Path, secret: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    drain_cmd.add_arguments(parser)
    return parser.parse_args(
        ["--journal-dir", str(journal_dir), "--host", emulator.grpc_address, "--user", "einstein",
         "--token-path", str(secret), "--insecure", "--quiet", "--timeout", "30"]
    )  # fmt: skip


async def test_drain_exit_codes(
    emulator: Any, journal_dir: Path, secret: Path, client: Any, home: str
) -> None:
    args = drain_args(emulator, journal_dir, secret)
    async with await Journal.open(journal_dir, owner=True) as journal:
        await journal.enqueue(Op.SAVE, f"{home}/d1.txt", blob=await journal.store_blob(b"one"))
    assert await drain_cmd.drain(args) == 0
    assert await client.read_bytes(f"{home}/d1.txt") == b"one"

    base = (await client.stat(f"{home}/d1.txt")).etag
    emulator.storage.external_write(f"{home}/d1.txt", b"theirs")
    async with await Journal.open(journal_dir, owner=True) as journal:
        blob = await journal.store_blob(b"mine")
        await journal.enqueue(Op.SAVE, f"{home}/d1.txt", blob=blob, base_etag=base)
    assert await drain_cmd.drain(args) == 2  # a conflict is present

    async with await Journal.open(journal_dir, owner=True):
        assert await drain_cmd.drain(args) == 3  # another owner holds the journal


async def test_a_notebook_save_does_not_wait_behind_large_uploads(
    make_engine: Any, emulator: Any, home: str
) -> None:
    big = 2 * 1024 * 1024
    slow = Throttle(1024 * 1024)  # about 2 s per big file
    emulator.faults.http("PUT", slow, times=2)
    emulator.faults.http("PATCH", slow, times=4)
    async with make_engine(workers=1, large_upload_limit=2, large_upload_threshold=1024 * 1024) as engine:
        bigs = [await engine.submit_save(f"{home}/big{i}.bin", b"b" * big) for i in range(2)]
        await until(engine, lambda: all(i in engine.progress() for i in bigs))
        small = await engine.submit_save(f"{home}/nb.ipynb", b"{}")
        with anyio.fail_after(20):
            assert await engine.wait(small, 20)
        assert all(i in engine.progress() for i in bigs)  # still uploading
        with anyio.fail_after(30):
            for i in bigs:
                assert await engine.wait(i, 30)
