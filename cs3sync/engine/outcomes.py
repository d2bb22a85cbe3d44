"""What becomes of an entry after its executor ran: every result and every failure is classified into
one journal transition.

- applied -> done (with what the storage now holds, recorded in remote_state);
- a conflict -> conflict (the user's bytes kept);
- auth -> blocked(auth) and the auth pause; connectivity (`offline_threshold` in a row) -> blocked
  (offline) and the breaker;
- transient, someone else's lock, a full quota -> retrying with a persisted backoff
  `min(backoff_max, backoff_base * 2^attempts)` with jitter, parked as failed after `max_attempts`;
- refusals and other storage errors -> failed (bytes kept); a bug -> retried `MAX_INTERNAL_ERRORS`
  times, then failed.
"""

from __future__ import annotations

import random
from typing import Any

from cs3sync.commands import CommandError, Outcome
from cs3sync.cs3 import errors
from cs3sync.engine.connectivity import Connectivity
from cs3sync.engine.host import EngineHost
from cs3sync.engine.journal_health import unless_moot
from cs3sync.journal import BlockedReason, Entry, Op, RemoteState, State
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")

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


class Outcomes:
    def __init__(self, host: EngineHost, connectivity: Connectivity) -> None:
        self._host = host
        self._connectivity = connectivity
        #: The last error a command met (`SyncEngine.last_error`).
        self.last_error: str | None = None

    async def on_success(self, entry: Entry, outcome: Outcome, duration: float) -> None:
        journal = self._host.journal
        self._connectivity.landed(entry.id)
        self._connectivity.storage_answered()
        if outcome.state == "conflict":
            await unless_moot(
                journal.mark_conflict(entry.id, conflict_path=outcome.conflict_path, error=outcome.message)
            )
            self._host.log_entry(
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
                presented = entry.presented_at
            remote = RemoteState.of(entry.path, info, self._host.clock.now(), presented_mtime=presented)
            kw = dict(
                result_etag=info.etag,
                result_mtime=mtime,
                result_fileid=str(info.file_id),
                presented_mtime=presented,
            )
        if entry.op == Op.RENAME and entry.src_path:
            await journal.move_remote_state(entry.src_path, entry.path)
        done = await unless_moot(
            journal.mark_done(
                entry.id,
                remote=remote,
                cache_blob=bool(entry.blob) and not entry.large and entry.op in (Op.SAVE, Op.CHECKPOINT),
                **kw,
            )
        )
        if entry.op == Op.DELETE:
            await journal.delete_remote_state(entry.path, recursive=True)
        if done is not None:
            self._host.log_entry(
                entry, "done", state=State.DONE, duration=duration, already_done=outcome.already_done
            )
        if self._connectivity.state == "offline":
            await self._connectivity.close_breaker()

    async def on_error(self, entry: Entry, exc: Exception, duration: float) -> None:
        journal = self._host.journal
        kind = exc.kind if isinstance(exc, errors.CS3Error) else type(exc).__name__
        message = str(exc)
        self.last_error = message
        if isinstance(exc, errors.Unauthenticated):
            # Auth errors never become failed: park the entry (no attempt) and pause the queue.
            await unless_moot(journal.mark_blocked(entry.id, reason=BlockedReason.AUTH, error=message))
            self._host.log_entry(
                entry, "blocked", state=State.BLOCKED, reason="auth", duration=duration, error_kind=kind
            )
            await self._connectivity.enter_auth_pause(exc)
            return
        if isinstance(exc, errors.Transient) and exc.connectivity:
            if self._connectivity.connectivity_failed():
                await unless_moot(journal.mark_blocked(entry.id, reason=BlockedReason.OFFLINE, error=message))
                self._host.log_entry(
                    entry,
                    "blocked",
                    state=State.BLOCKED,
                    reason="offline",
                    duration=duration,
                    error_kind="connectivity",
                )
                await self._connectivity.open_breaker(message)
                return
            if await self._retry_later(entry, message, "connectivity", duration):
                self._connectivity.backed_off(entry.id)
            return
        # The storage answered (with an error): the connection is fine, the failures are not consecutive.
        self._connectivity.storage_answered()
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
        self._connectivity.landed(entry.id)
        await unless_moot(self._host.journal.mark_failed(entry.id, error=message, error_kind=kind))
        self._host.log_entry(entry, "failed", state=State.FAILED, duration=duration, error_kind=kind)

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after `attempts` earlier failures: min(max, base * 2^attempts)
        with +-jitter, so a crowd of entries does not come back at the same instant."""
        host = self._host
        delay = min(host.backoff_max, host.backoff_base * (2.0 ** min(attempts, 32)))
        jitter = 1.0 + random.uniform(-host.backoff_jitter, host.backoff_jitter)
        return min(host.backoff_max, delay * jitter)

    async def _retry_later(self, entry: Entry, message: str, kind: str, duration: float) -> bool:
        """Retry with backoff (True), or park the entry as failed once it has used its `max_attempts`
        (False: no retry loop is unbounded, a lock never released or a quota never freed must reach
        the user)."""
        if entry.attempts + 1 >= self._host.max_attempts:
            await self._fail(entry, f"gave up after {entry.attempts + 1} attempts: {message}", kind, duration)
            return False
        delay = self.backoff(entry.attempts)
        await unless_moot(
            self._host.journal.mark_retry(
                entry.id, error=message, error_kind=kind, next_attempt_at=self._host.clock.now() + delay
            )
        )
        self._host.log_entry(
            entry,
            "retrying",
            state=State.RETRYING,
            duration=duration,
            error_kind=kind,
            retry_in=round(delay, 3),
        )
        return True
