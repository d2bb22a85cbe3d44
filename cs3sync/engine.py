"""The worker engine: applies journaled commands to CS3, durably and in order.

`SyncEngine` is the facade the contents manager codes against (docs/engine.md). Inside it:

- `workers` tasks claim runnable entries from the journal (path-ordered, one statement) and run the
  executor of `cs3sync.commands` for each; `large_upload_limit` separate tasks claim only large uploads, so
  a notebook save never waits behind a big transfer.
- Wakeups are events: a submit, a finished entry, a clock advance or a control change (CLI) wakes idle
  workers; the only timed waits are until the next persisted `next_attempt_at`, the offline probe and the
  cross-process control poll.
- Every failure is classified: transient -> persisted backoff `min(backoff_max, backoff_base * 2^attempts)`
  with jitter; connectivity (3 in a row) -> the offline breaker; auth -> the auth pause; permanent ->
  failed (bytes kept). Nothing is ever dropped.
- Every transition is a structlog event with entry id, op, path, attempt, duration and error kind.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from cs3sync import commands, overlay
from cs3sync.clock import Clock, ManualClock, Signal
from cs3sync.commands import CommandError, Outcome
from cs3sync.cs3 import errors
from cs3sync.journal import (
    DEFAULT_LARGE_THRESHOLD,
    Blob,
    BlockedReason,
    Entry,
    InvalidTransition,
    Journal,
    JournalError,
    Op,
    RemoteState,
    State,
    UnknownEntry,
    crash_point,
)
from cs3sync.journal.paths import normalize_path
from cs3sync.logs import get_logger
from cs3sync.overlay import Overlay

log = get_logger(__name__)

#: What the contents manager and the tests import from here (clock and overlay live in their own modules).
__all__ = [
    "Clock",
    "ConflictError",
    "EngineError",
    "FailedError",
    "ManualClock",
    "Overlay",
    "Progress",
    "Signal",
    "SyncEngine",
]

EngineState = Literal["online", "offline", "auth"]
#: "ok"; "journal_error": journal writes keep failing (disk full?), the engine retries them;
#: "dead": the engine's tasks ended without stop() (a bug; its host restarts it); "stopped".
Health = Literal["ok", "journal_error", "dead", "stopped"]

#: What a failed journal write raises: SQLite errors (JournalFull: disk full), file system errors.
JOURNAL_ERRORS = (JournalError, sqlite3.Error, OSError)
#: Longest wait (s, engine clock) between tries of a journal write that failed.
JOURNAL_RETRY_MAX = 30.0
#: A journal error is logged with its traceback once, then at most every this many seconds.
JOURNAL_LOG_EVERY = 60.0

#: How much newer than the editor's save a merged save is presented (see _Context.rebase).
MERGE_PRESENTED_STEP = 1.0

#: What the user was refused, per op, in the reason of an entry the storage refused.
_REFUSED = {
    "save": "write",
    "mkdir": "create the folder",
    "delete": "delete",
    "rename": "move",
    "copy": "write",
    "checkpoint": "write the checkpoint",
}

#: Unexpected exceptions (bugs, not storage errors) are retried this many times before failing.
MAX_INTERNAL_ERRORS = 5

#: Storage answers that may resolve by themselves (transient errors, someone else's lock, a full quota,
#: a connection that keeps dropping) are retried with backoff at most this many times; then the entry is
#: parked as failed with the last reason (bytes kept; `cs3sync retry` starts it again). With the default
#: backoff (5 s doubling to 300 s) twelve attempts span about 40 minutes.
MAX_ATTEMPTS = 12


# ---------------------------------------------------------------------------------------------- errors


class EngineError(Exception):
    """Base of what `SyncEngine.wait` raises. Carries the journal entry."""

    def __init__(self, entry: Entry, message: str) -> None:
        self.entry = entry
        self.entry_id = entry.id
        super().__init__(message)


class ConflictError(EngineError):
    """The command was not applied because the storage changed under it. `conflict_path` (if any)
    holds the user's bytes."""

    def __init__(self, entry: Entry) -> None:
        self.conflict_path = entry.conflict_path
        super().__init__(entry, entry.last_error or f"conflict on {entry.path}")


class FailedError(EngineError):
    """The command failed permanently; its data stays in the journal (`status`, `retry`)."""

    def __init__(self, entry: Entry) -> None:
        self.error_kind = entry.last_error_kind
        super().__init__(entry, entry.last_error or f"{entry.op} {entry.path} failed")


# ---------------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class Progress:
    entry_id: int
    path: str
    sent: int
    total: int


# ---------------------------------------------------------------------------------------------- engine


