"""Whether the storage can be used: the offline breaker (with its probe and the host's nudges) and the
auth pause (until the token file changes).

- Connectivity failures in a row (`offline_threshold`) open the breaker: every runnable entry is
  blocked(offline) and a probe Stats the home folder every `offline_probe_interval` s (doubling up to
  `offline_probe_max`), sooner when the host nudges, until the storage answers; any answer, the probe's
  or a request of the host's, closes it again.
- Below the threshold, an entry that met a connectivity failure waits in `retrying` for its backoff.
  The next answer of the storage (a request of the host, another entry landing) makes such entries due
  at once: once per failure-then-answer, and once per entry until it lands, so a storage that answers
  some requests and drops others cannot make an entry retry on every answer. A nudge of the host
  meanwhile (a read answered from what we know) asks the storage, at most every `probe_nudge_min` s
  and for `CHECK_WINDOW` s after the last nudge, so its return is noticed even when nothing else
  reaches it.
- An auth error pauses the whole queue (blocked(auth)) until the token changes.
"""

from __future__ import annotations

import math

import anyio

from cs3sync.clock import Signal
from cs3sync.cs3 import errors
from cs3sync.engine.host import EngineHost, EngineState
from cs3sync.engine.journal_health import JournalHealth
from cs3sync.journal import BlockedReason
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")

#: Ids of entries made due early kept in memory at most (see `Connectivity.remember_made_due`).
MADE_DUE_MAX = 10_000

#: After a nudge, failed checks of the storage (breaker closed) and failed probes (breaker open) are
#: repeated at most every `probe_nudge_min` s for this long: the client's gRPC channel reconnects on
#: its own backoff (at most 1 s, cs3/channel.py) and its calls fail fast until then.
CHECK_WINDOW = 5.0


