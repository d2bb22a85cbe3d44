"""Progress of running uploads: in memory for the UI (`SyncEngine.progress`), and persisted now and then
for `status --watch` in another process."""

from __future__ import annotations

from dataclasses import dataclass

from cs3sync.engine.host import EngineHost
from cs3sync.journal import Entry
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")

#: Progress is persisted every this many bytes (or 1 % of the file, whichever is more).
PERSIST_STEP = 1 << 20


@dataclass(frozen=True)
class Progress:
    entry_id: int
    path: str
    sent: int
    total: int


class ProgressTracker:
    def __init__(self, host: EngineHost) -> None:
        self._host = host
        self._progress: dict[int, Progress] = {}
        self._persisted: dict[int, int] = {}

    def snapshot(self) -> dict[int, Progress]:
        """Running uploads: entry id -> bytes sent / total."""
        return dict(self._progress)

    def set(self, entry: Entry, sent: int, total: int) -> None:
        previous = self._progress.get(entry.id)
        self._progress[entry.id] = Progress(entry.id, entry.path, sent, total)
        self._host.changed.set()
        # `status --watch` runs in another process: persist progress now and then (best effort).
        # A file smaller than one step is sent in a blink: its progress would be one more transaction
        # per file (2,000 small creates wrote it 2,000 times) for a row `status` shows 100 % of once.
        last = self._persisted.get(entry.id, 0)
        step = max(PERSIST_STEP, total // 100)
        if total < step:
            return
        if (sent - last >= step or (sent == total and previous is not None)) and self._host.spawn(
            self._persist, entry.id, sent
        ):
            self._persisted[entry.id] = sent

    def forget(self, entry_id: int) -> None:
        """The run of the entry ended."""
        self._progress.pop(entry_id, None)
        self._persisted.pop(entry_id, None)

    async def _persist(self, entry_id: int, sent: int) -> None:
        try:
            await self._host.journal.update_upload(entry_id, sent=sent)
        except Exception:  # progress is cosmetic; never let it disturb the upload
            log.debug("engine.progress_not_persisted", entry_id=entry_id)
