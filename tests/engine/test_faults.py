"""The engine under faults, in process against the emulator (both profiles): persisted backoff with an
injected clock, the offline breaker and its probe, the auth pause, transfer-token expiry, a lost reply on a
completed PUT, tus drops at chunk boundaries, and coalescing of offline saves. Time only moves when the
test advances the `ManualClock`; waits are on engine events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from cs3sync.cs3 import errors
from cs3sync.emulator import DropAfter, Status
from cs3sync.engine import ManualClock
from cs3sync.journal import BlockedReason, State

from .helpers import commits, entry_state, initiates, patches, reconnected, until

pytestmark = pytest.mark.anyio

UNAVAILABLE = 16  # cs3.rpc Code: a transient answer that is not a connectivity failure


async def test_backoff_is_persisted_and_follows_the_clock(make_engine: Any, emulator: Any, home: str) -> None:
    clock = ManualClock()
    emulator.faults.grpc("InitiateFileUpload", Status(UNAVAILABLE, "busy"), times=2)
    async with make_engine(clock=clock, backoff_jitter=0.0) as engine:
        eid = await engine.submit_save(f"{home}/a.txt", b"data")
        await until(engine, lambda: _is(engine, eid, State.RETRYING))
        entry = await engine.journal.entry(eid)
        assert entry.attempts == 1 and entry.last_error_kind == "transient"
        assert entry.next_attempt_at == pytest.approx(clock.now() + 5.0)

        clock.advance(4.0)  # not due yet: nothing runs
        assert (await engine.journal.entry(eid)).attempts == 1
        clock.advance(1.0)
        await until(engine, lambda: _attempts(engine, eid, 2))
        entry = await engine.journal.entry(eid)
        assert entry.state == State.RETRYING
        assert entry.next_attempt_at == pytest.approx(clock.now() + 10.0)  # 5 s * 2^1

        clock.advance(10.0)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    assert commits(emulator, 4) == 1


def test_backoff_formula() -> None:
    from cs3sync.cs3 import CS3Client, CS3Config
    from cs3sync.engine import SyncEngine

    client = CS3Client(CS3Config(host="127.0.0.1:1"))  # never used: no I/O until a call
    engine = SyncEngine(client, journal_dir="unused", backoff_jitter=0.0)
    assert [engine.backoff(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    engine.backoff_jitter = 0.2
    assert all(4.0 <= engine.backoff(0) <= 6.0 for _ in range(100))
    assert all(engine.backoff(20) <= 300.0 for _ in range(100))


async def test_offline_breaker_blocks_without_burning_attempts_and_probe_reopens(
    make_engine: Any, emulator: Any, home: str
) -> None:
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")  # log in and learn home while online
        await engine.wait_idle(20)
        await emulator.faults.outage()
        eid = await engine.submit_save(f"{home}/a.txt", b"data")
        await until(engine, lambda: _attempts(engine, eid, 1))
        clock.advance(5.0)
        await until(engine, lambda: _attempts(engine, eid, 2))
        clock.advance(10.0)  # third connectivity failure in a row: the breaker opens
        await until(engine, lambda: engine.state == "offline")
        await until(engine, lambda: _is(engine, eid, State.BLOCKED))
        entry = await engine.journal.entry(eid)
        assert entry.blocked_reason == BlockedReason.OFFLINE and entry.attempts == 2

        # While offline, new work is journaled and waits; nothing is attempted.
        other = await engine.submit_save(f"{home}/b.txt", b"more")
        assert await engine.wait(other, 0) is False
        entry = await engine.journal.entry(other)  # `status` shows it as blocked(offline), not queued
        assert entry.state == State.BLOCKED and entry.blocked_reason == BlockedReason.OFFLINE

        clock.advance(15.0)  # first probe: still down, next in 30 s
        await until(engine, lambda: engine.probes == 1)
        assert engine.state == "offline"
        await emulator.faults.restart()
        await reconnected(engine.client)
        clock.advance(15.0)  # not yet due (30 s)
        assert engine.probes == 1
        clock.advance(15.0)
        await until(engine, lambda: engine.state == "online")
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
            assert await engine.wait(other, 20)
        assert (await engine.journal.entry(eid)).attempts == 2


async def test_thousand_offline_saves_make_one_upload(make_engine: Any, emulator: Any, home: str) -> None:
    clock = ManualClock()
    path = f"{home}/autosave.ipynb"
    async with make_engine(clock=clock, offline_threshold=1) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        await engine.wait_idle(20)
        await emulator.faults.outage()
        first = await engine.submit_save(f"{home}/trigger.txt", b"t")
        await until(engine, lambda: engine.state == "offline")
        ids = [await engine.submit_save(path, f"version {i}".encode()) for i in range(1000)]
        overlay = engine.overlay(path)
        assert overlay is not None and overlay.size == len(b"version 999")
        await emulator.faults.restart()
        await reconnected(engine.client)
        emulator.http_log.clear()
        clock.advance(15.0)
        with anyio.fail_after(30):
            assert await engine.wait(ids[-1], 30)
            assert await engine.wait(ids[0], 30)  # superseded: settled by the last one
            assert await engine.wait(first, 30)
    assert commits(emulator, len(b"version 999")) == 1  # the last version, once
    assert commits(emulator, 1) == 1  # trigger.txt


async def test_auth_pause_waits_for_a_new_token_file(
    make_engine: Any, emulator: Any, home: str, secret: Path
) -> None:
    async with make_engine() as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        await engine.wait_idle(20)
        await anyio.Path(secret).write_text(
            "wrong password\n"
        )  # the file changed, but to a secret that fails
        emulator.auth.expire_all()
        eid = await engine.submit_save(f"{home}/a.txt", b"data")
        await until(engine, lambda: engine.state == "auth")
        await until(engine, lambda: _is(engine, eid, State.BLOCKED))
        entry = await engine.journal.entry(eid)
        assert entry.blocked_reason == BlockedReason.AUTH and entry.attempts == 0
        later = await engine.submit_save(f"{home}/b.txt", b"b")
        assert await engine.wait(later, 0) is False  # the queue is paused

        await anyio.Path(secret).write_text("relativity\n")
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
            assert await engine.wait(later, 20)
        assert engine.state == "online"
        assert (await engine.journal.entry(eid)).attempts == 0


async def test_expired_access_token_with_unchanged_file_logs_in_again(
    make_engine: Any, emulator: Any, home: str
) -> None:
    async with make_engine() as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        await engine.wait_idle(20)
        emulator.auth.expire_all()
        eid = await engine.submit_save(f"{home}/a.txt", b"data")
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert engine.state == "online"
        assert (await engine.journal.entry(eid)).attempts == 0


async def test_transfer_token_expiry_initiates_again(make_engine: Any, emulator: Any, home: str) -> None:
    emulator.faults.http("PUT", Status(403))
    emulator.faults.http("PATCH", Status(403))
    async with make_engine() as engine:
        eid = await engine.submit_save(f"{home}/a.txt", b"data" * 100)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
    assert len(initiates(emulator)) == 2
    assert commits(emulator, 400) == 1


async def test_lost_reply_on_a_completed_put_is_done_by_checksum(
    make_engine: Any, client: Any, emulator: Any, home: str
) -> None:
    """The PUT commits but its reply never arrives: the retry finds our bytes there (size + adler32) and
    marks the entry done: no second upload, no conflict copy."""
    real_upload = client.upload
    armed = {"lose": False}

    async def upload_losing_a_reply(*args: Any, **kw: Any) -> Any:
        info = await real_upload(*args, **kw)
        if armed["lose"]:
            armed["lose"] = False
            raise errors.Transient("connection reset by peer", op="upload")
        return info

    client.upload = upload_losing_a_reply
    path = f"{home}/n.ipynb"
    clock = ManualClock()
    async with make_engine(clock=clock) as engine:
        e1 = await engine.submit_save(path, b"v1")
        assert await engine.wait(e1, 20)
        base = (await client.stat(path)).etag
        armed["lose"] = True
        e2 = await engine.submit_save(path, b"v2 " * 1000, base_etag=base)
        await until(engine, lambda: _is(engine, e2, State.RETRYING))
        clock.advance(10.0)
        with anyio.fail_after(20):
            assert await engine.wait(e2, 20)
        entry = await engine.journal.entry(e2)
    assert entry.state == State.DONE and entry.conflict_path is None
    assert commits(emulator, 2) == 1  # v1
    assert commits(emulator, 3000) == 1  # v2, once
    assert await client.read_bytes(path) == b"v2 " * 1000
    listing = [i.name for i in await client.list(home)]
    assert not [n for n in listing if "conflicted copy" in n]


@pytest.mark.parametrize("profile", ["ocis"])  # the profile whose storage offers tus (EOS has only PUT)
@pytest.mark.parametrize("where", ["chunk-1", "chunk", "chunk+1", "mid-chunk"])
async def test_tus_drop_at_chunk_boundaries_resends_nothing_twice(
    make_engine: Any, client: Any, emulator: Any, home: str, where: str
) -> None:
    assert "tus" in (emulator.config.upload_protocols or [])
    chunk = client.config.upload_chunk_size
    size = 3 * chunk + 123
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    # Drop the connection at this absolute offset of the upload.
    offset = {"chunk-1": chunk - 1, "chunk": chunk, "chunk+1": chunk + 1, "mid-chunk": chunk + chunk // 2}[
        where
    ]
    rule = emulator.faults.http(
        "PATCH", DropAfter(offset % chunk or chunk), after=offset // chunk - (offset % chunk == 0)
    )
    async with make_engine() as engine:
        eid = await engine.submit_save(f"{home}/big.bin", data)
        with anyio.fail_after(30):
            assert await engine.wait(eid, 30)
    assert rule.fired == 1
    assert await client.read_bytes(f"{home}/big.bin") == data
    received = sum(r.bytes_in for r in patches(emulator))
    resent = received - size
    assert resent == 0, f"{resent} bytes sent twice"
    assert len(initiates(emulator)) == 1


@pytest.mark.parametrize("profile", ["cernbox"])  # EOS: simple PUTs only (oCIS: see the tus drop test)
@pytest.mark.parametrize("where", ["chunk-1", "chunk", "chunk+1", "mid-chunk"])
async def test_simple_put_drop_resends_the_file_once(
    make_engine: Any, client: Any, emulator: Any, home: str, where: str
) -> None:
    """EOS: a dropped PUT is lost on the server; the whole file is sent again, once, with a new
    transfer token. The re-sent bytes are exactly what reached the server before the drop."""
    assert "tus" not in (emulator.config.upload_protocols or [])
    piece = 1024 * 1024  # the client's read/send granularity
    offset = {"chunk-1": piece - 1, "chunk": piece, "chunk+1": piece + 1, "mid-chunk": piece + piece // 2}[
        where
    ]
    data = bytes(range(256)) * (3 * piece // 256)
    put = emulator.faults.http("PUT", DropAfter(offset))
    async with make_engine() as engine:
        eid = await engine.submit_save(f"{home}/s.bin", data)
        with anyio.fail_after(30):
            assert await engine.wait(eid, 30)
    assert put.fired == 1
    assert await client.read_bytes(f"{home}/s.bin") == data
    assert commits(emulator, len(data)) == 1
    sent = sum(r.bytes_in for r in emulator.http_log if r.method == "PUT")
    assert sent - len(data) == offset  # re-sent bytes
    assert len(initiates(emulator)) == 2  # never a second PUT with the same transfer token


async def _is(engine: Any, entry_id: int, state: str) -> bool:
    return await entry_state(engine, entry_id) == state


async def _attempts(engine: Any, entry_id: int, n: int) -> bool:
    return (await engine.journal.entry(entry_id)).attempts >= n


async def test_lost_reply_on_the_wire(make_engine: Any, client: Any, emulator: Any, home: str) -> None:
    """The same as above, with the emulator committing a simple PUT and then dropping the connection."""
    from cs3sync.emulator import DropReply

    clock = ManualClock()
    data = b"committed, reply lost " * 100
    emulator.faults.http("PUT", DropReply())
    emulator.faults.http("PATCH", DropReply())
    async with make_engine(clock=clock) as engine:
        eid = await engine.submit_save(f"{home}/w.txt", data)
        with anyio.fail_after(20):
            while not await engine.wait(eid, 0):
                since = engine.changed.generation
                if await _is(engine, eid, State.RETRYING):
                    clock.advance(300.0)
                await engine.changed.wait(since)
        entry = await engine.journal.entry(eid)
    assert entry.state == State.DONE and entry.conflict_path is None
    assert commits(emulator, len(data)) <= 1  # the committed request may be logged with status 0
    assert await client.read_bytes(f"{home}/w.txt") == data
    assert not [i.name for i in await client.list(home) if "conflicted copy" in i.name]


async def test_a_request_that_reached_the_storage_reopens_the_queue_at_once(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """Issue 13 item 8: after the storage returns, the queue waited for the next timed probe (31 s
    measured). A request of the host that reached the storage is proof enough: no probe, no clock."""
    clock = ManualClock()
    async with make_engine(clock=clock, offline_threshold=1, offline_probe_interval=3600.0) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        await engine.wait_idle(20)
        await emulator.faults.outage()
        eid = await engine.submit_save(f"{home}/a.txt", b"queued while down")
        await until(engine, lambda: engine.state == "offline")
        await emulator.faults.restart()
        await reconnected(engine.client)
        probes = engine.probes
        engine.storage_answered()
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert engine.state == "online" and engine.probes == probes


async def test_a_nudge_probes_now_instead_of_at_the_next_interval(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """Reads answered from what we know while offline, and saves journaled meanwhile, nudge the probe:
    it runs at once (at most every probe_nudge_min s), not after offline_probe_interval."""
    clock = ManualClock()
    async with make_engine(
        clock=clock, offline_threshold=1, offline_probe_interval=3600.0, probe_nudge_min=1.0
    ) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        await engine.wait_idle(20)
        await emulator.faults.outage()
        eid = await engine.submit_save(f"{home}/a.txt", b"queued while down")
        await until(engine, lambda: engine.state == "offline")
        engine.nudge()  # still down: one probe, which fails
        await until(engine, lambda: engine.probes == 1)
        assert engine.state == "offline"
        await emulator.faults.restart()
        await reconnected(engine.client)
        # A save journaled while offline nudges too; within probe_nudge_min of the last probe it waits.
        other = await engine.submit_save(f"{home}/b.txt", b"also queued")
        assert engine.probes == 1
        clock.advance(1.0)  # probe_nudge_min since the last probe, far from the 3600 s interval
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
            assert await engine.wait(other, 20)
        assert engine.probes == 2


async def test_delete_b_rename_a_to_b_save_b_is_no_conflict(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """Issue 13 item 3: our own delete b, rename a -> b, save b, all pending, ended with b holding a's
    bytes and our save in a conflict copy: the save's base was the old b (the storage's b while the
    three waited), not what our rename brings there."""
    clock = ManualClock()
    a, b = f"{home}/a.txt", f"{home}/b.txt"
    async with make_engine(clock=clock) as engine:
        await engine.submit_save(a, b"content of a")
        await engine.submit_save(b, b"content of b")
        assert await engine.wait_idle(20)
        await engine.journal.set_control(paused=True)
        engine._paused = True  # the three stay pending together
        await engine.submit_delete(b)
        await engine.submit_rename(a, b)
        last = await engine.submit_save(b, b"our save of b")
        await engine.journal.set_control(paused=False)
        engine._paused = False
        engine.wake()
        with anyio.fail_after(20):
            assert await engine.wait(last, 20)
        assert await engine.client.read_bytes(b) == b"our save of b"
        assert await engine.client.stat_or_none(a) is None


async def test_rename_of_a_pending_save_onto_a_deleted_path_then_save_is_no_conflict(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """The state machine's variant: c's save is still pending when delete a, rename c -> a, save a come;
    the save was based on the old a and ended as a conflict copy."""
    clock = ManualClock()
    a, c = f"{home}/a.txt", f"{home}/c.txt"
    async with make_engine(clock=clock) as engine:
        await engine.submit_save(a, b"content of a")
        assert await engine.wait_idle(20)
        await engine.journal.set_control(paused=True)
        engine._paused = True
        await engine.submit_save(c, b"content of c")
        await engine.submit_delete(a)
        await engine.submit_rename(c, a)
        last = await engine.submit_save(a, b"our save of a")
        await engine.journal.set_control(paused=False)
        engine._paused = False
        engine.wake()
        with anyio.fail_after(20):
            assert await engine.wait(last, 20)
        assert await engine.client.read_bytes(a) == b"our save of a"
        assert await engine.client.stat_or_none(c) is None
