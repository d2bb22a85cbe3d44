"""JupyterLab chunked uploads: offsets per chunk, restart on 1, idempotent re-send, O(chunk), expiry."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from cs3sync.journal import Journal, Op, StagingBusy, StagingError, spool
from cs3sync.journal.staging import BUSY_SECONDS

pytestmark = pytest.mark.anyio

P = "/h/upload.bin"
CHUNK = 64 * 1024


def chunk(i: int) -> bytes:
    return bytes([i % 251]) * CHUNK


@pytest.fixture
def written(monkeypatch) -> list[int]:
    """Bytes written to spool files, one item per write call."""
    sizes: list[int] = []
    real = spool.os_pwrite

    def counting(fd: int, data, offset: int) -> int:
        n = real(fd, data, offset)
        sizes.append(n)
        return n

    monkeypatch.setattr(spool, "os_pwrite", counting)
    return sizes


async def test_sequential_chunks_then_finish(journal: Journal, written: list[int]) -> None:
    for i in (1, 2, 3):
        info = await journal.stage_chunk(P, i, chunk(i))
        assert info.size == i * CHUNK and info.chunks == i
    await journal.stage_chunk(P, -1, b"tail")
    blob = await journal.finish_staging(P)
    expected = chunk(1) + chunk(2) + chunk(3) + b"tail"
    assert blob.sha256 == hashlib.sha256(expected).hexdigest()
    assert blob.path.read_bytes() == expected
    assert await journal.staging(P) is None
    entry = await journal.enqueue(Op.SAVE, P, blob=blob)
    assert entry.size == len(expected)


async def test_each_chunk_costs_o_chunk(journal: Journal, written: list[int]) -> None:
    for i in range(1, 41):
        written.clear()
        await journal.stage_chunk(P, i, chunk(i))
        assert sum(written) == CHUNK, f"chunk {i} wrote {sum(written)} bytes"
    written.clear()
    await journal.stage_chunk(P, -1, b"end")
    assert sum(written) == 3
    written.clear()
    blob = await journal.finish_staging(P)
    assert sum(written) == 0, "finishing renames the staged file, it does not copy it"
    assert blob.size == 40 * CHUNK + 3


async def test_chunk_one_restarts(journal: Journal) -> None:
    await journal.stage_chunk(P, 1, b"old-1")
    await journal.stage_chunk(P, 2, b"old-2")
    info = await journal.stage_chunk(P, 1, b"new-1")
    assert info.size == 5 and info.chunks == 1
    await journal.stage_chunk(P, -1, b"|end")
    blob = await journal.finish_staging(P)
    assert blob.path.read_bytes() == b"new-1|end"
    assert len(list(journal.spool.staging.iterdir())) == 0, "the abandoned staging file was removed"


async def test_resent_chunk_overwrites_its_own_range(journal: Journal, written: list[int]) -> None:
    await journal.stage_chunk(P, 1, b"AAAA")
    await journal.stage_chunk(P, 2, b"BBBB")
    await journal.stage_chunk(P, 3, b"CCCC")
    written.clear()
    info = await journal.stage_chunk(P, 2, b"BBBB")  # the client did not get our reply and re-sent
    assert sum(written) == 4 and info.size == 12 and info.chunks == 3
    await journal.stage_chunk(P, -1, b"DD")
    await journal.stage_chunk(P, -1, b"DD")  # re-sent last chunk: idempotent too
    blob = await journal.finish_staging(P)
    assert blob.path.read_bytes() == b"AAAABBBBCCCCDD"
    assert blob.sha256 == hashlib.sha256(b"AAAABBBBCCCCDD").hexdigest()


async def test_other_bytes_for_a_staged_chunk_are_another_upload(journal: Journal) -> None:
    """Two uploads of one path by one client interleaved: neither may land mixed."""
    await journal.stage_chunk(P, 1, b"AAAA")
    await journal.stage_chunk(P, 2, b"BBBB")
    with pytest.raises(StagingBusy):
        await journal.stage_chunk(P, 2, b"bbbb")
    assert await journal.staging(P) is None  # dropped: the next chunk 1 starts afresh
    with pytest.raises(StagingError):
        await journal.finish_staging(P)


async def test_a_clients_chunk_one_during_its_upload_is_another_upload(journal: Journal, clock: Any) -> None:
    await journal.stage_chunk(P, 1, b"old-1", "client")
    await journal.stage_chunk(P, 2, b"old-2", "client")
    with pytest.raises(StagingBusy):  # while the upload is in progress: another upload, refused
        await journal.stage_chunk(P, 1, b"new-1", "client")
    clock.advance(BUSY_SECONDS)  # the old upload was abandoned
    info = await journal.stage_chunk(P, 1, b"new-1", "client")
    assert info.chunks == 1


async def test_clients_stage_apart(journal: Journal) -> None:
    await journal.stage_chunk(P, 1, b"one-", "client-a")
    await journal.stage_chunk(P, 1, b"two-", "client-b")
    await journal.stage_chunk(P, -1, b"end-a", "client-a")
    await journal.stage_chunk(P, -1, b"end-b", "client-b")
    assert (await journal.finish_staging(P, "client-b")).path.read_bytes() == b"two-end-b"
    assert (await journal.finish_staging(P, "client-a")).path.read_bytes() == b"one-end-a"


async def test_resent_chunk_of_other_length_drops_what_followed(journal: Journal) -> None:
    await journal.stage_chunk(P, 1, b"AAAA")
    await journal.stage_chunk(P, 2, b"BBBB")
    await journal.stage_chunk(P, 3, b"CCCC")
    info = await journal.stage_chunk(P, 2, b"bb")
    assert info.size == 6 and info.chunks == 2
    await journal.stage_chunk(P, 3, b"cc")
    await journal.stage_chunk(P, -1, b"")
    assert (await journal.finish_staging(P)).path.read_bytes() == b"AAAAbbcc"


async def test_gaps_and_missing_start_are_refused(journal: Journal) -> None:
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 2, b"no chunk 1")
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 0, b"zero")
    await journal.stage_chunk(P, 1, b"1")
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 3, b"gap")
    await journal.stage_chunk(P, -1, b"last")
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 2, b"after the last")
    with pytest.raises(StagingError):
        await journal.finish_staging("/h/other")


async def test_staging_survives_a_restart(journal_dir, clock, local_mounts) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    await journal.stage_chunk(P, 1, b"first|")
    await journal.stage_chunk(P, 2, b"second|")
    await journal.close()
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        info = await journal.staging(P)
        assert info is not None and info.size == 13 and info.chunks == 2
        await journal.stage_chunk(P, -1, b"last")
        blob = await journal.finish_staging(P)  # hashed from the file: the in-memory hash is gone
        assert blob.sha256 == hashlib.sha256(b"first|second|last").hexdigest()
    finally:
        await journal.close()


async def test_abandoned_staging_expires(journal: Journal, clock) -> None:
    await journal.stage_chunk(P, 1, b"abandoned")
    await journal.stage_chunk("/h/active.bin", 1, b"active")
    clock.advance(journal.settings.staging_expiry_seconds - 10)
    await journal.stage_chunk("/h/active.bin", 2, b"still going")
    clock.advance(20)
    counters = await journal.gc()
    assert counters["staging"] == 1
    assert await journal.staging(P) is None
    assert await journal.staging("/h/active.bin") is not None
    assert len(list(journal.spool.staging.iterdir())) == 1
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 2, b"too late")


async def test_only_the_finished_upload_is_fsynced(journal: Journal, monkeypatch) -> None:
    """Chunks before the last are not acknowledgements of anything durable: no fsync each; finishing
    fsyncs the whole file once, before it becomes a blob."""
    fsynced: list[int] = []
    real = spool.os_fsync
    monkeypatch.setattr(spool, "os_fsync", lambda fd: (fsynced.append(fd), real(fd))[1])
    for i in (1, 2, 3):
        await journal.stage_chunk(P, i, chunk(i))
    await journal.stage_chunk(P, -1, b"tail")
    assert fsynced == []
    blob = await journal.finish_staging(P)
    assert len(fsynced) == 1
    assert blob.path.read_bytes() == chunk(1) + chunk(2) + chunk(3) + b"tail"


async def test_a_chunk_in_order_reads_nothing_back(journal: Journal, monkeypatch) -> None:
    """What the rows say is kept in memory: a chunk in order costs its write and its transaction, no
    query (the answer to "is an upload in progress?" included); a re-sent chunk looks up its range."""
    reads: list[str] = []
    real = journal.unit.read

    async def counting(sql: str, params: Any = ()) -> Any:
        reads.append(sql)
        return await real(sql, params)

    await journal.stage_chunk(P, 1, chunk(1), "client")
    monkeypatch.setattr(journal.unit, "read", counting)
    for i in range(2, 6):
        await journal.stage_chunk(P, i, chunk(i), "client")
        assert (await journal.staging(P, "client")) is not None
    await journal.stage_chunk(P, -1, b"tail", "client")
    assert reads == []
    await journal.stage_chunk(P, 3, chunk(3), "client")  # re-sent
    assert len(reads) == 1
    blob = await journal.finish_staging(P, "client")
    assert blob.path.read_bytes() == b"".join(chunk(i) for i in range(1, 6)) + b"tail"


async def test_a_chunk_after_another_process_expired_the_upload_is_refused(
    journal: Journal, journal_dir, clock, local_mounts
) -> None:
    """The CLI's gc (another process) may drop an abandoned upload's row: what this process remembers
    of it must not revive it."""
    await journal.stage_chunk(P, 1, b"first|")
    await journal.stage_chunk(P, 2, b"second|")
    clock.advance(journal.settings.staging_expiry_seconds + 1)
    cli = await Journal.open(journal_dir, owner=False, now=clock, mounts_file=local_mounts)
    try:
        assert (await cli.gc())["staging"] == 1
    finally:
        await cli.close()
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 3, b"third")
    assert await journal.staging(P) is None
    with pytest.raises(StagingError):
        await journal.stage_chunk(P, 4, b"fourth")
