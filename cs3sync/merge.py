"""Three-way merges of a save with a foreign change: notebooks by cell (nbdime), text by line (merge3).

When a pending save finds that someone else changed the file since the version it was based on, the
engine hands this module three versions: the common *base*, *ours* (the pending save) and *theirs*
(what the storage holds now). `merge3` answers with the merged bytes when nothing overlaps, or with the
places that collided. It is pure (no I/O, no engine, no Jupyter server); `merge3_in_thread` runs it in
a worker thread, because diffing two notebooks can take a while and the event loop must never block.

The rules:

- Notebooks (``.ipynb``, nbformat 4) merge at cell level with nbdime: edits to different cells, or to
  different lines of one cell, merge; cells added on both sides at the same place are all kept (the
  older side's first). The same lines of one cell edited on both sides, or a cell edited on one side
  and deleted on the other, collide.
- Outputs, execution counts and metadata never block a merge: where both sides changed them, the newer
  side's value is taken (``ours_newer``).
- Any other file that is UTF-8 text merges by line with the same overlap rule.
- Anything else (binary, undecodable, a notebook that does not parse) is not merged.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

import anyio

Kind = Literal["notebook", "text", "binary"]


@dataclass(frozen=True)
class MergeResult:
    """What a three-way merge achieved. ``merged`` is None when it was not possible."""

    kind: Kind
    merged: bytes | None
    #: Cells (notebook) or lines (text) that the other side changed and the merge took over.
    theirs_changes: int = 0
    #: 1-based positions, in the base version, of the cells (or lines) both sides changed.
    collisions: tuple[int, ...] = ()
    #: Why there is no merge, in the user's terms (empty when merged).
    reason: str = ""

    @property
    def clean(self) -> bool:
        return self.merged is not None

    @property
    def unit(self) -> str:
        return "cell" if self.kind == "notebook" else "line"


def merge3(path: str, base: bytes, ours: bytes, theirs: bytes, *, ours_newer: bool) -> MergeResult:
    """Merge ``ours`` and ``theirs``, both derived from ``base``. ``path`` decides how (its suffix);
    ``ours_newer`` says which side wins where both changed outputs, execution counts or metadata."""
    if PurePosixPath(path).suffix.lower() == ".ipynb":
        return merge_notebooks(base, ours, theirs, ours_newer=ours_newer)
    return merge_text(base, ours, theirs)


async def merge3_in_thread(
    path: str, base: bytes, ours: bytes, theirs: bytes, *, ours_newer: bool
) -> MergeResult:
    """`merge3` in a worker thread (nbdime's diff is pure Python and can take seconds)."""
    return await anyio.to_thread.run_sync(
        functools.partial(merge3, path, base, ours, theirs, ours_newer=ours_newer)
    )


# ---------------------------------------------------------------------------------------------- text


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def merge_text(base: bytes, ours: bytes, theirs: bytes) -> MergeResult:
    """Line-based three-way merge of UTF-8 text (merge3, the algorithm of bzr/breezy)."""
    from merge3 import Merge3

    texts = [_text(data) for data in (base, ours, theirs)]
    if None in texts:
        return MergeResult("binary", None, reason="binary files cannot be merged")
    b, o, t = (str(text).splitlines(keepends=True) for text in texts)
    merger = Merge3(b, o, t)
    out: list[str] = []
    collisions: list[int] = []
    theirs_changes = 0
    for group in merger.merge_regions():
        what = group[0]
        if what == "unchanged":
            out.extend(b[group[1] : group[2]])
        elif what in ("a", "same"):
            out.extend(o[group[1] : group[2]])
        elif what == "b":
            out.extend(t[group[1] : group[2]])
            theirs_changes += max(1, group[2] - group[1])
        else:  # ("conflict", zstart, zend, astart, aend, bstart, bend): base lines zstart..zend
            collisions.extend(range(group[1] + 1, max(group[1] + 1, group[2]) + 1))
    if collisions:
        return MergeResult(
            "text", None, collisions=tuple(sorted(set(collisions))), reason="the same lines were changed"
        )
    return MergeResult("text", "".join(out).encode("utf-8"), theirs_changes=theirs_changes)


# ---------------------------------------------------------------------------------------------- notebooks

#: Fields that only record a run or a view, never the user's work: both sides may change them.
_TRANSIENTS = [
    "/cells/*/execution_count",
    "/cells/*/outputs/*/execution_count",
    "/cells/*/metadata/collapsed",
    "/cells/*/metadata/autoscroll",
    "/cells/*/metadata/scrolled",
]


def _strategies(ours_newer: bool) -> Any:
    """nbdime's conflict strategies per notebook path. "mergetool" leaves a conflict unresolved (we
    then do not merge); outputs, execution counts and metadata take the newer side."""
    from nbdime.utils import Strategies

    newer = "use-local" if ours_newer else "use-remote"
    strategies = Strategies(
        {
            "/nbformat": "fail",
            "/nbformat_minor": "take-max",
            "/cells": "mergetool",
            "/cells/*/cell_type": "fail",
            "/cells/*/id": "remove",
            "/cells/*/source": "mergetool",
            "/cells/*/attachments": "mergetool",
            "/cells/*/outputs": newer,
            "/cells/*/execution_count": newer,
            "/cells/*/outputs/*/execution_count": newer,
            "/cells/*/outputs/*/metadata": newer,
            "/cells/*/metadata": newer,
            "/metadata": newer,
        }
    )
    strategies.transients = list(_TRANSIENTS)
    return strategies


def _read_notebook(data: bytes) -> Any:
    import nbformat

    text = _text(data)
    if text is None:
        return None
    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception:  # nbformat raises several unrelated types for unreadable input
        return None
    return nb if nb.get("nbformat") == 4 else None


def merge_notebooks(base: bytes, ours: bytes, theirs: bytes, *, ours_newer: bool) -> MergeResult:
    """Cell-level three-way merge with nbdime (see the module docstring for the rules)."""
    import nbformat
    from nbdime.diffing.notebooks import diff_notebooks
    from nbdime.merging.decisions import apply_decisions
    from nbdime.merging.generic import decide_merge_with_diff

    nbs = [_read_notebook(b) for b in (base, ours, theirs)]
    if any(nb is None for nb in nbs):
        return MergeResult("notebook", None, reason="one of the versions is not a readable notebook")
    b, o, t = nbs
    theirs_diff = diff_notebooks(b, t)
    decisions = decide_merge_with_diff(b, o, t, diff_notebooks(b, o), theirs_diff, _strategies(ours_newer))
    collisions: set[int] = set()
    for d in decisions:
        if not d.conflict:
            continue
        if _both_only_insert(d):
            # Cells added at the same place on both sides: keep all of them, the older side's first.
            d.action = "remote_then_local" if ours_newer else "local_then_remote"
            d.conflict = False
            continue
        collisions.update(_cells_of(d))
    if collisions or any(d.conflict for d in decisions):
        return MergeResult(
            "notebook",
            None,
            collisions=tuple(sorted(collisions)),
            reason="the same cells were changed",
        )
    merged = apply_decisions(b, decisions)
    _newer_runs(merged, b, o if ours_newer else t, t if ours_newer else o)
    try:
        nbformat.validate(merged)
    except nbformat.ValidationError:
        # Never write a notebook JupyterLab could not open: a conflict copy is the safe answer.
        return MergeResult("notebook", None, reason="the merged notebook would not be valid")
    data = nbformat.writes(nbformat.from_dict(merged), version=nbformat.NO_CONVERT)
    return MergeResult("notebook", data.encode("utf-8"), theirs_changes=_cells_changed(theirs_diff))


def _newer_runs(merged: Any, base: Any, newer: Any, older: Any) -> None:
    """Where both sides re-ran a cell, keep the newer run whole. nbdime merges output lists item by
    item, which can interleave two runs' outputs; a run is one unit. Cells are matched by their id
    (nbformat 4.5, which JupyterLab writes); older notebooks keep nbdime's result."""
    by_id = [{c.get("id"): c for c in nb.cells if c.get("id")} for nb in (base, newer, older)]
    for cell in merged.cells:
        if cell.get("cell_type") != "code" or not cell.get("id"):
            continue
        b, n, o = (cells.get(cell["id"]) for cells in by_id)
        if b is None or n is None or o is None:
            continue
        run = ("outputs", "execution_count")
        if any(n.get(k) != b.get(k) for k in run) and any(o.get(k) != b.get(k) for k in run):
            cell["outputs"] = copy.deepcopy(n.get("outputs", []))
            cell["execution_count"] = n.get("execution_count")


def _both_only_insert(decision: Any) -> bool:
    diffs = [*decision.local_diff, *decision.remote_diff]
    return (
        tuple(decision.common_path) == ("cells",)
        and bool(decision.local_diff)
        and bool(decision.remote_diff)
        and all(d.op == "addrange" for d in diffs)
    )


def _cells_of(decision: Any) -> Iterable[int]:
    """1-based base positions of the cells a conflicting decision is about."""
    path = tuple(decision.common_path)
    if len(path) >= 2 and path[0] == "cells":
        return [int(path[1]) + 1]
    if path == ("cells",):
        return [int(d.key) + 1 for d in (*decision.local_diff, *decision.remote_diff)]
    return []


def _cells_changed(diff: Sequence[Any]) -> int:
    """How many cells a notebook diff adds, removes or changes."""
    n = 0
    for top in diff:
        if top.key != "cells":
            continue
        for d in top.diff:
            if d.op == "addrange":
                n += len(d.valuelist)
            elif d.op == "removerange":
                n += d.length
            else:
                n += 1
    return n


def compare_notebooks(theirs: bytes, ours: bytes) -> dict[str, Any] | None:
    """nbdime's diff from the storage's version (``theirs``) to ours, for a "Compare" view of a conflict:
    ``{"base": <theirs as a notebook>, "diff": <nbdime diff>}``, the shape of nbdime's own diff API, so
    nbdime's front-end widgets render it. None when either side is not a readable notebook. Pure; run it
    in a worker thread (`compare_in_thread`)."""
    from nbdime.diffing.notebooks import diff_notebooks

    base, other = _read_notebook(theirs), _read_notebook(ours)
    if base is None or other is None:
        return None
    return {"base": base, "diff": diff_notebooks(base, other)}


async def compare_in_thread(theirs: bytes, ours: bytes) -> dict[str, Any] | None:
    return await anyio.to_thread.run_sync(compare_notebooks, theirs, ours)


def why_not(result: MergeResult) -> str:
    """Why a merge did not happen, short: "both changed cells 4, 7", "binary files cannot be merged"."""
    if result.collisions:
        many = len(result.collisions) > 1
        places = ", ".join(str(c) for c in result.collisions[:10])
        more = "" if len(result.collisions) <= 10 else ", ..."
        return f"both changed {result.unit}{'s' if many else ''} {places}{more}"
    return result.reason


def describe(result: MergeResult, who: str | None = None) -> str:
    """One line for `status` and the sync panel, e.g. "merged with marie's change, 2 cells"."""
    whose = f"{who}'s change" if who else "a change on the storage"
    if result.clean:
        n = result.theirs_changes
        return f"merged with {whose}, {n} {result.unit}{'' if n == 1 else 's'}"
    return f"not merged with {whose}: {why_not(result)}"


__all__ = [
    "MergeResult",
    "compare_in_thread",
    "compare_notebooks",
    "describe",
    "merge3",
    "merge3_in_thread",
    "merge_notebooks",
    "merge_text",
    "why_not",
]
