"""The engine when its own journal fails (issue 13, item 1): a full disk when the storage comes back, a
full disk when an applied command is recorded. The engine survives (parks the work, backs off on its
clock, tries again), says so in `health`, and recovers by itself once there is space; nothing is lost
or applied twice.

The full disk is injected, deterministically (the `full_disk` fixture): the journal's writer connection
answers COMMIT with SQLite's own "database or disk is full" (SQLITE_FULL).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from cs3sync.emulator import Hang
from cs3sync.engine import ManualClock
from cs3sync.journal import JournalFull, State

from .helpers import commits, reconnected, until

pytestmark = pytest.mark.anyio


async def test_disk_full_when_the_storage_returns(
    make_engine: Any, emulator: Any, home: str, full_disk: Any
) -> None:
    """The issue's sequence: offline, saves blocked; the probe succeeds, reopening the queue fails to
    commit. Before: `engine.crashed`, the saves stayed blocked until a server restart."""
    clock = ManualClock()
    async with make_engine(clock=clock, offline_threshold=1, backoff_jitter=0.0) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")  # log in and learn home while online
        assert await engine.wait_idle(20)
        await emulator.faults.outage()
        ids = [await engine.submit_save(f"{home}/s{i}.txt", b"saved %d" % i) for i in range(3)]
        await until(engine, lambda: engine.state == "offline")
        await until(engine, lambda: all(e.state == State.BLOCKED for e in engine.active_entries()))
        await emulator.faults.restart()
        await reconnected(engine.client)

        with full_disk(engine.journal) as disk:
            clock.advance(3600.0)  # the probe is due (whatever nudges did before); it answers, and
            # recording "online" cannot commit
            await until(engine, lambda: engine.health == "journal_error")
            assert "disk full" in (engine.health_error or "")
            assert engine.state == "offline"  # nothing was unblocked in the journal
            refused = disk.refused
            clock.advance(1.0)  # backoff: it tries again, still full
            await until(engine, lambda: disk.refused > refused)
            assert engine.health == "journal_error" and not engine._host.done()
        clock.advance(2.0)  # space was freed: the next try goes through
        await until(engine, lambda: engine.state == "online")
        with anyio.fail_after(20):
            for eid in ids:
                assert await engine.wait(eid, 20)
        assert engine.health == "ok"
    for i in range(3):
        assert commits(emulator, len(b"saved %d" % i)) == 3  # the three saves, once each (same size)


async def test_disk_full_when_an_applied_save_is_recorded(
    make_engine: Any, emulator: Any, home: str, full_disk: Any
) -> None:
    """The upload went through but `done` cannot be recorded: the outcome waits in memory and is
    recorded once there is space, without uploading again. A save submitted meanwhile is refused
    (nothing journaled: the contents manager answers 507)."""
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0) as engine:
        await engine.submit_save(f"{home}/warm.txt", b"x")
        assert await engine.wait_idle(20)
        held = emulator.faults.grpc("Stat", Hang(), after=1)  # the Stat after the upload
        eid = await engine.submit_save(f"{home}/a.txt", b"applied, then disk full")
        await emulator.faults.wait_fired(held)
        with full_disk(engine.journal) as disk:
            emulator.faults.release_hangs()
            await until(engine, lambda: engine.health == "journal_error")
            assert (await engine.journal.entry(eid)).state == State.RUNNING
            with pytest.raises(JournalFull):
                await engine.submit_save(f"{home}/late.txt", b"refused")
            refused = disk.refused
            clock.advance(1.0)  # backoff: the outcome is recorded again, still full
            await until(engine, lambda: disk.refused > refused)
            assert not engine._host.done()
        clock.advance(2.0)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        await until(engine, lambda: engine.health == "ok")
        assert [e.path for e in await engine.entries()] == [f"{home}/warm.txt", f"{home}/a.txt"]
    assert commits(emulator, len(b"applied, then disk full")) == 1


async def test_a_full_disk_is_logged_once(make_engine: Any, full_disk: Any) -> None:
    """Every heartbeat fails while the disk is full: one error with its traceback, not one per poll."""
    with capture_logs() as logs:
        async with make_engine(control_poll_interval=0.01) as engine:
            with full_disk(engine.journal) as disk:
                await until(engine, lambda: disk.refused >= 20)
                assert engine.health == "journal_error"
            await until(engine, lambda: engine.health == "ok")
    events = [e["event"] for e in logs]
    assert events.count("engine.journal_error") == 1, events
    assert "engine.control_poll_failed" not in events
    assert events.count("engine.journal_recovered") == 1
