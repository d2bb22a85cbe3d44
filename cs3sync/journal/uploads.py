"""Upload sessions: what the engine persists of a running upload (protocol, url, transfer token, confirmed
offset) so that a restart resumes it, and the progress ``status`` shows."""

from __future__ import annotations

from cs3sync.journal.db import fetchall, record_converter
from cs3sync.journal.types import UploadRecord
from cs3sync.journal.unit import UnitOfWork

_upload = record_converter(UploadRecord)


class UploadSessions:
    """Part of `Journal` (``journal.uploads``), on the journal's unit of work (`UnitOfWork`)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def record_upload_session(
        self,
        entry_id: int,
        *,
        protocol: str,
        url: str,
        token: str | None,
        token_expires: float | None,
        total: int,
        chunk_size: int | None = None,
        offset: int = 0,
        checksum: str | None = None,
        endpoint: str | None = None,
    ) -> UploadRecord:
        """Persist (replace) the upload session of an entry, right after InitiateFileUpload. The reset
        count survives replacement."""
        now = self.unit.now()
        async with self.unit.transaction(durable=False) as conn:
            rows = await fetchall(conn,
                """INSERT INTO uploads (entry_id, protocol, endpoint, url, token, token_expires, total,
                       chunk_size, offset, sent, checksum, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (entry_id) DO UPDATE SET protocol = excluded.protocol,
                       endpoint = excluded.endpoint, url = excluded.url, token = excluded.token,
                       token_expires = excluded.token_expires, total = excluded.total,
                       chunk_size = excluded.chunk_size, offset = excluded.offset, sent = excluded.sent,
                       checksum = excluded.checksum, updated_at = excluded.updated_at
                   RETURNING *""",
                (entry_id, protocol, endpoint, url, token, token_expires, total, chunk_size, offset, offset,
                 checksum, now),
            )  # fmt: skip
        return _upload(rows[0])

    async def update_upload(
        self, entry_id: int, *, offset: int | None = None, sent: int | None = None
    ) -> None:
        """Record a confirmed offset (after each tus PATCH) and/or best-effort progress ``sent``."""
        async with self.unit.transaction(durable=False) as conn:
            await conn.execute(
                """UPDATE uploads SET offset = coalesce(?, offset),
                       sent = max(coalesce(?, sent), coalesce(?, offset)), updated_at = ?
                   WHERE entry_id = ?""",
                (offset, sent, offset, self.unit.now(), entry_id),
            )

    async def reset_upload(self, entry_id: int) -> UploadRecord | None:
        """Forget the session (the engine must initiate again): url and token cleared, offsets 0,
        ``resets += 1``. `upload_session` then returns a record with ``url == ""``."""
        async with self.unit.transaction(durable=False) as conn:
            rows = await fetchall(
                conn,
                """UPDATE uploads SET url = '', token = NULL, token_expires = NULL, offset = 0, sent = 0,
                       resets = resets + 1, updated_at = ? WHERE entry_id = ? RETURNING *""",
                (self.unit.now(), entry_id),
            )
        return _upload(rows[0]) if rows else None

    async def upload_session(self, entry_id: int) -> UploadRecord | None:
        """The recorded session of an entry, if any (``url == ""`` after a reset: initiate again)."""
        rows = await self.unit.read("SELECT * FROM uploads WHERE entry_id = ?", (entry_id,))
        return _upload(rows[0]) if rows else None

    async def upload_sessions(self) -> list[UploadRecord]:
        """All recorded sessions (for progress)."""
        return [_upload(r) for r in await self.unit.read("SELECT * FROM uploads ORDER BY entry_id")]
