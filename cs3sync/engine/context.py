"""What an executor of `cs3sync.commands` may use (`commands.CommandContext`), bound to one engine: the
spool, the clock, locks, the upload session of the entry (so a restart resumes a tus upload), progress,
and the merge of a save with a foreign change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from cs3sync import commands
from cs3sync.cs3.types import UploadSession
from cs3sync.engine.host import EngineHost
from cs3sync.engine.progress import PERSIST_STEP, ProgressTracker
from cs3sync.journal import Entry, State, crash_point

#: How much newer than the editor's save a merged save is presented (see `ExecutorContext.rebase`).
MERGE_PRESENTED_STEP = 1.0


class ExecutorContext:
    def __init__(self, host: EngineHost, progress: ProgressTracker) -> None:
        self._host = host
        self._progress = progress
        self.client = host.client

    def blob_path(self, sha256: str) -> Path:
        return self._host.journal.blob_path(sha256)

    def spool_tmp_dir(self) -> Path:
        return self._host.journal.dir / "spool" / "tmp"

    def now(self) -> float:
        return self._host.clock.now()

    def lock_for(self, path: str) -> Any:
        provider = self._host.lock_provider
        return provider(path) if provider is not None else None

    async def recorded_session(self, entry: Entry) -> UploadSession | None:
        rec = await self._host.journal.upload_session(entry.id)
        if rec is None or rec.protocol != "tus" or not rec.url:
            return None  # a simple PUT is never resumed: initiate again
        return UploadSession(
            protocol="tus",
            url=rec.url,
            token=rec.token or "",
            expires_at=rec.token_expires,
            offset=rec.offset,
            length=rec.total,
        )

    async def record_session(self, entry: Entry, session: Any) -> None:
        journal = self._host.journal
        if session.protocol != "tus" and session.length < PERSIST_STEP:
            # A simple PUT is never resumed (`recorded_session`): its row would only carry the progress
            # `status` shows, which a file below one step does not persist (a transaction per small file).
            self._progress.set(entry, session.offset, session.length)
            return
        rec = await journal.upload_session(entry.id)
        if rec is not None and rec.url == session.url:
            await journal.update_upload(entry.id, offset=session.offset)
        else:
            await journal.record_upload_session(
                entry.id,
                protocol=session.protocol,
                url=session.url,
                token=session.token,
                token_expires=session.expires_at,
                total=session.length,
                offset=session.offset,
            )
        self._progress.set(entry, session.offset, session.length)

    async def is_own_version(self, entry: Entry, info: Any) -> bool:
        """The remote version was produced by us: an earlier done entry on this path left that etag, or
        its content equals a superseded save of ours that had already reached the storage."""
        journal = self._host.journal
        for e in await journal.entries([State.DONE], prefix=entry.path, newest_first=True, limit=50):
            if e.path == entry.path and e.id < entry.id and e.result_etag == info.etag:
                return True
        if not info.checksum:
            return False
        for sha in entry.prior_blobs:
            p = journal.blob_path(sha)
            if await anyio.Path(p).exists() and await commands.checksum_matches(info.checksum, p):
                return True
        return False

    def progress(self, entry: Entry, sent: int, total: int) -> None:
        self._progress.set(entry, sent, total)

    async def requests_first(self) -> None:
        await self._host.requests_first()

    def crash_point(self, label: str) -> None:
        crash_point(label)

    @property
    def merge_enabled(self) -> bool:
        return self._host.merge_conflicts

    async def read_blob(self, sha256: str) -> bytes:
        return await anyio.Path(self.blob_path(sha256)).read_bytes()

    async def kept_content(self, path: str, etag: str) -> bytes | None:
        """The bytes of version ``etag`` of ``path`` if the journal kept them (our own last write)."""
        known = await self._host.journal.remote_state(path)
        if known is None or known.etag != etag or not known.cached_blob:
            return None
        try:
            return await self.read_blob(known.cached_blob)
        except OSError:
            return None

    async def rebase(self, entry: Entry, data: bytes, info: Any, merge: dict[str, Any]) -> Entry:
        host = self._host
        blob = await host.journal.store_blob(data)
        rebased = await host.journal.rebase_save(
            entry.id,
            blob,
            base_etag=info.etag,
            base_fileid=str(info.file_id),
            # Newer than what the editor saved by more than JupyterLab's 500 ms tolerance, so its "File
            # Changed" check sees the merge (a time at most 1 s ahead of the clock; presented times are ours).
            presented_mtime=max(self.now(), entry.presented_at + MERGE_PRESENTED_STEP),
            merge=merge,
        )
        host.log_entry(entry, "merged", state=State.RUNNING, note=merge.get("message"))
        # Read-your-writes: the overlay serves the merged content from now on.
        await host.after_change(transition=False)
        return rebased

    async def note_merge(self, entry: Entry, merge: dict[str, Any]) -> None:
        await self._host.journal.note_merge(entry.id, merge)

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
            and self.now() - float(observed) <= self._host.fresh_base_seconds
        )
