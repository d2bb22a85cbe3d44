"""Coalescing rules, decided inside the enqueue transaction (on the connection's thread: `db.run_on`).

Only entries that have not started running can be folded away. Anything else is simply ordered: the
claim never runs an entry while an older active entry touches the same path, an ancestor or a
descendant, which is what makes "mkdir before child saves" and "rename waits for everything under its
source" hold without special cases.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from cs3sync.journal.paths import is_under, path_key, path_rows
from cs3sync.journal.types import Op, State

#: States an entry can be superseded or cancelled from: it is not running and holds no lease.
FOLDABLE = (State.QUEUED, State.RETRYING, State.BLOCKED)
_ACTIVE_SQL = ",".join(f"'{s}'" for s in sorted(State.ACTIVE))


@dataclass
class Plan:
    """What enqueue must do besides inserting the new entry."""

    supersede: list[int] = field(default_factory=list)  # -> superseded_by the new entry
    cancel: list[int] = field(default_factory=list)  # -> cancelled (annihilated)
    cancel_self: bool = False  # the new entry is born cancelled
    base_etag: str | None = None
    base_fileid: str | None = None
    inherit_base: bool = False  # use base_etag/base_fileid above instead of the caller's
    prior_blobs: list[str] = field(default_factory=list)


def _intersecting_active(conn: sqlite3.Connection, path: str) -> list[sqlite3.Row]:
    """Active entries touching ``path``, an ancestor or a descendant of it, oldest first."""
    ancestors_and_self = [key for key, _ in path_rows(path)]
    marks = ",".join("?" * len(ancestors_and_self))
    sql = f"""SELECT DISTINCT e.* FROM entries e JOIN entry_paths ep ON ep.entry_id = e.id
              WHERE e.state IN ({_ACTIVE_SQL})
                AND (ep.key = ? OR (ep.self = 1 AND ep.key IN ({marks})))
              ORDER BY e.id"""
    return list(conn.execute(sql, [path_key(path), *ancestors_and_self]).fetchall())


def _priors(row: sqlite3.Row) -> list[str]:
    """Blobs that may already be on the storage because of ``row`` (or what it superseded)."""
    priors = list(json.loads(row["prior_blobs"] or "[]"))
    if row["claims"] > 0 and row["sha256"]:
        priors.append(row["sha256"])
    return priors


def plan(conn: sqlite3.Connection, op: str, path: str, src_path: str | None) -> Plan:
    if op == Op.SAVE:
        return _plan_save(conn, path)
    if op == Op.DELETE:
        return _plan_delete(conn, path)
    return Plan()


def _plan_save(conn: sqlite3.Connection, path: str) -> Plan:
    # Only the most recent command touching the path matters: if anything else (a rename, a delete, a
    # mkdir of a child...) came after the earlier save, folding would reorder commands.
    related = _intersecting_active(conn, path)
    if not related:
        return Plan()
    last = related[-1]
    if last["op"] != Op.SAVE or last["path"] != path or last["state"] not in FOLDABLE:
        return Plan()
    return Plan(
        supersede=[last["id"]],
        inherit_base=True,
        base_etag=last["base_etag"],
        base_fileid=last["base_fileid"],
        prior_blobs=_priors(last),
    )


def _is_create_under(row: sqlite3.Row, path: str) -> bool:
    """A command that only brings new things into existence at or under ``path``."""
    if not is_under(row["path"], path):
        return False
    if row["op"] == Op.MKDIR:
        return True
    if row["op"] == Op.SAVE:
        return row["base_etag"] is None and row["base_fileid"] is None
    return row["op"] in (Op.COPY, Op.CHECKPOINT)


def _plan_delete(conn: sqlite3.Connection, path: str) -> Plan:
    related = _intersecting_active(conn, path)
    # A pending mkdir of an ancestor neither conflicts with nor is affected by deleting below it.
    relevant = [r for r in related if not (r["op"] == Op.MKDIR and not is_under(r["path"], path))]
    if not relevant or any(r["state"] not in FOLDABLE for r in relevant):
        return Plan()

    # create-then-delete: the path never existed on the storage and nothing below it did either.
    creates_itself = any(r["path"] == path and _is_create_under(r, path) for r in relevant)
    if (
        creates_itself
        and all(_is_create_under(r, path) for r in relevant)
        and all(r["claims"] == 0 for r in relevant)
    ):
        return Plan(cancel=[r["id"] for r in relevant], cancel_self=True)

    # delete after pending saves of an existing file: skip the uploads, but delete against the base the
    # first save started from (the remote version), so a foreign edit since then is still detected.
    if all(r["op"] == Op.SAVE and r["path"] == path for r in relevant):
        oldest = relevant[0]
        priors: list[str] = []
        for r in relevant:
            priors += _priors(r)
        return Plan(
            supersede=[r["id"] for r in relevant],
            inherit_base=True,
            base_etag=oldest["base_etag"],
            base_fileid=oldest["base_fileid"],
            prior_blobs=priors,
        )
    return Plan()
