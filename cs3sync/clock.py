"""Time and wakeups for the engine: the wall clock, a `ManualClock` for tests, and `Signal`, a re-armable
broadcast event (the engine's change signal, the manual clock's ticks)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import anyio


class Clock:
    """Wall-clock time for `next_attempt_at`, backoff and probes. Tests inject a `ManualClock`."""

    def now(self) -> float:
        return time.time()

    def seconds_until(self, deadline: float | None) -> float:
        """Real seconds to wait for `deadline` (inf: wait for an event only)."""
        if deadline is None:
            return math.inf
        return max(0.0, deadline - self.now())

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Real time needs no notifications."""


class ManualClock(Clock):
    """A clock that moves only when told to. `advance()` wakes whoever waits on it (the engine's
    workers re-check `next_attempt_at`, the offline probe, backoff sleeps)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._signal = Signal()
        self._callbacks: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now

    def seconds_until(self, deadline: float | None) -> float:
        return math.inf if deadline is None or deadline > self._now else 0.0

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._signal.set()
        for cb in list(self._callbacks):
            cb()

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + seconds
        while self._now < deadline:
            await self._signal.wait(self._signal.generation)

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)


class Signal:
    """A re-armable broadcast event with a generation counter: `wait(since)` returns as soon as
    anything was signalled after generation `since` (no lost wakeups between check and wait)."""

    def __init__(self) -> None:
        self.generation = 0
        self._event: anyio.Event | None = None

    def set(self) -> None:
        self.generation += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, since: int | None = None, timeout: float = math.inf) -> bool:  # noqa: ASYNC109
        """True when signalled (after `since`, default: now), False on timeout."""
        if since is not None and self.generation != since:
            return True
        if self._event is None:
            self._event = anyio.Event()
        event = self._event
        with anyio.move_on_after(timeout):
            await event.wait()
            return True
        return False
