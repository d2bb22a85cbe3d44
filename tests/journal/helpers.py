"""Small helpers shared by the journal tests."""

from __future__ import annotations

from cs3sync.journal import Entry, Journal, Op


async def save(journal: Journal, path: str, data: bytes = b"data", **kw: object) -> Entry:
    blob = await journal.store_blob(data)
    return await journal.enqueue(Op.SAVE, path, blob=blob, **kw)  # type: ignore[arg-type]


async def drain_ids(journal: Journal) -> list[int]:
    """Claim and complete entries one at a time; the order they ran in."""
    order = []
    while (entry := await journal.claim("w")) is not None:
        order.append(entry.id)
        await journal.mark_done(entry.id, result_etag=f"etag-{entry.id}")
    return order
