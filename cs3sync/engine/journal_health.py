"""Journal writes that must not be lost: `JournalHealth.persist` retries a step until the journal takes
it, and remembers the trouble for `SyncEngine.health` meanwhile."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cs3sync.clock import Clock, Signal
from cs3sync.journal import InvalidTransition, JournalError, UnknownEntry
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")

T = TypeVar("T")

#: What a failed journal write raises: SQLite errors (JournalFull: disk full), file system errors.
JOURNAL_ERRORS = (JournalError, sqlite3.Error, OSError)
#: Longest wait (s, engine clock) between tries of a journal write that failed.
JOURNAL_RETRY_MAX = 30.0
#: A journal error is logged with its traceback once, then at most every this many seconds.
JOURNAL_LOG_EVERY = 60.0


class JournalHealth:
    def __init__(self, clock: Clock, changed: Signal) -> None:
        self._clock = clock
        self._changed = changed
        #: The journal write that keeps failing, if any.
        self.error: str | None = None
        self._failures = 0
        self._logged_at = 0.0

    async def persist(self, where: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` (journal writes) until the journal takes it. A full disk or a database locked
        for too long must neither lose an outcome nor stop the engine: back off (1, 2, 4 ...
        `JOURNAL_RETRY_MAX` s on the engine clock) and try again; `health` shows it meanwhile. The
        steps are idempotent (a transition already made is dropped by `unless_moot`)."""
        delay = 1.0
        while True:
            try:
                await step()
            except JOURNAL_ERRORS as exc:
                self.trouble(where, exc)
                await self._clock.sleep(delay)
                delay = min(delay * 2, JOURNAL_RETRY_MAX)
                continue
            self.ok()
            return

    def trouble(self, where: str, exc: Exception) -> None:
        """A journal operation failed: remember it for `health`; log it with its traceback the first
        time, then at most every `JOURNAL_LOG_EVERY` s (a full disk fails every try)."""
        first = self.error is None
        self.error = str(exc) or type(exc).__name__
        self._failures += 1
        self._changed.set()
        now = time.monotonic()
        if first:
            self._logged_at = now
            log.error("engine.journal_error", where=where, error=self.error, exc_info=exc)
        elif now - self._logged_at >= JOURNAL_LOG_EVERY:
            self._logged_at = now
            log.warning(
                "engine.journal_error_continues", where=where, error=self.error, failures=self._failures
            )

    def ok(self) -> None:
        if self.error is not None:
            log.info("engine.journal_recovered", failures=self._failures)
            self.error = None
            self._failures = 0
            self._changed.set()


async def unless_moot(aw: Awaitable[T]) -> T | None:
    """A journal transition whose entry may have been discarded meanwhile (CLI): drop the result."""
    try:
        return await aw
    except (InvalidTransition, UnknownEntry) as exc:
        log.info("engine.transition_dropped", reason=str(exc))
        return None