class SyncEngine:
    """Journal + workers. `async with SyncEngine(client, journal_dir=...) as engine: ...`."""

    def __init__(
        self,
        client: Any,
        journal_dir: str | Path | None = None,
        *,
        journal: Journal | None = None,
        workers: int = 4,
        large_upload_limit: int = 2,
        large_upload_threshold: int = DEFAULT_LARGE_THRESHOLD,
        backoff_base: float = 5.0,
        backoff_max: float = 300.0,
        backoff_jitter: float = 0.2,
        offline_threshold: int = 3,
        offline_probe_interval: float = 15.0,
        offline_probe_max: float = 120.0,
        probe_nudge_min: float = 1.0,
        control_poll_interval: float = 2.0,
        lease_seconds: float = 600.0,
        fresh_base_seconds: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
        merge_conflicts: bool = True,
        clock: Clock | None = None,
        lock_provider: Callable[[str], Any] | None = None,
        allow_network_fs: bool = False,
        account: str | None = None,
        name: str | None = None,
    ) -> None:
        if journal is None and journal_dir is None:
            raise ValueError("SyncEngine needs journal_dir or journal")
        self.client = client
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        self.workers = workers
        self.large_upload_limit = large_upload_limit
        self.large_upload_threshold = large_upload_threshold
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.offline_threshold = offline_threshold
        self.offline_probe_interval = offline_probe_interval
        self.offline_probe_max = offline_probe_max
        self.probe_nudge_min = probe_nudge_min
        self.control_poll_interval = control_poll_interval
        self.lease_seconds = lease_seconds
        self.fresh_base_seconds = fresh_base_seconds
        self.max_attempts = max_attempts
        #: Merge a save with a foreign change where nothing overlaps (`cs3sync.rebase`); False: always
        #: a conflict copy.
        self.merge_conflicts = merge_conflicts
        self.clock = clock or Clock()
        self.lock_provider = lock_provider
        self.allow_network_fs = allow_network_fs
        self.account = account or _account_label(client)
        self.name = name or f"engine-{os.getpid()}"

        self._journal = journal
        self._own_journal = journal is None
        self._tg: anyio.abc.TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._stopping: anyio.Event | None = None
        self._state: EngineState = "online"
        self._last_error: str | None = None
        self._connectivity_failures = 0
        self._probe_running = False
        self._nudge = Signal()  # the host used the storage while it is unreachable: probe now
        self._last_probe_at = -math.inf
        self._nudges_seen = 0  # the nudge generation the last probe answered
        self._reopening = False
        self._auth_watch_running = False
        self._home: str | None = None
        #: Offline probes made so far (observable by tests and `status`).
        self.probes = 0

        self._wake = Signal()  # workers: something may be runnable
        self._transitions = Signal()  # waiters: an entry changed state
        self.changed = Signal()  # UIs: anything visible changed (entries, state, progress)
        self._active: list[Entry] = []
        # The active entries folded into path -> pending state, once per refresh: every read of a path
        # asks for its overlay (several times per request), and folding hundreds of pending entries
        # each time made 600 creates in flight spend a third of the event loop's time in fold().
        self._view: dict[str, Overlay] = {}
        # The same entries by id and by path, and how many of them depend on others (see
        # overlay.depends_on_others), to apply a refresh's changes without reloading and refolding them
        # all (a queue of 2,000 creates made every enqueue, claim and landing cost O(queue)).
        self._active_by_id: dict[int, Entry] = {}
        self._ids_by_path: dict[str, set[int]] = {}
        self._dependent = 0
        self._tracking = False  # the journal records which entries our writes change
        self._active_states: dict[int, str] = {}  # id -> state of self._active
        # Refresh requests and the newest request a completed refresh covers (see _refresh_active).
        self._active_wanted = 0
        self._active_loaded = 0
        self._active_lock: anyio.Lock | None = None
        self._progress: dict[int, Progress] = {}
        self._persisted_progress: dict[int, int] = {}
        self._control_generation: int | None = None
        self._paused = False
        self._finished_listeners: list[Callable[[Entry, Any], None]] = []
        # Idle workers woken by one change share one claim (see _claim): per worker filter, the lock
        # and the (wake generation, next due time) at which a claim last found nothing runnable.
        self._claim_locks: dict[bool | None, anyio.Lock] = {}
        self._found_idle: dict[bool | None, tuple[int, float | None]] = {}
        self._journal_error: str | None = None  # the journal write that keeps failing, if any
        self._journal_failures = 0
        self._journal_logged_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            raise RuntimeError("the engine is not started")
        return self._journal

    async def __aenter__(self) -> SyncEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the journal as its owner (recovery included) and start the workers."""
        self._active_lock = anyio.Lock()
        self._state = "online"
        self._connectivity_failures = 0
        if self._journal is None:
            assert self.journal_dir is not None
            # Opening as owner recovers: running entries go back to queued with needs_check, so their
            # executor re-checks the postcondition first; recorded tus sessions resume.
            self._journal = await Journal.open(
                self.journal_dir,
                owner=True,
                allow_network_fs=self.allow_network_fs,
                now=self.clock.now,
                large_threshold=self.large_upload_threshold,
                account=self.account,
            )
        self.clock.subscribe(self._on_clock)
        # A previous run may have left entries blocked: try them again (the breaker/pause re-closes if
        # the storage is still unreachable).
        await self.journal.unblock(BlockedReason.OFFLINE)
        await self.journal.unblock(BlockedReason.AUTH)
        control = await self.journal.control()
        self._control_generation = control.generation
        self._paused = control.paused
        await self.journal.set_control(engine_state="online", heartbeat=self.clock.now())
        await self._refresh_active()
        # The task group lives in its own task, so start() and stop() may be called from different
        # tasks (a server creates the engine in one request and closes it at shutdown).
        started = anyio.Event()
        self._stopping = anyio.Event()
        self._host = asyncio.get_running_loop().create_task(self._serve(started))
        await started.wait()
        log.info("engine.started", workers=self.workers, large=self.large_upload_limit)

    async def _serve(self, started: anyio.Event) -> None:
        stopping = self._stopping
        assert stopping is not None, "start() creates it"
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for i in range(self.workers):
                    # Without large-upload workers, the normal ones take large uploads too.
                    tg.start_soon(
                        self._worker, f"{self.name}/w{i}", False if self.large_upload_limit else None
                    )
                for i in range(self.large_upload_limit):
                    tg.start_soon(self._worker, f"{self.name}/large{i}", True)
                tg.start_soon(self._control_watch)
                started.set()
                await stopping.wait()
                tg.cancel_scope.cancel()
        except Exception:
            log.exception("engine.crashed")
            raise
        finally:
            self._tg = None
            started.set()

    async def stop(self) -> None:
        """Stop the workers. A command cut off mid-way goes back to queued (its postcondition check
        makes the next run safe)."""
        if self._host is not None and self._stopping is not None:
            self._stopping.set()
            with anyio.CancelScope(shield=True):
                try:
                    await self._host
                except Exception:
                    pass  # logged by _serve
            self._host = None
        if self._journal is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self._journal.set_control(engine_state="stopped")
                except Exception:  # closing must not fail because the db is gone
                    log.warning("engine.stop_control_failed")
                if self._own_journal:
                    await self._journal.close()
                    self._journal = None
        log.info("engine.stopped")

    # ------------------------------------------------------------------ submit

    async def submit_save(
        self,
        path: str,
        data: bytes | Path,
        base_etag: str | None = None,
        base_fileid: str | None = None,
    ) -> int:
        """Journal a save (durable when this returns) and return its entry id. `base_etag` is the
        version the user edited; None means "the version we last knew of" (remote_state), or a new file
        when we know of none."""
        blob = await self.journal.store_blob(data)
        base_etag, base_fileid = await self._default_base(path, base_etag, base_fileid)
        return await self._enqueue(Op.SAVE, path, blob=blob, base_etag=base_etag, base_fileid=base_fileid)

    async def _default_base(
        self, path: str, base_etag: str | None, base_fileid: str | None
    ) -> tuple[str | None, str | None]:
        """A save without a base of a file we know exists is not a create: base it on what we last
        knew, so a foreign change since then is detected, and create-then-delete coalescing cannot
        drop a delete of a file that exists on the storage. After our own pending delete (or rename
        away) of the path, a save creates it anew: no base, so the missing file is no conflict.
        After our own pending rename onto the path, the save is based on what the rename brings there
        (the source's version: a Move keeps the etag), not on what the storage holds at the path
        meanwhile (delete b, rename a -> b, save b was a conflict with ourselves); after our pending
        copy onto it, or rename of a pending save, on nothing (that content has no version yet)."""
        ov = self.overlay(path)
        if ov is not None and ov.deleted:
            return None, None
        if ov is not None and ov.op in (Op.RENAME, Op.COPY):
            if ov.op == Op.RENAME and ov.renamed_from and not ov.blob:
                source = await self.journal.remote_state(ov.renamed_from)
                if source is not None and source.kind == "file" and source.etag:
                    return source.etag, source.fileid
            # Our pending copy, or rename of a pending save, brings content that has no version on the
            # storage yet: nothing there to protect (the storage's version is the one we replace).
            return None, None
        if base_etag is None:
            known = await self.journal.remote_state(normalize_path(path))
            if known is not None and known.kind == "file" and known.etag:
                return known.etag, base_fileid or known.fileid
        return base_etag, base_fileid

    async def submit_mkdir(self, path: str) -> int:
        return await self._enqueue(Op.MKDIR, path, kind="directory")

    async def submit_delete(
        self,
        path: str,
        base_etag: str | None = None,
        base_fileid: str | None = None,
        kind: str | None = None,
        base_observed_at: float | None = None,
    ) -> int:
        """Journal a delete. `base_etag`/`base_fileid`: the version the user meant to delete (another
        version is a conflict). `base_observed_at`: when the caller Stat'ed it (engine clock, i.e.
        `time.time()`); a base at most `fresh_base_seconds` old lets the first run skip its own Stat."""
        return await self._enqueue(
            Op.DELETE, path, base_etag=base_etag, base_fileid=base_fileid, kind=kind or self._kind_of(path),
            extra=_observed(base_observed_at),
        )  # fmt: skip

    async def submit_rename(
        self,
        src: str,
        dst: str,
        base_fileid: str | None = None,
        kind: str | None = None,
        base_observed_at: float | None = None,
    ) -> int:
        """Journal a rename of `src` to `dst` (see `submit_delete` for the base arguments)."""
        return await self._enqueue(
            Op.RENAME, dst, src_path=src, base_fileid=base_fileid, kind=kind or self._kind_of(src),
            extra=_observed(base_observed_at),
        )  # fmt: skip

    async def submit_copy(self, src: str, dst: str) -> int:
        """Copy a file. When `src` has a pending save, its blob is copied (read-your-writes)."""
        ov = self.overlay(src)
        blob = None
        if ov is not None and not ov.deleted and ov.blob:
            blob = Blob(ov.blob, ov.size or 0, self.journal.blob_path(ov.blob))
        return await self._enqueue(Op.COPY, dst, src_path=src, blob=blob)

    async def submit_checkpoint(
        self, path: str, checkpoint_path: str, data: bytes | Path | Blob, checkpoint_id: str | None = None
    ) -> int:
        """Journal the snapshot `data` of `path`, to be written at `checkpoint_path`. A `Blob` is
        content already in the spool (`Journal.reuse_blob`)."""
        blob = data if isinstance(data, Blob) else await self.journal.store_blob(data)
        entry_id = await self._enqueue(Op.CHECKPOINT, checkpoint_path, src_path=path, blob=blob)
        if checkpoint_id is not None:
            await self.journal.add_checkpoint(
                path, checkpoint_id, blob, remote_path=checkpoint_path, entry_id=entry_id
            )
        return entry_id

    async def stage_chunk(self, path: str, chunk_no: int, data: bytes, client: str = "") -> Any:
        """A JupyterLab chunk (1, 2, ..., -1) of ``client``'s upload. Nothing reaches CS3 until
        `commit_staged`."""
        return await self.journal.stage_chunk(path, chunk_no, data, client)

    async def commit_staged(
        self, path: str, base_etag: str | None = None, base_fileid: str | None = None, client: str = ""
    ) -> int:
        blob = await self.journal.finish_staging(path, client)
        base_etag, base_fileid = await self._default_base(path, base_etag, base_fileid)
        return await self._enqueue(Op.SAVE, path, blob=blob, base_etag=base_etag, base_fileid=base_fileid)

    async def _enqueue(self, op: str, path: str, **kw: Any) -> int:
        entry = await self.journal.enqueue(op, normalize_path(path), **kw)
        self._log(entry, "enqueued", state=entry.state)
        if self._state != "online" and entry.state == State.QUEUED:
            await self._block_new(entry)
        await self._after_change()
        return entry.id

    async def _block_new(self, entry: Entry) -> None:
        """An entry journaled while the storage is unreachable (or the token refused) waits for it,
        and says so (`blocked(offline)` in `status`), like the entries the breaker blocked."""
        reason = BlockedReason.OFFLINE if self._state == "offline" else BlockedReason.AUTH
        await self._safe(self.journal.mark_blocked(entry.id, reason=reason))
        self.nudge()
        if self._state == "online":  # the breaker closed meanwhile: its unblock may have come first
            await self.journal.unblock(reason)

    def _kind_of(self, path: str) -> str:
        ov = self.overlay(path)
        return ov.kind if ov is not None else "file"

    # ------------------------------------------------------------------ waiting

    async def wait(self, entry_id: int, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (facade API)
        """Wait until the entry is applied: True when done (or made moot: superseded by a later save
        that is done, cancelled), False on timeout. Raises `ConflictError` / `FailedError`."""
        deadline = math.inf if timeout is None else timeout
        if await self._settled(entry_id):
            return True
        if deadline <= 0:
            return False
        with anyio.move_on_after(deadline):
            while True:
                since = self._transitions.generation
                if await self._settled(entry_id, cached=True):
                    return True
                await self._transitions.wait(since)
        return False

    async def _settled(self, entry_id: int, *, cached: bool = False) -> bool:
        """``cached``: first look at the cached active entries (refreshed before every transition is
        signalled): an entry still listed there as active is not settled, without a journal read. With
        many saves waiting at once, every transition wakes every waiter; this keeps each wake-up off the
        database."""
        if cached and self._active_states.get(entry_id) in State.ACTIVE:
            return False
        entry = await self.journal.outcome(entry_id)
        if entry.state in (State.DONE, State.CANCELLED, State.SUPERSEDED):
            return True
        if entry.state == State.CONFLICT:
            raise ConflictError(entry)
        if entry.state == State.FAILED:
            raise FailedError(entry)
        return False

    async def wait_idle(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until nothing is queued, running or retrying (blocked entries count as idle: they wait
        for the network or a token). True if idle, False on timeout."""
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                since = self._transitions.generation
                if not any(e.state in (State.QUEUED, State.RUNNING, State.RETRYING) for e in self._active):
                    return True
                await self._transitions.wait(since)
        return False

    # ------------------------------------------------------------------ views

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def shown_state(self) -> EngineState:
        """The state a user is shown: `state`, except that the storage counts as offline from the
        first connectivity failure on (the breaker opens only after `offline_threshold` of them, with
        backoff between: ~25 s in which a status bar said 'online' while saves could not land). Any
        answer of the storage resets the count, so this does not flap while an outage lasts."""
        if self._state == "online" and self._connectivity_failures > 0:
            return "offline"
        return self._state

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def health(self) -> Health:
        if self._host is None:
            return "stopped"
        if self._host.done():
            return "dead"
        return "journal_error" if self._journal_error is not None else "ok"

    @property
    def health_error(self) -> str | None:
        """Why the engine is not healthy, in the user's terms."""
        health = self.health
        if health == "journal_error":
            return f"the local journal cannot be written ({self._journal_error}); retrying"
        if health == "dead":
            return "the sync engine stopped unexpectedly"
        return None

    async def wait_ended(self) -> None:
        """Return when the engine's tasks have ended: after stop(), or when they died (a bug the
        engine could not survive). A host awaits this to restart a dead engine."""
        host = self._host
        if host is not None:
            await asyncio.wait([host])

    @property
    def paused(self) -> bool:
        return self._paused

    def blob_path(self, sha256: str) -> Path:
        return self.journal.blob_path(sha256)

    def active_entries(self) -> list[Entry]:
        """The cached active entries (journal order)."""
        return list(self._active)

    def progress(self) -> dict[int, Progress]:
        """Running uploads: entry id -> bytes sent / total."""
        return dict(self._progress)

    def overlay(self, path: str) -> Overlay | None:
        """Pending state of `path` (None: nothing pending, ask the storage)."""
        return overlay.lookup(self._view, normalize_path(path))

    def overlay_children(self, dir_path: str) -> dict[str, Overlay]:
        """Pending state of the direct children of `dir_path` (name -> overlay), deleted ones included
        (so listings can hide them)."""
        return overlay.children(self._view, normalize_path(dir_path))

    # ------------------------------------------------------------------ user actions

    async def entries(self, states: Iterable[str] | None = None, **kw: Any) -> list[Entry]:
        return await self.journal.entries(states, **kw)

    async def retry(self, entry_id: int, *, force: bool = False) -> Entry:
        entry = await self.journal.retry(entry_id, force=force)
        await self._after_change()
        return entry

    async def keep_mine(self, entry_id: int) -> Entry:
        entry = await self.journal.keep_mine(entry_id)
        await self._after_change()
        return entry

    async def discard(self, entry_id: int) -> Entry:
        entry = await self.journal.discard(entry_id)
        await self._after_change()
        return entry

    async def resolve(self, entry_id: int) -> Entry:
        entry = await self.journal.resolve(entry_id)
        await self._after_change()
        return entry

    def wake(self) -> None:
        self._wake.set()

    def on_finished(self, listener: Callable[[Entry, Any], None]) -> None:
        """Call `listener(entry, landed)` whenever a run of an entry ends (applied, parked or retried
        later), before waiters wake and before the entry leaves the overlay. A host caches what it read
        of the storage: this is where it forgets it, whether or not a request waited for the entry.
        ``landed``: when the run applied the entry, the item as the storage holds it now (the
        executor's last Stat, a ResourceInfo; None after a delete), else None."""
        self._finished_listeners.append(listener)

    # ------------------------------------------------------------------ workers

    def _on_clock(self) -> None:
        self._wake.set()

    async def _worker(self, worker_id: str, large: bool | None) -> None:
        while True:
            since = self._wake.generation
            if self._state != "online" or self._paused:
                await self._wake.wait(since)
                continue
            try:
                entry, due = await self._claim(worker_id, large, since)
                if entry is None:
                    await self._wake.wait(since, timeout=self.clock.seconds_until(due))
                    continue
                await self._run(entry, worker_id)
            except Exception as exc:
                # The journal itself failed (disk full, db locked for too long): keep the worker alive
                # and try again shortly; the entry, if any, stays running until recovery.
                self._journal_trouble(f"worker {worker_id}", exc)
                await self._wake.wait(self._wake.generation, timeout=1.0)

    async def _claim(
        self, worker_id: str, large: bool | None, since: int
    ) -> tuple[Entry | None, float | None]:
        """(a claimed entry, None) or (None, when something next becomes due). Every change wakes every
        idle worker; once one of them found nothing runnable since wake generation ``since``, the others
        with the same filter know the answer without a write transaction of their own (each save used to
        cost one claim transaction per idle worker, queued with the next save's commit)."""
        lock = self._claim_locks.setdefault(large, anyio.Lock())
        async with lock:
            idle = self._found_idle.get(large)
            if idle is not None and idle[0] == since and self.clock.seconds_until(idle[1]) > 0:
                return None, idle[1]
            entry = await self.journal.claim(worker_id, lease_seconds=self.lease_seconds, large=large)
            if entry is not None:
                return entry, None
            due = await self.journal.next_wakeup()
            self._found_idle[large] = (since, due)
            return None, due

    async def _run(self, entry: Entry, worker_id: str) -> None:
        started = time.monotonic()
        self._log(entry, "running", state=State.RUNNING, worker=worker_id)
        await self._after_change(refresh=True, transition=False)
        executor = commands.EXECUTORS[entry.op]
        outcome: Outcome | None = None
        failure: Exception | None = None
        landed: Any = None

        async def execute() -> None:
            # Caught here, inside the task group, so the error reaches the classifier unwrapped
            # (a task group would turn it into an ExceptionGroup).
            nonlocal outcome, failure
            try:
                outcome = await executor(entry, _Context(self))
            except Exception as exc:
                failure = exc
            finally:
                tg.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._renew_lease, entry, worker_id)
                tg.start_soon(execute)
        except anyio.get_cancelled_exc_class():
            self._progress.pop(entry.id, None)
            with anyio.CancelScope(shield=True):
                await self._safe(self.journal.requeue(entry.id, needs_check=True))
                self._log(entry, "requeued", state=State.QUEUED, duration=time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        try:
            if failure is not None:
                error = failure
                await self._persist("outcome", lambda: self._on_error(entry, error, duration))
            elif outcome is not None:
                # A merge made the entry carry new content: finish it as it is now.
                entry = outcome.entry or entry
                result, finished = outcome, entry
                await self._persist("outcome", lambda: self._on_success(finished, result, duration))
                landed = outcome.info if outcome.state == "done" else None
        finally:
            self._progress.pop(entry.id, None)
            self._persisted_progress.pop(entry.id, None)
            self._notify_finished(entry, landed)
            await self._after_change()

    def _notify_finished(self, entry: Entry, landed: Any) -> None:
        for listener in self._finished_listeners:
            try:
                listener(entry, landed)
            except Exception:  # a host's cache must not stop the engine
                log.exception("engine.listener_failed", entry_id=entry.id)

    async def _renew_lease(self, entry: Entry, worker_id: str) -> None:
        """Keep the lease of a long command (a big upload) alive."""
        while True:
            await self.clock.sleep(self.lease_seconds / 3)
            try:
                await self.journal.renew_lease(entry.id, worker_id, lease_seconds=self.lease_seconds)
            except Exception:
                log.exception("engine.lease_renewal_failed", entry_id=entry.id)

    async def _persist(self, where: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` (journal writes) until the journal takes it. A full disk or a database locked
        for too long must neither lose an outcome nor stop the engine: back off (1, 2, 4 ...
        `JOURNAL_RETRY_MAX` s on the engine clock) and try again; `health` shows it meanwhile. The
        steps are idempotent (a transition already made is dropped by `_safe`)."""
        delay = 1.0
        while True:
            try:
                await step()
            except JOURNAL_ERRORS as exc:
                self._journal_trouble(where, exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, JOURNAL_RETRY_MAX)
                continue
            self._journal_ok()
            return

    def _journal_trouble(self, where: str, exc: Exception) -> None:
        """A journal operation failed: remember it for `health`; log it with its traceback the first
        time, then at most every `JOURNAL_LOG_EVERY` s (a full disk fails every try)."""
        first = self._journal_error is None
        self._journal_error = str(exc) or type(exc).__name__
        self._journal_failures += 1
        self.changed.set()
        now = time.monotonic()
        if first:
            self._journal_logged_at = now
            log.error("engine.journal_error", where=where, error=self._journal_error, exc_info=exc)
        elif now - self._journal_logged_at >= JOURNAL_LOG_EVERY:
            self._journal_logged_at = now
            log.warning(
                "engine.journal_error_continues",
                where=where,
                error=self._journal_error,
                failures=self._journal_failures,
            )

    def _journal_ok(self) -> None:
        if self._journal_error is not None:
            log.info("engine.journal_recovered", failures=self._journal_failures)
            self._journal_error = None
            self._journal_failures = 0
            self.changed.set()

    async def _safe(self, aw: Any) -> Any:
        """A journal transition whose entry may have been discarded meanwhile (CLI): drop the result."""
        try:
            return await aw
        except (InvalidTransition, UnknownEntry) as exc:
            log.info("engine.transition_dropped", reason=str(exc))
            return None

    # ------------------------------------------------------------------ outcomes

    async def _on_success(self, entry: Entry, outcome: Outcome, duration: float) -> None:
        self._connectivity_failures = 0
        if outcome.state == "conflict":
            await self._safe(
                self.journal.mark_conflict(
                    entry.id, conflict_path=outcome.conflict_path, error=outcome.message
                )
            )
            self._log(
                entry,
                "conflict",
                state=State.CONFLICT,
                duration=duration,
                error_kind="conflict",
                conflict_path=outcome.conflict_path,
            )
            return
        info = outcome.info
        remote = None
        kw: dict[str, Any] = {}
        if info is not None:
            mtime = info.mtime_ns / 1e9
            kind = "directory" if info.type == "directory" else "file"
            presented = None
            if entry.op in (Op.SAVE, Op.COPY, Op.CHECKPOINT) and kind == "file":
                # Keep showing the last_modified the overlay showed while pending, so JupyterLab does
                # not see a "newer" file than the one it saved.
                presented = entry.presented_mtime or entry.created_at
            remote = RemoteState.of(entry.path, info, self.clock.now(), presented_mtime=presented)
            kw = dict(
                result_etag=info.etag,
                result_mtime=mtime,
                result_fileid=str(info.file_id),
                presented_mtime=presented,
            )
        if entry.op == Op.RENAME and entry.src_path:
            await self.journal.move_remote_state(entry.src_path, entry.path)
        done = await self._safe(
            self.journal.mark_done(
                entry.id,
                remote=remote,
                cache_blob=bool(entry.blob) and not entry.large and entry.op in (Op.SAVE, Op.CHECKPOINT),
                **kw,
            )
        )
        if entry.op == Op.DELETE:
            await self.journal.delete_remote_state(entry.path, recursive=True)
        if done is not None:
            self._log(entry, "done", state=State.DONE, duration=duration, already_done=outcome.already_done)
        if self._state == "offline":
            await self._close_breaker()

    async def _on_error(self, entry: Entry, exc: Exception, duration: float) -> None:
        kind = getattr(exc, "kind", type(exc).__name__)
        message = str(exc)
        self._last_error = message
        if isinstance(exc, errors.Unauthenticated):
            # Auth errors never become failed: park the entry (no attempt) and pause the queue.
            await self._safe(self.journal.mark_blocked(entry.id, reason=BlockedReason.AUTH, error=message))
            self._log(
                entry, "blocked", state=State.BLOCKED, reason="auth", duration=duration, error_kind=kind
            )
            await self._enter_auth_pause(exc)
            return
        if isinstance(exc, errors.Transient) and exc.connectivity:
            self._connectivity_failures += 1
            if self._state == "offline" or self._connectivity_failures >= self.offline_threshold:
                await self._safe(
                    self.journal.mark_blocked(entry.id, reason=BlockedReason.OFFLINE, error=message)
                )
                self._log(
                    entry,
                    "blocked",
                    state=State.BLOCKED,
                    reason="offline",
                    duration=duration,
                    error_kind="connectivity",
                )
                await self._open_breaker(message)
                return
            await self._retry_later(entry, message, "connectivity", duration)
            return
        # The storage answered (with an error): the connection is fine, the failures are not consecutive.
        self._connectivity_failures = 0
        if isinstance(exc, errors.Transient | errors.Locked | errors.QuotaExceeded):
            # Locked: someone else holds the file; quota: someone may free space. Both resolve by
            # themselves, so they wait with backoff like a transient error instead of failing.
            await self._retry_later(entry, message, kind, duration)
            return
        if isinstance(exc, errors.PermissionDenied):
            # A refusal the storage did not announce before the entry was journaled (a share's role
            # changed, ACLs): parked with a plain reason that `status` and the Sync panel show.
            verb = _REFUSED.get(entry.op, "change")
            await self._fail(entry, f"permission denied: you may not {verb} {entry.path}", kind, duration)
            return
        if isinstance(exc, CommandError | errors.CS3Error):
            await self._fail(entry, message, kind, duration)
            return
        # A bug, not a storage answer: log it with its traceback, retry a few times, then park it.
        log.exception("engine.internal_error", entry_id=entry.id, op=entry.op, path=entry.path)
        if entry.attempts + 1 >= MAX_INTERNAL_ERRORS:
            await self._fail(entry, f"internal error: {message}", "internal", duration)
        else:
            await self._retry_later(entry, f"internal error: {message}", "internal", duration)

    async def _fail(self, entry: Entry, message: str, kind: str, duration: float) -> None:
        await self._safe(self.journal.mark_failed(entry.id, error=message, error_kind=kind))
        self._log(entry, "failed", state=State.FAILED, duration=duration, error_kind=kind)

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after `attempts` earlier failures: min(max, base * 2^attempts)
        with +-jitter, so a crowd of entries does not come back at the same instant."""
        delay = min(self.backoff_max, self.backoff_base * (2 ** min(attempts, 32)))
        jitter = 1.0 + random.uniform(-self.backoff_jitter, self.backoff_jitter)
        return min(self.backoff_max, delay * jitter)

    async def _retry_later(self, entry: Entry, message: str, kind: str, duration: float) -> None:
        """Retry with backoff, or park the entry as failed once it has used its `max_attempts` (no
        retry loop is unbounded: a lock never released or a quota never freed must reach the user)."""
        if entry.attempts + 1 >= self.max_attempts:
            await self._fail(entry, f"gave up after {entry.attempts + 1} attempts: {message}", kind, duration)
            return
        delay = self.backoff(entry.attempts)
        await self._safe(
            self.journal.mark_retry(
                entry.id, error=message, error_kind=kind, next_attempt_at=self.clock.now() + delay
            )
        )
        self._log(
            entry,
            "retrying",
            state=State.RETRYING,
            duration=duration,
            error_kind=kind,
            retry_in=round(delay, 3),
        )

    # ------------------------------------------------------------------ offline breaker

    async def _open_breaker(self, message: str) -> None:
        if self._state == "online":
            self._state = "offline"
            try:
                n = await self.journal.block_runnable(BlockedReason.OFFLINE, error=message)
                await self.journal.set_control(engine_state="offline", last_error=message)
            except BaseException:
                self._state = "online"  # not recorded: the caller tries again
                raise
            log.warning("engine.offline", blocked=n, error_kind="connectivity")
            self.changed.set()
        if not self._probe_running and self._tg is not None:
            self._probe_running = True
            self._tg.start_soon(self._probe)

    async def _probe(self) -> None:
        """Stat the home folder every `offline_probe_interval` s (doubling up to `offline_probe_max`)
        until the storage answers, then reopen the queue."""
        interval = self.offline_probe_interval
        try:
            while self._state == "offline":
                await self._until_probe_due(interval)
                if self._state != "offline":
                    return  # a request of the host proved the storage back meanwhile
                self._last_probe_at = self.clock.now()
                self._nudges_seen = self._nudge.generation
                reachable = await self._probe_once()
                self.probes += 1
                self.changed.set()
                if reachable is None:
                    return  # auth pause took over
                if reachable:
                    await self._persist("reconnect", self._close_breaker)
                    return
                interval = min(interval * 2, self.offline_probe_max)
                log.info("engine.probe_failed", next_in=interval)
        finally:
            self._probe_running = False

    async def _until_probe_due(self, interval: float) -> None:
        """Wait `interval`, or less when the host nudges (someone uses the storage): then the probe
        runs as soon as `probe_nudge_min` has passed since the last one. Without this, the queue
        waited for the next timed probe (up to `offline_probe_max`) after the storage came back."""
        since = self._nudges_seen  # a nudge since the last probe counts, even before this wait began
        async with anyio.create_task_group() as tg:

            async def timed() -> None:
                await self.clock.sleep(interval)
                tg.cancel_scope.cancel()

            async def nudged() -> None:
                await self._nudge.wait(since)
                wait = self._last_probe_at + self.probe_nudge_min - self.clock.now()
                if wait > 0:
                    await self.clock.sleep(wait)
                tg.cancel_scope.cancel()

            tg.start_soon(timed)
            tg.start_soon(nudged)

    def nudge(self) -> None:
        """The host is using the storage while it is unreachable (a read answered from what we know,
        a save journaled): probe it now (at most every `probe_nudge_min` s) rather than at the next
        timed probe, so the queue reopens within a moment of the storage coming back."""
        if self._state == "offline":
            self._nudge.set()

    def storage_answered(self) -> None:
        """A request of the host reached the storage: proof that it is back. Reopen the queue now
        instead of at the next probe. Online, it ends a run of connectivity failures (`shown_state`
        says online again; the breaker counts consecutive failures)."""
        if self._state == "online" and self._connectivity_failures:
            self._connectivity_failures = 0
            self.changed.set()
        if self._state == "offline" and not self._reopening and self._tg is not None:
            self._reopening = True
            self._tg.start_soon(self._reopen)

    async def _reopen(self) -> None:
        try:
            await self._persist("reconnect", self._close_breaker)
        finally:
            self._reopening = False

    async def _probe_once(self) -> bool | None:
        """True: the storage answered (even with an error); False: still unreachable; None: auth."""
        try:
            if self._home is None:
                self._home = await self.client.home()
            await self.client.stat(self._home)
        except errors.Unauthenticated as exc:
            await self._enter_auth_pause(exc)
            return None
        except errors.Transient:
            return False
        except errors.CS3Error:
            return True
        return True

    async def _close_breaker(self) -> None:
        if self._state != "offline":
            return
        self._state = "online"
        try:
            n = await self.journal.unblock(BlockedReason.OFFLINE)
            await self.journal.set_control(engine_state="online", last_error=None)
        except BaseException:
            self._state = "offline"  # still blocked in the journal: the caller tries again
            raise
        self._connectivity_failures = 0
        log.info("engine.online", unblocked=n)
        await self._after_change()

    # ------------------------------------------------------------------ auth pause

    async def _enter_auth_pause(self, exc: errors.CS3Error) -> None:
        if self._state != "auth":
            previous, self._state = self._state, "auth"
            try:
                n = await self.journal.block_runnable(BlockedReason.AUTH, error=str(exc))
                await self.journal.set_control(engine_state="auth", last_error=str(exc))
            except BaseException:
                self._state = previous  # not recorded: the caller tries again
                raise
            log.warning("engine.auth_paused", blocked=n, error_kind=getattr(exc, "kind", "auth"))
            self.changed.set()
        if not self._auth_watch_running and self._tg is not None:
            self._auth_watch_running = True
            self._tg.start_soon(self._auth_watch, exc)

    async def _auth_watch(self, exc: errors.CS3Error) -> None:
        """Wait until the token file changes (the client knows which file and what it held), then
        resume the whole queue."""
        try:
            if isinstance(exc, errors.AuthBlocked):
                await exc.wait_for_change()
            else:
                await self._wait_token_file_change()
            await self._persist("auth_resume", self._resume_after_auth)
        finally:
            self._auth_watch_running = False

    async def _resume_after_auth(self) -> None:
        n = await self.journal.unblock(BlockedReason.AUTH)
        # If the pause started from an offline probe, those entries come back too (and the breaker
        # re-opens if the storage is still unreachable).
        n += await self.journal.unblock(BlockedReason.OFFLINE)
        await self.journal.set_control(engine_state="online", last_error=None)
        self._state = "online"
        self._connectivity_failures = 0
        log.info("engine.auth_resumed", unblocked=n)
        await self._after_change()

    async def _wait_token_file_change(self) -> None:
        path = getattr(getattr(self.client, "config", None), "token_path", None)
        if not path:
            await anyio.sleep_forever()
        p = await anyio.Path(str(path)).expanduser()

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

    # ------------------------------------------------------------------ control (CLI) and bookkeeping

    async def _control_watch(self) -> None:
        """Notice what other processes changed (`cs3sync pause/resume/retry/discard`): they bump the
        control row's generation. A cross-process change has no event we could wait on, so this is the
        one polling loop; it also keeps the heartbeat that `status` shows fresh."""
        while True:
            await anyio.sleep(self.control_poll_interval)
            try:
                control = await self.journal.control()
                if control.generation != self._control_generation or control.paused != self._paused:
                    self._control_generation = control.generation
                    self._paused = control.paused
                    log.info("engine.control_changed", paused=self._paused)
                    await self._after_change(full=True)  # its writes are not in take_changes
                await self.journal.set_control(heartbeat=self.clock.now())
            except Exception as exc:
                self._journal_trouble("control poll", exc)
            else:
                self._journal_ok()

    async def _refresh_active(self, *, full: bool = False) -> None:
        """Bring the cached active entries and their overlay view up to date after a change: the
        entries this process's writes changed since the last refresh (`Journal.take_changes`), or all
        of them (``full``: at start, and after another process wrote to the journal). Requests that
        queue up behind a running refresh are served by one refresh that starts after all of them."""
        assert self._active_lock is not None
        self._active_wanted += 1
        wanted = self._active_wanted
        async with self._active_lock:
            if self._active_loaded >= wanted and not full:
                return  # a refresh that started after this request has completed
            covers = self._active_wanted
            if full or not self._tracking:
                if not self._tracking and self.journal.owner:
                    await self.journal.track_changes()
                    self._tracking = True
                await self.journal.take_changes()  # covered by the full load that follows
                self._load_active(await self.journal.active_entries())
            else:
                self._apply_changes(await self.journal.take_changes())
            self._active_loaded = covers

    def _load_active(self, active: list[Entry]) -> None:
        self._active_by_id = {e.id: e for e in active}
        self._ids_by_path = {}
        for e in active:
            self._ids_by_path.setdefault(e.path, set()).add(e.id)
        self._dependent = sum(1 for e in active if overlay.depends_on_others(e))
        self._active = active
        self._view = overlay.fold(active)
        self._active_states = {e.id: e.state for e in active}

    def _apply_changes(self, changed: dict[int, Entry | None]) -> None:
        """Apply changed rows (None: gone) to the cached active entries. The view is refolded only
        while an entry that depends on others is among them; otherwise each touched path takes the
        state of its newest active entry, which is what the fold gives."""
        if not changed:
            return
        touched: set[str] = set()
        dependent_before = self._dependent
        for entry_id, row in changed.items():
            old = self._active_by_id.pop(entry_id, None)
            if old is not None:
                touched.add(old.path)
                self._ids_by_path[old.path].discard(entry_id)
                self._dependent -= overlay.depends_on_others(old)
            if row is not None and row.state in State.ACTIVE:
                self._active_by_id[entry_id] = row
                touched.add(row.path)
                self._ids_by_path.setdefault(row.path, set()).add(entry_id)
                self._dependent += overlay.depends_on_others(row)
        self._active = [self._active_by_id[i] for i in sorted(self._active_by_id)]
        self._active_states = {e.id: e.state for e in self._active}
        if self._dependent or dependent_before:
            self._view = overlay.fold(self._active)
            return
        for path in touched:
            ids = self._ids_by_path.get(path)
            newest = overlay.standalone(self._active_by_id[max(ids)]) if ids else None
            if newest is not None:
                self._view[path] = newest
            else:
                self._ids_by_path.pop(path, None)
                self._view.pop(path, None)

    async def _after_change(
        self, *, refresh: bool = True, transition: bool = True, full: bool = False
    ) -> None:
        if refresh:
            await self._refresh_active(full=full)
        if transition:
            self._transitions.set()
        self._wake.set()
        self.changed.set()

    def _log(self, entry: Entry, event: str, **kw: Any) -> None:
        log.info(
            f"entry.{event}",
            entry_id=entry.id,
            op=entry.op,
            path=entry.path,
            src_path=entry.src_path,
            attempt=entry.attempts,
            **kw,
        )

    # ------------------------------------------------------------------ context for executors

    async def _recorded_session(self, entry: Entry) -> Any:
        rec = await self.journal.upload_session(entry.id)
        if rec is None or rec.protocol != "tus" or not rec.url:
            return None  # a simple PUT is never resumed: initiate again
        from cs3sync.cs3.types import UploadSession

        return UploadSession(
            protocol="tus",
            url=rec.url,
            token=rec.token or "",
            expires_at=rec.token_expires,
            offset=rec.offset,
            length=rec.total,
        )

    async def _record_session(self, entry: Entry, session: Any) -> None:
        rec = await self.journal.upload_session(entry.id)
        if rec is not None and rec.url == session.url:
            await self.journal.update_upload(entry.id, offset=session.offset)
        else:
            await self.journal.record_upload_session(
                entry.id,
                protocol=session.protocol,
                url=session.url,
                token=session.token,
                token_expires=session.expires_at,
                total=session.length,
                offset=session.offset,
            )
        self._set_progress(entry, session.offset, session.length)

    def _set_progress(self, entry: Entry, sent: int, total: int) -> None:
        previous = self._progress.get(entry.id)
        self._progress[entry.id] = Progress(entry.id, entry.path, sent, total)
        self.changed.set()
        # `status --watch` runs in another process: persist progress now and then (best effort).
        last = self._persisted_progress.get(entry.id, 0)
        step = max(1 << 20, total // 100)
        if self._tg is not None and (sent - last >= step or (sent == total and previous is not None)):
            self._persisted_progress[entry.id] = sent
            self._tg.start_soon(self._persist_progress, entry.id, sent)

    async def _persist_progress(self, entry_id: int, sent: int) -> None:
        try:
            await self.journal.update_upload(entry_id, sent=sent)
        except Exception:  # progress is cosmetic; never let it disturb the upload
            log.debug("engine.progress_not_persisted", entry_id=entry_id)

    async def _is_own_version(self, entry: Entry, info: Any) -> bool:
        """The remote version was produced by us: an earlier done entry on this path left that etag, or
        its content equals a superseded save of ours that had already reached the storage."""
        for e in await self.journal.entries([State.DONE], prefix=entry.path, newest_first=True, limit=50):
            if e.path == entry.path and e.id < entry.id and e.result_etag == info.etag:
                return True
        if not info.checksum:
            return False
        for sha in entry.prior_blobs:
            p = self.journal.blob_path(sha)
            if await anyio.Path(p).exists() and await commands.checksum_matches(info.checksum, p):
                return True
        return False


def _account_label(client: Any) -> str | None:
    """The account label `status` shows ("user @ host"), from the client settings (no secrets)."""
    config = getattr(client, "config", None)
    user, host = getattr(config, "client_id", None), getattr(config, "host", None)
    return f"{user} @ {host}" if user and host else None


def _observed(base_observed_at: float | None) -> dict[str, float] | None:
    return None if base_observed_at is None else {"base_observed_at": base_observed_at}


class _Context:
    """What executors may use (commands.CommandContext), bound to one engine."""

    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine
        self.client = engine.client

    def blob_path(self, sha256: str) -> Path:
        return self._engine.journal.blob_path(sha256)

    def spool_tmp_dir(self) -> Path:
        return self._engine.journal.dir / "spool" / "tmp"

    def now(self) -> float:
        return self._engine.clock.now()

    def lock_for(self, path: str) -> Any:
        provider = self._engine.lock_provider
        return provider(path) if provider is not None else None

    async def recorded_session(self, entry: Entry) -> Any:
        return await self._engine._recorded_session(entry)

    async def record_session(self, entry: Entry, session: Any) -> None:
        await self._engine._record_session(entry, session)

    async def is_own_version(self, entry: Entry, info: Any) -> bool:
        return await self._engine._is_own_version(entry, info)

    def progress(self, entry: Entry, sent: int, total: int) -> None:
        self._engine._set_progress(entry, sent, total)

    def crash_point(self, label: str) -> None:
        crash_point(label)

    @property
    def merge_enabled(self) -> bool:
        return self._engine.merge_conflicts

    async def read_blob(self, sha256: str) -> bytes:
        return await anyio.Path(self.blob_path(sha256)).read_bytes()

    async def kept_content(self, path: str, etag: str) -> bytes | None:
        """The bytes of version ``etag`` of ``path`` if the journal kept them (our own last write)."""
        known = await self._engine.journal.remote_state(path)
        if known is None or known.etag != etag or not known.cached_blob:
            return None
        try:
            return await self.read_blob(known.cached_blob)
        except OSError:
            return None

    async def rebase(self, entry: Entry, data: bytes, info: Any, merge: dict[str, Any]) -> Entry:
        engine = self._engine
        blob = await engine.journal.store_blob(data)
        rebased = await engine.journal.rebase_save(
            entry.id,
            blob,
            base_etag=info.etag,
            base_fileid=str(info.file_id),
            # Newer than what the editor saved by more than JupyterLab's 500 ms tolerance, so its "File
            # Changed" check sees the merge (a time at most 1 s ahead of the clock; presented times are ours).
            presented_mtime=max(
                self.now(), (entry.presented_mtime or entry.created_at) + MERGE_PRESENTED_STEP
            ),
            merge=merge,
        )
        engine._log(entry, "merged", state=State.RUNNING, note=merge.get("message"))
        # Read-your-writes: the overlay serves the merged content from now on.
        await engine._after_change(transition=False)
        return rebased

    async def note_merge(self, entry: Entry, merge: dict[str, Any]) -> None:
        await self._engine.journal.note_merge(entry.id, merge)

    def fresh_base(self, entry: Entry) -> bool:
        """First run of a rename/delete whose caller Stat'ed the item moments ago (`base_observed_at`):
        that Stat is recent enough to act on without another (saves two RPCs per rename). Any retry,
        restart, or older or undated base does the full postcondition check."""
        observed = entry.extra.get("base_observed_at")
        return (
            observed is not None
            and entry.claims <= 1
            and entry.attempts == 0
            and not entry.needs_check
            and (entry.base_fileid is not None or entry.base_etag is not None)
            and self.now() - float(observed) <= self._engine.fresh_base_seconds
        )
