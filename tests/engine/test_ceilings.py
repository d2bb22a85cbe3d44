"""No unbounded retry (issue 11): every engine retry loop has a ceiling (`max_attempts`, and
`MAX_INTERNAL_ERRORS` for bugs) after which the entry is parked as failed with the reason the user sees
in `status` and the sync panel, and its bytes stay in the journal. One test per loop: a transient
storage answer, a foreign lock, a full quota, a connection that keeps dropping, and an unexpected
exception. Time moves only through the `ManualClock`."""

from __future__ import annotations

from typing import Any

import pytest

from cs3sync import commands
from cs3sync.emulator import Status, Unavailable
from cs3sync.engine import MAX_INTERNAL_ERRORS, ManualClock, SyncEngine
from cs3sync.journal import State

from .helpers import until

pytestmark = pytest.mark.anyio

UNAVAILABLE = 16
CEILING = 3


async def _drive_to_failed(engine: SyncEngine, clock: ManualClock, entry_id: int) -> Any:
    """Advance the clock past every backoff until the entry stops retrying; return it."""

    async def settled() -> bool:
        entry = await engine.journal.entry(entry_id)
        if entry.state == State.RETRYING:
            clock.advance(engine.backoff_max)
        return entry.state in (State.FAILED, State.DONE, State.BLOCKED)

    await until(engine, settled)
    return await engine.journal.entry(entry_id)


def _assert_parked(engine: SyncEngine, entry: Any, attempts: int, reason: str) -> None:
    assert entry.state == State.FAILED, entry
    assert f"gave up after {attempts} attempts" in (entry.last_error or "")
    assert reason in (entry.last_error or "")
    assert engine.blob_path(entry.blob).read_bytes() == b"kept bytes"  # nothing acknowledged is lost


async def test_transient_answers_are_retried_up_to_the_ceiling(
    make_engine: Any, emulator: Any, home: str
) -> None:
    clock = ManualClock()
    emulator.faults.grpc("InitiateFileUpload", Status(UNAVAILABLE, "storage busy"), times=1000)
    async with make_engine(clock=clock, max_attempts=CEILING) as engine:
        eid = await engine.submit_save(f"{home}/busy.txt", b"kept bytes")
        entry = await _drive_to_failed(engine, clock, eid)
        _assert_parked(engine, entry, CEILING, "storage busy")
        assert entry.last_error_kind == "transient"


async def test_a_lock_never_released_parks_the_save(make_engine: Any, emulator: Any, home: str) -> None:
    clock = ManualClock()
    path = f"{home}/locked.txt"
    emulator.storage.external_write(path, b"theirs")
    emulator.storage.lock(path, expiration=None)
    async with make_engine(clock=clock, max_attempts=CEILING) as engine:
        eid = await engine.submit_save(path, b"kept bytes")
        entry = await _drive_to_failed(engine, clock, eid)
        _assert_parked(engine, entry, CEILING, "other-app")
        assert entry.last_error_kind == "locked"
    assert emulator.storage.read(path) == b"theirs"


async def test_a_quota_never_freed_parks_the_save(make_engine: Any, emulator: Any, home: str) -> None:
    clock = ManualClock()
    emulator.storage.set_quota(total=100, used=95)
    async with make_engine(clock=clock, max_attempts=CEILING) as engine:
        eid = await engine.submit_save(f"{home}/big.txt", b"kept bytes")
        entry = await _drive_to_failed(engine, clock, eid)
        _assert_parked(engine, entry, CEILING, "quota exceeded: 95 B of 100 B used, this file needs 10 B")
        assert entry.last_error_kind == "quota_exceeded"


async def test_a_connection_that_keeps_dropping_parks_the_entry(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """Connectivity failures that never add up to the offline breaker (another entry's success resets
    the count) still stop at the ceiling."""
    clock = ManualClock()
    emulator.faults.grpc("InitiateFileUpload", Unavailable(), times=1000)
    async with make_engine(clock=clock, max_attempts=CEILING, offline_threshold=1000) as engine:
        eid = await engine.submit_save(f"{home}/flaky.txt", b"kept bytes")
        entry = await _drive_to_failed(engine, clock, eid)
        _assert_parked(engine, entry, CEILING, "unreachable")
        assert entry.last_error_kind == "connectivity"


async def test_a_bug_in_an_executor_parks_the_entry(
    make_engine: Any, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(entry: Any, ctx: Any) -> Any:
        raise RuntimeError("executor bug")

    monkeypatch.setitem(commands.EXECUTORS, "save", broken)
    clock = ManualClock()
    async with make_engine(clock=clock) as engine:
        eid = await engine.submit_save(f"{home}/bug.txt", b"kept bytes")
        entry = await _drive_to_failed(engine, clock, eid)
        assert entry.state == State.FAILED and entry.last_error_kind == "internal"
        assert entry.attempts == MAX_INTERNAL_ERRORS - 1
        assert "executor bug" in (entry.last_error or "")
        assert engine.blob_path(entry.blob).read_bytes() == b"kept bytes"
