"""`PendingView`: the journal's active entries as the contents side sees them (read-your-writes).

The engine folds its active entries into an `Overlay` per path (cs3sync/overlay.py); this adapter turns
one into a `Pending` (datetimes, spool blob paths) for the models, the checks before a write and the
lock sessions. Without a running engine nothing is pending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contents.models import Pending, datetime_from_seconds

if TYPE_CHECKING:
    from contents.runtime import Runtime
    from cs3sync.engine import SyncEngine
    from cs3sync.overlay import Overlay


class PendingView:
    """The pending state of a path or of a folder's children, from the running engine's overlay."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def of(self, cs3_path: str) -> Pending | None:
        engine = self.runtime.engine
        if engine is None:
            return None
        ov = engine.overlay(cs3_path)
        return _to_pending(engine, ov) if ov is not None else None

    def children(self, cs3_dir: str) -> dict[str, Pending]:
        engine = self.runtime.engine
        if engine is None:
            return {}
        return {name: _to_pending(engine, ov) for name, ov in engine.overlay_children(cs3_dir).items()}


def _to_pending(engine: SyncEngine, ov: Overlay) -> Pending:
    """The engine's `Overlay` of a path as the contents side's `Pending` view (datetimes, blob paths)."""
    return Pending(
        kind="directory" if ov.kind == "directory" else "file",
        deleted=ov.deleted,
        size=ov.size,
        mtime=datetime_from_seconds(ov.mtime) if ov.mtime is not None else None,
        sha256=ov.blob,
        blob_path=engine.blob_path(ov.blob) if ov.blob else None,
        source=ov.renamed_from or ov.copied_from,
    )
