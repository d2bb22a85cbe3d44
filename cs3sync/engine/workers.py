"""The worker tasks: each claims the oldest runnable entry from the journal (path-ordered, one
statement), runs its executor (`cs3sync.commands.EXECUTORS`) while renewing the lease, and hands the
result to `Outcomes`. Large-upload workers claim only large uploads, so a notebook save never waits
behind a big transfer. Idle workers wait for an event (a submit, a finished entry, a clock advance, a
control change), or until the next persisted `next_attempt_at`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from cs3sync import commands
from cs3sync.clock import Signal
from cs3sync.commands import Outcome
from cs3sync.engine.connectivity import Connectivity
from cs3sync.engine.context import ExecutorContext
from cs3sync.engine.host import EngineHost
from cs3sync.engine.journal_health import JournalHealth, unless_moot
from cs3sync.engine.outcomes import Outcomes
from cs3sync.engine.progress import ProgressTracker
from cs3sync.journal import Entry, State
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")


class Workers:
    def __init__(
        self,
        host: EngineHost,
        wake: Signal,
        connectivity: Connectivity,
        outcomes: Outcomes,
        health: JournalHealth,
        progress: ProgressTracker,
    ) -> None:
        self._host = host
        self._wake = wake
        self._connectivity = connectivity
        self._outcomes = outcomes
        self._health = health
        self._progress = progress
        #: Called with every entry whose run ended (see `SyncEngine.on_finished`).
        self.finished_listeners: list[Callable[[Entry, Any], None]] = []
        # Idle workers woken by one change share one claim (see _claim): per worker filter, the lock
        # and the (wake generation, next due time) at which a claim last found nothing runnable.
        self._claim_locks: dict[bool | None, anyio.Lock] = {}
        self._found_idle: dict[bool | None, tuple[int, float | None]] = {}

    async def run(self, worker_id: str, large: bool | None) -> None:
        """One worker, until cancelled. ``large``: claim only large uploads (True), none (False), any."""
        wake, clock = self._wake, self._host.clock
        while True:
            since = wake.generation
            if self._connectivity.state != "online" or self._host.paused:
                await wake.wait(since)
                continue
            try:
                await self._host.requests_first()
                entry, due = await self._claim(worker_id, large, since)
                if entry is None:
                    await wake.wait(since, timeout=clock.seconds_until(due))
                    continue
                await self._run(entry, worker_id)
            except Exception as exc:
                # The journal itself failed (disk full, db locked for too long): keep the worker alive
                # and try again shortly; the entry, if any, stays running until recovery.
                self._health.trouble(f"worker {worker_id}", exc)
                await wake.wait(wake.generation, timeout=1.0)

    async def _claim(
        self, worker_id: str, large: bool | None, since: int
    ) -> tuple[Entry | None, float | None]:
        """(a claimed entry, None) or (None, when something next becomes due). Every change wakes every
        idle worker; once one of them found nothing runnable since wake generation ``since``, the others
        with the same filter know the answer without a write transaction of their own (each save used to
        cost one claim transaction per idle worker, queued with the next save's commit)."""
        journal = self._host.journal
        lock = self._claim_locks.setdefault(large, anyio.Lock())
        async with lock:
            idle = self._found_idle.get(large)
            if idle is not None and idle[0] == since and self._host.clock.seconds_until(idle[1]) > 0:
                return None, idle[1]
            entry = await journal.claim(worker_id, lease_seconds=self._host.lease_seconds, large=large)
            if entry is not None:
                return entry, None
            due = await journal.next_wakeup()
            self._found_idle[large] = (since, due)
            return None, due

    async def _run(self, entry: Entry, worker_id: str) -> None:
        host = self._host
        started = time.monotonic()
        host.log_entry(entry, "running", state=State.RUNNING, worker=worker_id)
        await host.after_change(refresh=True, transition=False)
        executor = commands.EXECUTORS[entry.op]
        outcome: Outcome | None = None
        failure: Exception | None = None
        landed: Any = None  # the storage's item after a run that applied the entry

        async def execute() -> None:
            # Caught here, inside the task group, so the error reaches the classifier unwrapped
            # (a task group would turn it into an ExceptionGroup).
            nonlocal outcome, failure
            try:
                outcome = await executor(entry, ExecutorContext(host, self._progress))
            except Exception as exc:
                failure = exc
            finally:
                tg.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._renew_lease, entry, worker_id)
                tg.start_soon(execute)
        except anyio.get_cancelled_exc_class():
            self._progress.forget(entry.id)
            with anyio.CancelScope(shield=True):
                await unless_moot(host.journal.requeue(entry.id, needs_check=True))
                host.log_entry(entry, "requeued", state=State.QUEUED, duration=time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        try:
            await host.requests_first()
            if failure is not None:
                error = failure
                await self._health.persist("outcome", lambda: self._outcomes.on_error(entry, error, duration))
            elif outcome is not None:
                # A merge made the entry carry new content: finish it as it is now.
                entry = outcome.entry or entry
                result, finished = outcome, entry
                await self._health.persist(
                    "outcome", lambda: self._outcomes.on_success(finished, result, duration)
                )
                landed = outcome.info if outcome.state == "done" else None
        finally:
            self._progress.forget(entry.id)
            self._notify_finished(entry, landed)
            await host.after_change()

    def _notify_finished(self, entry: Entry, landed: Any) -> None:
        for listener in self.finished_listeners:
            try:
                listener(entry, landed)
            except Exception:  # a host's cache must not stop the engine
                log.exception("engine.listener_failed", entry_id=entry.id)

    async def _renew_lease(self, entry: Entry, worker_id: str) -> None:
        """Keep the lease of a long command (a big upload) alive."""
        host = self._host
        while True:
            await host.clock.sleep(host.lease_seconds / 3)
            try:
                await host.journal.renew_lease(entry.id, worker_id, lease_seconds=host.lease_seconds)
            except Exception:
                log.exception("engine.lease_renewal_failed", entry_id=entry.id)
