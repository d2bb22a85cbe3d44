"""`SyncEngine`: applies journaled commands to CS3, durably and in order. The facade the contents manager
codes against (docs/engine.md); it owns the journal's lifecycle, the submit and wait API, the cache of
active entries the overlay is folded from, and the signals, and composes its parts:

- `Workers` (workers.py): claim, run the executor, renew the lease;
- `Outcomes` (outcomes.py): classify each result or failure into one journal transition;
- `Connectivity` (connectivity.py): the offline breaker, its probe, the auth pause;
- `ControlWatch` (control.py): what the CLI changed, and the heartbeat;
- `ProgressTracker` (progress.py), `ExecutorContext` (context.py), `JournalHealth` (journal_health.py).

Every transition is a structlog event with entry id, op, path, attempt, duration and error kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, Literal

import anyio

from cs3sync.clock import Clock, Signal
from cs3sync.commands import CREATE
from cs3sync.cs3 import CS3Client
from cs3sync.engine.active import ActiveEntries
from cs3sync.engine.connectivity import Connectivity
from cs3sync.engine.control import ControlWatch
from cs3sync.engine.errors import ConflictError, FailedError
from cs3sync.engine.host import EngineState
from cs3sync.engine.journal_health import JournalHealth, unless_moot
from cs3sync.engine.outcomes import MAX_ATTEMPTS, Outcomes
from cs3sync.engine.priority import DEFAULT_YIELD_LIMIT, RequestPriority
from cs3sync.engine.progress import Progress, ProgressTracker
from cs3sync.engine.workers import Workers
from cs3sync.journal import (
    DEFAULT_LARGE_THRESHOLD,
    Blob,
    BlockedReason,
    Entry,
    Journal,
    Op,
    State,
)
from cs3sync.journal.paths import normalize_path
from cs3sync.logs import get_logger
from cs3sync.overlay import Overlay

log = get_logger("cs3sync.engine")

#: Saves up to this size store their content while their enqueue writes its rows (`Journal.write_blob`).
OVERLAPPED_STORE_MAX = 1024 * 1024

#: "ok"; "journal_error": journal writes keep failing (disk full?), the engine retries them;
#: "dead": the engine's tasks ended without stop() (a bug; its host restarts it); "stopped".
Health = Literal["ok", "journal_error", "dead", "stopped"]


class SyncEngine:
    """Journal + workers. `async with SyncEngine(client, journal_dir=...) as engine: ...`."""

    def __init__(
        self,
        client: CS3Client,
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
        request_priority_limit: float = DEFAULT_YIELD_LIMIT,
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

        self._wake = Signal()  # workers: something may be runnable
        self._transitions = Signal()  # waiters: an entry changed state
        self.changed = Signal()  # UIs: anything visible changed (entries, state, progress)
        self.active = ActiveEntries(self)  # what reads overlay and waiters check
        #: Workers hold back their next step while a request journals a change (priority.py).
        self.priority = RequestPriority(request_priority_limit)
        self._paused = False
        # The parts (each gets this engine as its `EngineHost`).
        self.journal_health = JournalHealth(self.clock, self.changed)
        self.connectivity = Connectivity(self, self.journal_health)
        self.outcomes = Outcomes(self, self.connectivity)
        self.progress_tracker = ProgressTracker(self)
        self.control_watch = ControlWatch(self, self.journal_health)
        self.worker_pool = Workers(
            self, self._wake, self.connectivity, self.outcomes, self.journal_health, self.progress_tracker
        )

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
        self.active.start()
        self.connectivity.reset()
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
        await self.control_watch.load()
        await self.journal.set_control(engine_state="online", heartbeat=self.clock.now())
        await self.active.refresh()
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
                        self.worker_pool.run, f"{self.name}/w{i}", False if self.large_upload_limit else None
                    )
                for i in range(self.large_upload_limit):
                    tg.start_soon(self.worker_pool.run, f"{self.name}/large{i}", True)
                tg.start_soon(self.control_watch.run)
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
        *,
        create: bool = False,
    ) -> int:
        """Journal a save (durable when this returns) and return its entry id. `base_etag` is the
        version the user edited; None means "the version we last knew of" (remote_state), or a new file
        when we know of none. ``create``: the caller saw no file at `path` on the storage. Unless we know
        a version there after all, or something of ours is pending at the path, the entry is then a
        create (``extra[CREATE]``): a file someone else makes there before it is applied becomes a
        conflict copy instead of being overwritten (`commands._write_content`)."""
        with self.priority.request():
            installing: asyncio.Task[None] | None = None
            if isinstance(data, bytes) and len(data) <= OVERLAPPED_STORE_MAX:
                # The blob is fsynced and renamed into place while the enqueue writes its rows; the
                # commit waits for both (a bigger blob would hold up the saves that share its commit).
                blob, installing = await self.journal.write_blob(data)
            else:
                blob = await self.journal.store_blob(data)
            try:
                pending = self.overlay(path)
                base_etag, base_fileid = await self._default_base(path, base_etag, base_fileid)
                # Only with nothing of ours pending at the path: a pending save, rename or copy of ours
                # may put a file there first that the check could not tell from someone else's.
                is_create = create and pending is None and base_etag is None and base_fileid is None
                return await self._enqueue(
                    Op.SAVE,
                    path,
                    blob=blob,
                    base_etag=base_etag,
                    base_fileid=base_fileid,
                    installing=installing,
                    extra={CREATE: True} if is_create else None,
                )
            finally:
                if installing is not None and not installing.done():  # the enqueue never came to it
                    with contextlib.suppress(Exception):
                        await installing

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
        with self.priority.request():
            entry = await self.journal.enqueue(op, normalize_path(path), **kw)
            self.log_entry(entry, "enqueued", state=entry.state)
            if self.connectivity.state != "online" and entry.state == State.QUEUED:
                await self._block_new(entry)
            await self.after_change()
            return entry.id

    async def _block_new(self, entry: Entry) -> None:
        """An entry journaled while the storage is unreachable (or the token refused) waits for it,
        and says so (`blocked(offline)` in `status`), like the entries the breaker blocked."""
        reason = BlockedReason.OFFLINE if self.connectivity.state == "offline" else BlockedReason.AUTH
        await unless_moot(self.journal.mark_blocked(entry.id, reason=reason))
        self.nudge()
        if (
            self.connectivity.state == "online"
        ):  # the breaker closed meanwhile: its unblock may have come first
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
                if await self._settled(entry_id):
                    return True
                await self._transitions.wait(since)
        return False

    async def _settled(self, entry_id: int) -> bool:
        """First the cached active entries (refreshed before every transition is signalled): an entry
        still listed there as active is not settled, without a journal read. With many saves waiting at
        once, every transition wakes every waiter; and a save's reply asks this of the entry it has just
        journaled. Both stay off the database."""
        if self.active.states.get(entry_id) in State.ACTIVE:
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
                if not any(
                    state in (State.QUEUED, State.RUNNING, State.RETRYING)
                    for state in self.active.states.values()
                ):
                    return True
                await self._transitions.wait(since)
        return False

    # ------------------------------------------------------------------ views

    @property
    def state(self) -> EngineState:
        return self.connectivity.state

    @property
    def shown_state(self) -> EngineState:
        """The state a user is shown: `state`, except that the storage counts as offline from the
        first connectivity failure on (the breaker opens only after `offline_threshold` of them, with
        backoff between: ~25 s in which a status bar said 'online' while saves could not land). Any
        answer of the storage resets the count, so this does not flap while an outage lasts."""
        return self.connectivity.shown_state

    @property
    def last_error(self) -> str | None:
        return self.outcomes.last_error

    @property
    def probes(self) -> int:
        """Probes made so far: offline, or nudged while entries wait out a connectivity backoff
        (observable by tests and `status`)."""
        return self.connectivity.probes

    @property
    def health(self) -> Health:
        if self._host is None:
            return "stopped"
        if self._host.done():
            return "dead"
        return "journal_error" if self.journal_health.error is not None else "ok"

    @property
    def health_error(self) -> str | None:
        """Why the engine is not healthy, in the user's terms."""
        health = self.health
        if health == "journal_error":
            return f"the local journal cannot be written ({self.journal_health.error}); retrying"
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

    def set_paused(self, paused: bool) -> None:
        self._paused = paused

    def blob_path(self, sha256: str) -> Path:
        return self.journal.blob_path(sha256)

    def active_entries(self) -> list[Entry]:
        """The cached active entries (journal order)."""
        return list(self.active.entries)

    def progress(self) -> dict[int, Progress]:
        """Running uploads: entry id -> bytes sent / total."""
        return self.progress_tracker.snapshot()

    def overlay(self, path: str) -> Overlay | None:
        """Pending state of `path` (None: nothing pending, ask the storage)."""
        return self.active.lookup(normalize_path(path))

    def overlay_children(self, dir_path: str) -> dict[str, Overlay]:
        """Pending state of the direct children of `dir_path` (name -> overlay), deleted ones included
        (so listings can hide them)."""
        return self.active.children(normalize_path(dir_path))

    # ------------------------------------------------------------------ user actions

    async def entries(self, states: Iterable[str] | None = None, **kw: Any) -> list[Entry]:
        return await self.journal.entries(states, **kw)

    async def retry(self, entry_id: int, *, force: bool = False) -> Entry:
        entry = await self.journal.retry(entry_id, force=force)
        await self.after_change()
        return entry

    async def keep_mine(self, entry_id: int) -> Entry:
        entry = await self.journal.keep_mine(entry_id)
        await self.after_change()
        return entry

    async def discard(self, entry_id: int) -> Entry:
        entry = await self.journal.discard(entry_id)
        await self.after_change()
        return entry

    async def resolve(self, entry_id: int) -> Entry:
        entry = await self.journal.resolve(entry_id)
        await self.after_change()
        return entry

    def wake(self) -> None:
        self._wake.set()

    def on_finished(self, listener: Callable[[Entry, Any], None]) -> None:
        """Call `listener(entry, landed)` whenever a run of an entry ends (applied, parked or retried
        later), before waiters wake and before the entry leaves the overlay. A host caches what it read
        of the storage: this is where it forgets it, whether or not a request waited for the entry.
        ``landed``: when the run applied the entry, the item as the storage holds it now (the
        executor's last Stat, a ResourceInfo; None after a delete), else None."""
        self.worker_pool.finished_listeners.append(listener)

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after `attempts` earlier failures (see `Outcomes.backoff`)."""
        return self.outcomes.backoff(attempts)

    def nudge(self) -> None:
        """The host is using the storage while it is unreachable (a read answered from what we know,
        a save journaled): probe it now (at most every `probe_nudge_min` s) rather than at the next
        timed probe, so the queue reopens within a moment of the storage coming back. Online, while
        entries wait out a backoff after a connectivity failure, the same: one Stat of the home folder
        (at most every `probe_nudge_min` s) whose answer makes them due."""
        self.connectivity.nudge()

    def storage_answered(self) -> None:
        """A request of the host reached the storage: proof that it is back. Reopen the queue now
        instead of at the next probe. Online, it ends a run of connectivity failures (`shown_state`
        says online again; the breaker counts consecutive failures), and entries waiting out a backoff
        after a connectivity failure are due at once (attempts unchanged; see `Connectivity`)."""
        self.connectivity.storage_answered()

    # ------------------------------------------------------------------ for the parts (EngineHost)

    def spawn(self, task: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> bool:
        if self._tg is None:
            return False
        self._tg.start_soon(task, *args)
        return True

    async def requests_first(self) -> None:
        """A worker's next step waits while a request journals a change (see `RequestPriority`)."""
        await self.priority.turn()

    def _on_clock(self) -> None:
        self._wake.set()

    async def after_change(
        self, *, refresh: bool = True, transition: bool = True, full: bool = False
    ) -> None:
        """Something changed in the journal (``full``: written by another process too): refresh the
        active entries and the overlay, wake workers and waiters, tell UIs."""
        if refresh:
            await self.active.refresh(full=full)
        if transition:
            self._transitions.set()
        self._wake.set()
        self.changed.set()

    def log_entry(self, entry: Entry, event: str, **kw: Any) -> None:
        log.info(
            f"entry.{event}",
            entry_id=entry.id,
            op=entry.op,
            path=entry.path,
            src_path=entry.src_path,
            attempt=entry.attempts,
            **kw,
        )


def _account_label(client: CS3Client) -> str | None:
    """The account label `status` shows ("user @ host"), from the client settings (no secrets)."""
    user, host = client.config.client_id, client.config.host
    return f"{user} @ {host}" if user and host else None


def _observed(base_observed_at: float | None) -> dict[str, float] | None:
    return None if base_observed_at is None else {"base_observed_at": base_observed_at}
