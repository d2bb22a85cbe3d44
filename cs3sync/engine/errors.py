"""What `SyncEngine.wait` raises when a command was not applied."""

from __future__ import annotations

from cs3sync.journal import Entry


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
