"""Retention and garbage collection.

- done/superseded/cancelled rows are kept ``retention_seconds`` (7 days) or until there are more than
  ``retention_rows`` (5,000) of them, then deleted in batches, each its own short transaction so the
  engine is never held up for long;
- failed and conflict rows are never deleted here;
- a blob is unlinked when nothing references it any more (``blobs.refcount`` is kept by triggers) and
  it is older than the grace period; stray files (tmp, orphans of a crash between blob and row,
  abandoned staging) likewise;
- the events ring is trimmed; the owner compacts the manifest to the entries still pending.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from cs3sync.journal.db import fetchall
from cs3sync.journal.staging import StagingArea
from cs3sync.journal.types import State
from cs3sync.journal.unit import UnitOfWork

_TERMINAL_SQL = ",".join(f"'{s}'" for s in sorted(State.TERMINAL))
_KEEP_IN_MANIFEST_SQL = ",".join(f"'{s}'" for s in sorted(State.ACTIVE | State.PARKED))


async def collect(
    unit: UnitOfWork, staging: StagingArea, *, batch: int = 500, max_batches: int | None = None
) -> dict[str, int]:
    counters = {"entries": 0, "blobs": 0, "files": 0, "staging": 0, "events": 0}
    counters["entries"] = await _delete_old_entries(unit, batch, max_batches)
    counters["staging"] = await _expire_staging(unit, staging)
    counters["blobs"] = await _unlink_unreferenced_blobs(unit)
    counters["files"] = await _remove_stray_files(unit)
    counters["events"] = await _trim_events(unit)
    if unit.owner:
        await _compact_manifest(unit)
    return counters


async def _delete_old_entries(unit: UnitOfWork, batch: int, max_batches: int | None) -> int:
    deleted = 0
    batches = 0
    cutoff = unit.now() - unit.settings.retention_seconds
    while max_batches is None or batches < max_batches:
        async with unit.transaction(control=True) as conn:
            cap = await fetchall(
                conn,
                f"SELECT id FROM entries WHERE state IN ({_TERMINAL_SQL}) ORDER BY id DESC LIMIT 1 OFFSET ?",
                (unit.settings.retention_rows,),
            )
            beyond_cap = cap[0][0] if cap else 0  # ids <= this are beyond the newest retention_rows
            cursor = await conn.execute(
                f"""DELETE FROM entries WHERE id IN (
                        SELECT id FROM entries WHERE state IN ({_TERMINAL_SQL})
                          AND (finished_at < ? OR id <= ?) ORDER BY id LIMIT ?)""",
                (cutoff, beyond_cap, batch),
            )
            n = cursor.rowcount
        deleted += n
        batches += 1
        if n < batch:
            break
    return deleted


def _old_enough(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return True


async def _unlink_unreferenced_blobs(unit: UnitOfWork) -> int:
    cutoff = unit.now() - unit.settings.blob_grace_seconds
    rows = await unit.read("SELECT sha256 FROM blobs WHERE refcount <= 0")
    shas = [r[0] for r in rows if not unit.is_pinned(r[0])]
    old = [s for s in shas if await anyio.to_thread.run_sync(_old_enough, unit.blob_path(s), cutoff)]
    if not old:
        return 0
    gone: list[str] = []
    async with unit.transaction(control=True) as conn:
        for sha in old:
            # Re-checked inside the transaction: a row may have referenced it meanwhile.
            cursor = await conn.execute("DELETE FROM blobs WHERE sha256 = ? AND refcount <= 0", (sha,))
            if cursor.rowcount:
                gone.append(sha)
    return await unit.spool.unlink_blobs(gone, unit.is_pinned)


async def _remove_stray_files(unit: UnitOfWork) -> int:
    """tmp files, blob files without a row, staging files without a row — all past the grace period."""
    cutoff = unit.now() - unit.settings.blob_grace_seconds
    known = {r[0] for r in await unit.read("SELECT sha256 FROM blobs")}
    staged = {r[0] for r in await unit.read("SELECT file FROM upload_staging")}
    spool = unit.spool

    def candidates() -> list[Path]:
        found: list[Path] = []
        if not spool.root.exists():
            return found
        for sub in spool.root.iterdir():
            if sub == spool.tmp:
                found += [f for f in sub.iterdir() if _old_enough(f, cutoff)]
            elif sub == spool.staging:
                found += [f for f in sub.iterdir() if f.name not in staged and _old_enough(f, cutoff)]
            elif sub.is_dir() and len(sub.name) == 2:
                found += [
                    f for f in sub.iterdir() if f.name not in known and not unit.is_pinned(f.name)
                    and _old_enough(f, cutoff)
                ]  # fmt: skip
        return found

    files = await anyio.to_thread.run_sync(candidates)
    removed = 0
    async with spool.install_lock:
        for f in files:
            if unit.is_pinned(f.name):
                continue
            try:
                await anyio.to_thread.run_sync(f.unlink)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


async def _expire_staging(unit: UnitOfWork, staging: StagingArea) -> int:
    cutoff = unit.now() - unit.settings.staging_expiry_seconds
    rows = await unit.read("SELECT path FROM upload_staging WHERE updated_at < ?", (cutoff,))
    if not rows:
        return 0
    if unit.owner:
        for (path,) in rows:
            await staging.drop(path)
    else:
        async with unit.transaction(control=True) as conn:
            await conn.execute("DELETE FROM upload_staging WHERE updated_at < ?", (cutoff,))
        # The files become strays and go with the grace period.
    return len(rows)


async def _trim_events(unit: UnitOfWork) -> int:
    async with unit.transaction(control=True) as conn:
        cursor = await conn.execute(
            "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (unit.settings.events_max,)
        )
        return cursor.rowcount


async def _compact_manifest(unit: UnitOfWork) -> None:
    """Rewrite the manifest with one line per still-pending or parked entry. Under the write lock, so no
    enqueue appends meanwhile."""
    async with unit.transaction() as conn:
        rows = await fetchall(
            conn, f"SELECT * FROM entries WHERE state IN ({_KEEP_IN_MANIFEST_SQL}) ORDER BY id"
        )
        records: list[dict[str, Any]] = [
            {
                "v": 1,
                "id": r["id"],
                "op": r["op"],
                "path": r["path"],
                "src": r["src_path"],
                "blob": r["blob"],
                "size": r["size"],
                "base_etag": r["base_etag"],
                "base_fileid": r["base_fileid"],
                "kind": r["kind"],
                "at": r["created_at"],
            }
            for r in rows
        ]
        await anyio.to_thread.run_sync(unit.spool.rewrite_manifest, records)


__all__ = ["collect"]