class Connectivity:
    def __init__(self, host: EngineHost, health: JournalHealth) -> None:
        self._host = host
        self._health = health
        self.state: EngineState = "online"
        #: Connectivity failures in a row (any answer of the storage resets it).
        self.failures = 0
        #: Probes made so far: offline, or nudged while entries wait out a connectivity backoff
        #: (observable by tests and `status`).
        self.probes = 0
        self._probe_running = False
        self._nudge = Signal()  # the host used the storage while it is unreachable: probe now
        self._last_probe_at = -math.inf
        self._nudges_seen = 0  # the nudge generation the last probe answered
        self._reopening = False
        self._auth_watch_running = False
        self._home: str | None = None
        #: Entries went into backoff after a connectivity failure since the storage last answered.
        self._backed_off = False
        #: Entries made due early that have not landed since: their next failure waits its backoff.
        self._made_due: set[int] = set()
        self._checking = False  # a nudged check of the storage is under way (breaker closed)
        self._check_nudged_at = -math.inf  # the last nudge for those checks

    def reset(self) -> None:
        self.state = "online"
        self.failures = 0

    @property
    def shown_state(self) -> EngineState:
        """See `SyncEngine.shown_state`."""
        if self.state == "online" and self.failures > 0:
            return "offline"
        return self.state

    def backed_off(self, entry_id: int) -> bool:
        """An entry went into backoff after a connectivity failure: the next answer of the storage makes
        it due at once, unless it was made due early before and has not landed since (False)."""
        if entry_id in self._made_due:
            return False
        self._backed_off = True
        return True

    def remember_made_due(self, ids: list[int]) -> None:
        """Entries just made due early. Entries superseded or cancelled while they waited never land,
        so past `MADE_DUE_MAX` ids the set starts again from these: the worst an entry forgotten that way
        gets is one more early attempt, still under `max_attempts`."""
        if len(self._made_due) + len(ids) > MADE_DUE_MAX:
            self._made_due.clear()
        self._made_due.update(ids)

    def landed(self, entry_id: int) -> None:
        """An entry left the queue (applied, parked): it may be made due early again next time."""
        self._made_due.discard(entry_id)

    def connectivity_failed(self) -> bool:
        """Count one connectivity failure; True when the entry should wait for the breaker."""
        self.failures += 1
        return self.state == "offline" or self.failures >= self._host.offline_threshold

    # ------------------------------------------------------------------ offline breaker

    async def open_breaker(self, message: str) -> None:
        journal = self._host.journal
        if self.state == "online":
            self.state = "offline"
            try:
                n = await journal.block_runnable(BlockedReason.OFFLINE, error=message)
                await journal.set_control(engine_state="offline", last_error=message)
            except BaseException:
                self.state = "online"  # not recorded: the caller tries again
                raise
            log.warning("engine.offline", blocked=n, error_kind="connectivity")
            self._host.changed.set()
        if not self._probe_running and self._host.spawn(self._probe):
            self._probe_running = True

    async def _probe(self) -> None:
        """Stat the home folder every `offline_probe_interval` s (doubling up to `offline_probe_max`)
        until the storage answers, then reopen the queue."""
        interval = self._host.offline_probe_interval
        try:
            while self.state == "offline":
                await self._until_probe_due(interval)
                if self.state != "offline":
                    return  # a request of the host proved the storage back meanwhile
                self._last_probe_at = self._host.clock.now()
                self._nudges_seen = self._nudge.generation
                reachable = await self._probe_once()
                self.probes += 1
                self._host.changed.set()
                if reachable is None:
                    return  # auth pause took over
                if reachable:
                    await self._health.persist("reconnect", self.close_breaker)
                    return
                interval = min(interval * 2, self._host.offline_probe_max)
                log.info("engine.probe_failed", next_in=interval)
        finally:
            self._probe_running = False

    def _nudged_lately(self) -> bool:
        """A nudge came within `CHECK_WINDOW` s: the storage may be back while our gRPC channel still
        waits out its reconnect backoff (calls fail fast meanwhile), so a failed check is worth
        repeating soon rather than at the next timed probe."""
        return self._host.clock.now() - self._check_nudged_at < CHECK_WINDOW

    async def _until_probe_due(self, interval: float) -> None:
        """Wait `interval`, or less when the host nudges (someone uses the storage): then the probe
        runs as soon as `probe_nudge_min` has passed since the last one. Without this, the queue
        waited for the next timed probe (up to `offline_probe_max`) after the storage came back."""
        since = self._nudges_seen  # a nudge since the last probe counts, even before this wait began
        clock = self._host.clock
        async with anyio.create_task_group() as tg:

            async def timed() -> None:
                # After a nudge, a probe that failed is repeated every `probe_nudge_min` s for
                # `CHECK_WINDOW` s: the nudge that would wake it has come and gone (measured before:
                # the queue reopened at the next timed probe, 17.9 s after a 30 s outage).
                wait = interval
                if self._nudged_lately():
                    wait = min(
                        interval, max(0.0, self._last_probe_at + self._host.probe_nudge_min - clock.now())
                    )
                await clock.sleep(wait)
                # Woken after the window closed (a clock that jumped, a loop that stalled): the repeat
                # is no longer worth it, so the timed interval applies again.
                rest = self._last_probe_at + interval - clock.now()
                if wait < interval and not self._nudged_lately() and rest > 0:
                    await clock.sleep(rest)
                tg.cancel_scope.cancel()

            async def nudged() -> None:
                await self._nudge.wait(since)
                wait = self._last_probe_at + self._host.probe_nudge_min - clock.now()
                if wait > 0:
                    await clock.sleep(wait)
                tg.cancel_scope.cancel()

            tg.start_soon(timed)
            tg.start_soon(nudged)

    def nudge(self) -> None:
        """See `SyncEngine.nudge`."""
        if self.state == "offline":
            self._check_nudged_at = self._host.clock.now()
            self._nudge.set()
        elif self.state == "online" and self._backed_off:
            self._check_nudged_at = self._host.clock.now()
            if not self._checking and self._host.spawn(self._check_when_backed_off):
                self._checking = True

    async def _check_when_backed_off(self) -> None:
        """The host answered a read from what we know while entries wait out a connectivity backoff
        (the breaker still closed): ask the storage once, at most every `probe_nudge_min` s. If it
        answers, those entries are due now (`storage_answered`), not at the end of their backoff."""
        clock = self._host.clock
        try:
            while True:
                wait = self._last_probe_at + self._host.probe_nudge_min - clock.now()
                if wait > 0:
                    await clock.sleep(wait)
                if self.state != "online" or not self._backed_off:
                    return  # the breaker opened, or an answer came meanwhile
                self._last_probe_at = clock.now()
                reachable = await self._probe_once()
                self.probes += 1
                self._host.changed.set()
                if reachable:
                    self.storage_answered()
                # A failed check asks again while the last nudge is recent: the storage may be back
                # while our gRPC channel still waits out its reconnect backoff (calls fail fast
                # meanwhile), and a failed Stat takes the client's retries, during which the nudge
                # that tells the storage is back may arrive.
                if reachable is not False or not self._nudged_lately():
                    return
        finally:
            self._checking = False

    def storage_answered(self) -> None:
        """See `SyncEngine.storage_answered`. Also called for every answer the workers get."""
        if self.state == "online" and self.failures:
            self.failures = 0
            self._host.changed.set()
        if self.state == "offline" and not self._reopening and self._host.spawn(self._reopen):
            self._reopening = True
        if self.state == "online" and self._backed_off and self._host.spawn(self._make_due):
            self._backed_off = False  # one wake per failure-then-answer

    async def _make_due(self) -> None:
        """Entries waiting out a connectivity backoff: next attempt now (attempts unchanged, so
        `max_attempts` still parks an entry that keeps failing), and wake the workers."""
        journal = self._host.journal
        ids: list[int] = []

        async def step() -> None:
            nonlocal ids
            ids = await journal.make_due("connectivity", exclude=self._made_due)

        await self._health.persist("make_due", step)
        if ids:
            self.remember_made_due(ids)
            log.info("engine.made_due", entries=len(ids))
            await self._host.after_change()

    async def _reopen(self) -> None:
        try:
            await self._health.persist("reconnect", self.close_breaker)
        finally:
            self._reopening = False

    async def _probe_once(self) -> bool | None:
        """True: the storage answered (even with an error); False: still unreachable; None: auth."""
        client = self._host.client
        try:
            if self._home is None:
                self._home = await client.home()
            await client.stat(self._home)
        except errors.Unauthenticated as exc:
            await self.enter_auth_pause(exc)
            return None
        except errors.Transient:
            return False
        except errors.CS3Error:
            return True
        return True

    async def close_breaker(self) -> None:
        if self.state != "offline":
            return
        self.state = "online"
        journal = self._host.journal
        try:
            n = await journal.unblock(BlockedReason.OFFLINE)
            await journal.set_control(engine_state="online", last_error=None)
        except BaseException:
            self.state = "offline"  # still blocked in the journal: the caller tries again
            raise
        self.failures = 0
        log.info("engine.online", unblocked=n)
        await self._host.after_change()

    # ------------------------------------------------------------------ auth pause

    async def enter_auth_pause(self, exc: errors.CS3Error) -> None:
        if self.state != "auth":
            journal = self._host.journal
            previous, self.state = self.state, "auth"
            try:
                n = await journal.block_runnable(BlockedReason.AUTH, error=str(exc))
                await journal.set_control(engine_state="auth", last_error=str(exc))
            except BaseException:
                self.state = previous  # not recorded: the caller tries again
                raise
            log.warning("engine.auth_paused", blocked=n, error_kind=exc.kind)
            self._host.changed.set()
        if not self._auth_watch_running and self._host.spawn(self._auth_watch, exc):
            self._auth_watch_running = True

    async def _auth_watch(self, exc: errors.CS3Error) -> None:
        """Wait until the token file changes (the client knows which file and what it held), then
        resume the whole queue."""
        try:
            if isinstance(exc, errors.AuthBlocked):
                await exc.wait_for_change()
            else:
                await self._wait_token_file_change()
            await self._health.persist("auth_resume", self._resume_after_auth)
        finally:
            self._auth_watch_running = False

    async def _resume_after_auth(self) -> None:
        journal = self._host.journal
        n = await journal.unblock(BlockedReason.AUTH)
        # If the pause started from an offline probe, those entries come back too (and the breaker
        # re-opens if the storage is still unreachable).
        n += await journal.unblock(BlockedReason.OFFLINE)
        await journal.set_control(engine_state="online", last_error=None)
        self.state = "online"
        self.failures = 0
        log.info("engine.auth_resumed", unblocked=n)
        await self._host.after_change()

    async def _wait_token_file_change(self) -> None:
        path = self._host.client.config.token_path
        if not path:
            await anyio.sleep_forever()
        p = await anyio.Path(path).expanduser()

        async def signature() -> tuple[float, int] | None:
            try:
                st = await p.stat()
            except OSError:
                return None
            return (st.st_mtime, st.st_size)

        before = await signature()
        # A file watch: nothing signals a token file change (the client's AuthBlocked normally does this).
        while await signature() == before:  # noqa: ASYNC110
            await anyio.sleep(1.0)
