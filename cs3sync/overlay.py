"""Read-your-writes: the journal's active entries folded into the pending state of each path.

`fold` replays the active entries in journal order (a save shows its size, time and spool blob; a delete
hides the path and everything below it; a rename moves what was pending under the source and says where
the content is read from until it lands); `lookup` and `children` answer for one path or one folder,
including what a pending delete or rename of an ancestor implies.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from cs3sync.journal import Entry, Op
from cs3sync.journal.paths import is_under


@dataclass(frozen=True)
class Overlay:
    """The pending state of one path, from active journal entries (read-your-writes).

    `deleted`: hide it (pending delete, or renamed away: then `renamed_to` says where).
    Otherwise it exists with `kind`; for a pending save `size`, `mtime` and `blob` (sha256 of the spool
    blob holding the content) describe it; `renamed_from` says which remote path holds it until the
    rename is applied (read content/metadata from there); `copied_from` likewise for a pending copy.
    """

    path: str
    entry_id: int
    op: str
    state: str
    kind: str = "file"
    deleted: bool = False
    size: int | None = None
    mtime: float | None = None
    blob: str | None = None
    renamed_to: str | None = None
    renamed_from: str | None = None
    copied_from: str | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


def lookup(view: dict[str, Overlay], path: str) -> Overlay | None:
    """Pending state of `path` (normalised) in a folded `view` (None: nothing pending, ask the storage)."""
    if path in view:
        return view[path]
    # A pending delete or rename of an ancestor hides it; a pending rename of an ancestor to
    # somewhere above it makes it visible under the new name, read from the old one.
    # The nearest pending ancestor decides: walk up the path (a few dict lookups) rather than scan
    # every pending path (this runs several times per request, with hundreds of saves pending).
    best: Overlay | None = None
    ancestor = path
    while ancestor != "/" and best is None:
        ancestor = posixpath.dirname(ancestor)
        best = view.get(ancestor)
    if best is None:
        return None
    rest = path[len(best.path) :]
    if best.deleted:
        return Overlay(
            path,
            best.entry_id,
            best.op,
            best.state,
            deleted=True,
            renamed_to=best.renamed_to + rest if best.renamed_to else None,
        )
    if best.renamed_from:
        return Overlay(
            path, best.entry_id, best.op, best.state, kind="file", renamed_from=best.renamed_from + rest
        )
    return None


def children(view: dict[str, Overlay], dir_path: str) -> dict[str, Overlay]:
    """Pending state of the direct children of `dir_path` (normalised; name -> overlay), deleted ones
    included (so listings can hide them). Children of a renamed folder live under `renamed_from` remotely."""
    out: dict[str, Overlay] = {}
    for p, ov in view.items():
        parent = str(PurePosixPath(p).parent)
        if parent == dir_path:
            out[ov.name] = ov
        elif p != dir_path and is_under(p, dir_path) and not ov.deleted:
            # A pending save deep below implies the intermediate folders.
            first = PurePosixPath(p).relative_to(dir_path).parts[0]
            child = str(PurePosixPath(dir_path) / first)
            out.setdefault(first, Overlay(child, ov.entry_id, Op.MKDIR, ov.state, kind="directory"))
    return out


def standalone(e: Entry) -> Overlay | None:
    """The pending state an entry gives its own path when it depends on no other entry (a save, a
    checkpoint, a copy that carries its content, a mkdir), else None (see `depends_on_others`)."""
    if e.op in (Op.SAVE, Op.CHECKPOINT) or (e.op == Op.COPY and e.blob):
        return Overlay(
            e.path,
            e.id,
            e.op,
            e.state,
            kind="file",
            size=e.size,
            mtime=e.presented_at,
            blob=e.blob or e.sha256,
        )
    if e.op == Op.MKDIR:
        return Overlay(e.path, e.id, e.op, e.state, kind="directory", mtime=e.created_at)
    return None


def depends_on_others(e: Entry) -> bool:
    """A delete, rename or copy without content: its pending state depends on the entries before it
    (or changes theirs), so only a full `fold` says what the view is."""
    return standalone(e) is None


def fold(active: Iterable[Entry]) -> dict[str, Overlay]:
    """Fold the active entries, in journal order, into path -> pending state. Without deletes, renames
    and content-less copies this is each path's newest entry's `standalone` state."""
    view: dict[str, Overlay] = {}
    for e in active:
        alone = standalone(e)
        if alone is not None:
            view[e.path] = alone
        elif e.op == Op.COPY:
            source = view.get(e.src_path or "")
            view[e.path] = Overlay(
                e.path,
                e.id,
                e.op,
                e.state,
                kind="file",
                mtime=e.created_at,
                size=source.size if source else None,
                blob=source.blob if source else None,
                copied_from=(
                    (source.renamed_from or source.copied_from or e.src_path) if source else e.src_path
                ),
            )
        elif e.op == Op.DELETE:
            for p in [p for p in view if is_under(p, e.path)]:
                del view[p]
            view[e.path] = Overlay(e.path, e.id, e.op, e.state, kind=e.kind, deleted=True)
        elif e.op == Op.RENAME and e.src_path:
            src, dst = e.src_path, e.path
            moved = {p: ov for p, ov in view.items() if is_under(p, src) and not ov.deleted}
            for p in [p for p in view if is_under(p, src) or is_under(p, dst)]:
                del view[p]
            top = moved.pop(src, None)
            for p, ov in moved.items():
                q = dst + p[len(src) :]
                view[q] = Overlay(
                    q,
                    ov.entry_id,
                    ov.op,
                    ov.state,
                    kind=ov.kind,
                    size=ov.size,
                    mtime=ov.mtime,
                    blob=ov.blob,
                    renamed_from=ov.renamed_from,
                    copied_from=ov.copied_from,
                )
            view[src] = Overlay(src, e.id, e.op, e.state, kind=e.kind, deleted=True, renamed_to=dst)
            view[dst] = _renamed(top, e, src, dst)
    return view


def _renamed(top: Overlay | None, e: Entry, src: str, dst: str) -> Overlay:
    """The overlay of a rename's destination, carrying what was pending at the source."""
    if top is None:
        return Overlay(dst, e.id, e.op, e.state, kind=e.kind, renamed_from=src)
    local = bool(top.blob) or top.op == Op.MKDIR  # fully described by the journal: nothing to read remotely
    return Overlay(
        dst,
        e.id,
        e.op,
        e.state,
        kind=top.kind,
        size=top.size,
        mtime=top.mtime,
        blob=top.blob,
        renamed_from=None if local or top.copied_from else (top.renamed_from or src),
        copied_from=None if local else top.copied_from,
    )
