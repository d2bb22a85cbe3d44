"""Checkpoint rows: one journaled snapshot (a spool blob) per file and checkpoint id."""

from __future__ import annotations

from cs3sync.journal.db import fetchall, record_converter
from cs3sync.journal.paths import normalize_path, path_key
from cs3sync.journal.types import Blob, CheckpointRow
from cs3sync.journal.unit import UnitOfWork

_checkpoint = record_converter(CheckpointRow)


class Checkpoints:
    """Part of `Journal` (``journal.checkpoint_rows``), on the journal's unit of work (`UnitOfWork`)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def add_checkpoint(
        self,
        path: str,
        checkpoint_id: str,
        blob: Blob,
        *,
        remote_path: str | None = None,
        entry_id: int | None = None,
    ) -> CheckpointRow:
        """Record a snapshot of ``path`` (its bytes in ``blob``). Replaces a checkpoint of the same id."""
        path = normalize_path(path)
        now = self.unit.now()
        async with self.unit.transaction() as conn:
            await self.unit.ensure_blob_row(conn, blob.sha256, blob.size, now)
            rows = await fetchall(
                conn,
                """INSERT INTO checkpoints
                       (path, checkpoint_id, blob, size, remote_path, entry_id, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (path, checkpoint_id) DO UPDATE SET blob = excluded.blob,
                       size = excluded.size, remote_path = excluded.remote_path,
                       entry_id = excluded.entry_id, created_at = excluded.created_at
                   RETURNING *""",
                (path, checkpoint_id, blob.sha256, blob.size, remote_path, entry_id, now),
            )
        self.unit.unpin(blob.sha256)
        return _checkpoint(rows[0])

    async def set_checkpoint_entry(self, path: str, checkpoint_id: str, entry_id: int) -> None:
        """Link a checkpoint row to the command that uploads it."""
        async with self.unit.transaction() as conn:
            await conn.execute(
                "UPDATE checkpoints SET entry_id = ? WHERE path = ? AND checkpoint_id = ?",
                (entry_id, normalize_path(path), checkpoint_id),
            )

    async def checkpoints(self, path: str) -> list[CheckpointRow]:
        rows = await self.unit.read(
            "SELECT * FROM checkpoints WHERE path = ? ORDER BY created_at, checkpoint_id",
            (normalize_path(path),),
        )
        return [_checkpoint(r) for r in rows]

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        async with self.unit.transaction() as conn:
            await conn.execute(
                "DELETE FROM checkpoints WHERE path = ? AND checkpoint_id = ?",
                (normalize_path(path), checkpoint_id),
            )

    async def delete_checkpoints(self, path: str) -> None:
        """Drop the checkpoints of ``path`` and everything under it (after a delete)."""
        path = normalize_path(path)
        async with self.unit.transaction() as conn:
            await conn.execute(
                "DELETE FROM checkpoints WHERE path = ? OR substr(path, 1, length(?)) = ?",
                (path, path_key(path), path_key(path)),
            )

    async def move_checkpoints(self, src: str, dst: str) -> None:
        """Re-key the checkpoints of ``src`` (and under it) to ``dst``."""
        src, dst = normalize_path(src), normalize_path(dst)
        async with self.unit.transaction() as conn:
            await conn.execute(
                """UPDATE OR REPLACE checkpoints SET path = ? || substr(path, length(?) + 1)
                   WHERE path = ? OR substr(path, 1, length(?)) = ?""",
                (dst, src, src, path_key(src), path_key(src)),
            )
