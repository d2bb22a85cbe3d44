"""Issue 14: after a short outage (the breaker still closed), an entry waiting out a connectivity
backoff is made due by the first answer of the storage instead of waiting for its backoff. Time only
moves when the test advances the `ManualClock`; nothing here advances it before the entry lands."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cs3sync.emulator import Hang
from cs3sync.engine import ManualClock, SyncEngine
from cs3sync.journal import State

from .helpers import reconnected, until

pytestmark = pytest.mark.anyio


async def _attempts(engine: SyncEngine, entry_id: int, n: int) -> bool:
    entry = await engine.journal.entry(entry_id)
    return entry.attempts >= n and entry.state != State.RUNNING


async def _state(engine: SyncEngine, entry_id: int, state: str) -> bool:
    return (await engine.journal.entry(entry_id)).state == state


async def _backed_off_once(engine: SyncEngine, emulator: Any, home: str) -> int:
    """A save that met one connectivity failure (below `offline_threshold`): retrying in 5 s."""
    await engine.submit_save(f"{home}/warm.txt", b"x")  # log in and learn home while online
    await engine.wait_idle(20)
    await emulator.faults.outage()
    eid = await engine.submit_save(f"{home}/a.txt", b"saved during a short outage")
    await until(engine, lambda: _attempts(engine, eid, 1))
    entry = await engine.journal.entry(eid)
    assert entry.state == State.RETRYING and entry.last_error_kind == "connectivity"
    assert entry.next_attempt_at == pytest.approx(engine.clock.now() + 5.0)
    assert engine.state == "online"  # one failure of three: the breaker stays closed
    return eid


async def test_another_entry_landing_makes_a_connectivity_backoff_due(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """The 2.5-3.4 s the offline storm measured: the queued save waited out its 5 s backoff although
    the storage was back. Another entry reaching the storage is proof enough."""
    async with make_engine(clock=ManualClock(), backoff_jitter=0.0) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        await emulator.faults.restart()
        await reconnected(engine.client)
        other = await engine.submit_save(f"{home}/b.txt", b"saved after it came back")
        with anyio.fail_after(20):
            assert await engine.wait(other, 20)
            assert await engine.wait(eid, 20)  # the clock never moved: not its backoff
        assert (await engine.journal.entry(eid)).attempts == 1  # the attempt still counts


async def test_a_host_request_makes_a_connectivity_backoff_due_once_per_entry(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """A request of the host that reached the storage (`storage_answered`) makes the entry due. If its
    early run fails again (a storage that answers reads and drops uploads), it waits its backoff: the
    next answers do not make it due again until it lands."""
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        engine.storage_answered()  # but the storage is still down: the early run fails
        await until(engine, lambda: _attempts(engine, eid, 2))
        entry = await engine.journal.entry(eid)
        assert entry.state == State.RETRYING
        assert entry.next_attempt_at == pytest.approx(clock.now() + 10.0)  # 5 s * 2^1
        await emulator.faults.restart()
        await reconnected(engine.client)
        for _ in range(3):
            engine.storage_answered()
        assert await engine.wait(eid, 0.5) is False
        entry = await engine.journal.entry(eid)
        assert entry.state == State.RETRYING and entry.attempts == 2
        clock.advance(10.0)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)


async def test_answers_between_failures_still_park_at_the_ceiling(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """A flapping storage: an answer after every failure. Early runs count as attempts, so the entry is
    parked at `max_attempts` like any other retry, with the reason the user sees."""
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0, max_attempts=2) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        engine.storage_answered()
        await until(engine, lambda: _state(engine, eid, State.FAILED))
        entry = await engine.journal.entry(eid)
        assert entry.last_error is not None and entry.last_error.startswith("gave up after 2 attempts")
        engine.storage_answered()
        assert (await engine.journal.entry(eid)).state == State.FAILED


async def test_a_nudge_asks_the_storage_when_entries_wait_out_a_connectivity_backoff(
    make_engine: Any, emulator: Any, home: str
) -> None:
    """In the offline storm nothing reached the storage after it returned: the folder listing was
    answered from what the server knew (the storage counts as unreachable for a moment after a failed
    read) and only nudged the engine, which acted on nudges only with the breaker open. With the
    breaker closed and an entry in connectivity backoff, a nudge asks the storage (at most every
    probe_nudge_min s) and its answer makes the entry due."""
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0, probe_nudge_min=1.0) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        engine.nudge()  # still down: one probe, which fails; the entry keeps its backoff
        await until(engine, lambda: engine.probes == 1)
        assert (await engine.journal.entry(eid)).state == State.RETRYING
        await emulator.faults.restart()
        await reconnected(engine.client)
        engine.nudge()  # within probe_nudge_min of the last probe: it waits for the clock
        assert engine.probes == 1
        clock.advance(1.0)  # probe_nudge_min, far from the entry's 5 s backoff
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert engine.probes == 2 and engine.state == "online"
        assert (await engine.journal.entry(eid)).attempts == 1
        engine.nudge()  # nothing waits a connectivity backoff any more: no probe
        clock.advance(5.0)
        await engine.wait_idle(20)
        assert engine.probes == 2


async def test_a_nudge_during_a_failed_check_asks_again(make_engine: Any, emulator: Any, home: str) -> None:
    """Traced in the storm: the listing sent as the storage came back nudged the engine while a check
    started during the outage was still failing; the nudge was dropped and the save waited out its
    backoff. A check that fails with nudges during it asks again (after probe_nudge_min)."""
    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0, probe_nudge_min=1.0) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        await emulator.faults.restart()
        await reconnected(engine.client)
        hang = emulator.faults.grpc("Stat", Hang())
        engine.nudge()
        await emulator.faults.wait_fired(hang)  # the check's Stat is in flight
        engine.nudge()  # (the storage came back: a listing answered from what we know)
        await emulator.faults.outage()  # the check fails after all
        await until(engine, lambda: engine.probes == 1)
        assert (await engine.journal.entry(eid)).state == State.RETRYING
        await emulator.faults.restart()
        await reconnected(engine.client)
        clock.advance(1.0)  # probe_nudge_min, far from the entry's 5 s backoff
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert engine.probes == 2 and (await engine.journal.entry(eid)).attempts == 1


async def test_checks_go_on_for_a_moment_after_a_nudge(make_engine: Any, emulator: Any, home: str) -> None:
    """Traced in the storm: the one listing after the storage came back nudged a check whose Stat failed
    fast (our gRPC channel was still waiting out its reconnect backoff). Checks go on every
    probe_nudge_min s for CHECK_WINDOW s after the last nudge, then stop."""
    from cs3sync.engine.connectivity import CHECK_WINDOW

    clock = ManualClock()
    async with make_engine(clock=clock, backoff_jitter=0.0, backoff_base=60.0, probe_nudge_min=1.0) as engine:
        eid = await _backed_off_once(engine, emulator, home)
        engine.nudge()  # the only nudge
        await until(engine, lambda: engine.probes == 1)
        clock.advance(1.0)
        await until(engine, lambda: engine.probes == 2)  # still down: fails again, no nudge needed
        await emulator.faults.restart()
        await reconnected(engine.client)
        clock.advance(1.0)
        with anyio.fail_after(20):
            assert await engine.wait(eid, 20)
        assert engine.probes == 3

        clock.advance(1.0)  # probe_nudge_min since the last check
        other = await _backed_off_once_more(engine, emulator, home)
        engine.nudge()  # the storage stays down: a check at once, then one a second for CHECK_WINDOW
        for n in range(int(CHECK_WINDOW) + 1):
            await until(engine, lambda n=n: engine.probes == 4 + n)
            clock.advance(1.0)
        clock.advance(10.0)  # the window is over (the last check ended at once): nothing more
        assert engine.probes == 4 + int(CHECK_WINDOW)
        assert (await engine.journal.entry(other)).state == State.RETRYING


async def _backed_off_once_more(engine: SyncEngine, emulator: Any, home: str) -> int:
    await emulator.faults.outage()
    eid = await engine.submit_save(f"{home}/b.txt", b"saved during a second outage")
    await until(engine, lambda: _attempts(engine, eid, 1))
    return eid


def test_made_due_ids_stay_bounded() -> None:
    """Entries superseded or cancelled while they waited never land; their ids must not pile up in the
    engine's memory for the life of the server. Past the cap the set starts again from the newest ids,
    so an entry forgotten that way may be made due early once more (still under `max_attempts`)."""
    from typing import cast

    from cs3sync.engine.connectivity import MADE_DUE_MAX, Connectivity
    from cs3sync.engine.host import EngineHost
    from cs3sync.engine.journal_health import JournalHealth

    connectivity = Connectivity(cast(EngineHost, None), cast(JournalHealth, None))
    for start in range(0, 3 * MADE_DUE_MAX, 1000):
        connectivity.remember_made_due(list(range(start, start + 1000)))
    newest = 3 * MADE_DUE_MAX - 1
    assert connectivity.backed_off(newest) is False  # made due early and not landed: waits its backoff
    assert connectivity.backed_off(0) is True  # forgotten: the next answer may make it due once more
    connectivity.landed(newest)
    assert connectivity.backed_off(newest) is True
    # The bound itself: at most MADE_DUE_MAX ids are remembered.
    remembered = [i for i in range(3 * MADE_DUE_MAX) if not connectivity.backed_off(i)]
    assert len(remembered) <= MADE_DUE_MAX
