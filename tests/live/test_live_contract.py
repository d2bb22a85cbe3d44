"""Client and contract tests that need nothing but the CS3 API, so they run unchanged on the emulator
(both profiles) and on a live Reva/CERNBox gateway (``CS3_TEST_GATEWAY``, see conftest.py). The lock
cases follow cs3org/wopiserver's storage-interface tests (test/test_storageiface.py): a second lock by
another app fails, a write with the holder's lock succeeds, a write without it is refused naming the
holder, a refresh may swap the lock id, and after unlock anyone writes."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from cs3sync.cs3 import errors
from cs3sync.cs3.types import LockContext
from cs3sync.engine import SyncEngine

from .conftest import Target

pytestmark = pytest.mark.anyio

APP = "cs3sync-test-app"
OTHER = "cs3sync-test-other"


async def test_roundtrip(target: Target) -> None:
    client, path = target.client, f"{target.folder}/hello.txt"
    info = await client.upload(path, "héllo\n".encode())
    assert info.path == path and info.size == 7 and info.checksum
    assert await client.read_bytes(path) == "héllo\n".encode()
    listed = await client.list(target.folder)
    assert [(i.path, i.size) for i in listed] == [(path, 7)]
    await client.move(path, f"{target.folder}/moved.txt")
    assert (await client.stat(f"{target.folder}/moved.txt")).file_id == info.file_id
    await client.delete(f"{target.folder}/moved.txt")
    assert await client.stat_or_none(f"{target.folder}/moved.txt") is None


async def test_lock_contract(target: Target) -> None:
    client, path = target.client, f"{target.folder}/locked.docx"
    await client.upload(path, b"v1")
    ours = client.new_lock_id()
    await client.set_lock(path, ours, app_name=APP)
    got = await client.get_lock(path)
    assert got is not None and got.lock_id == ours and got.app_name == APP
    with pytest.raises(errors.Locked) as taken:
        await client.set_lock(path, client.new_lock_id(), app_name=OTHER)
    assert taken.value.holder == APP
    await client.upload(path, b"v2", lock=LockContext(ours, APP))
    with pytest.raises(errors.Locked) as refused:
        await client.upload(path, b"v3")  # no lock context: refused however the server says it
    assert refused.value.holder == APP
    swapped = client.new_lock_id()
    await client.refresh_lock(path, swapped, existing_lock_id=ours, app_name=APP)
    assert (await client.get_lock(path)).lock_id == swapped  # type: ignore[union-attr]
    await client.unlock(path, swapped, app_name=APP)
    assert await client.get_lock(path) is None
    await client.upload(path, b"v4")
    assert await client.read_bytes(path) == b"v4"


async def test_upload_into_a_removed_folder(target: Target) -> None:
    client, folder = target.client, f"{target.folder}/gone"
    await client.mkdir(folder)
    await client.delete(folder)
    with pytest.raises(errors.NotFound):
        await client.upload(f"{folder}/nb.ipynb", b"{}")


async def test_engine_recreates_a_removed_folder(target: Target, tmp_path: Path) -> None:
    client, folder = target.client, f"{target.folder}/project"
    await client.mkdir(folder)
    await client.delete(folder)
    async with SyncEngine(client, journal_dir=tmp_path / "journal") as engine:
        entry_id = await engine.submit_save(f"{folder}/a.ipynb", b"{}")
        with anyio.fail_after(60):
            assert await engine.wait(entry_id, 60)
    assert await client.read_bytes(f"{folder}/a.ipynb") == b"{}"


async def test_lost_reply_detection_checksum_is_computable(target: Target, tmp_path: Path) -> None:
    """Whatever checksum the storage reports (EOS adler32, oCIS SHA1), we can compare it with bytes."""
    from cs3sync.commands import checksum_matches

    info = await target.client.upload(f"{target.folder}/sum.bin", b"checksummed")
    blob = tmp_path / "blob"
    blob.write_bytes(b"checksummed")
    assert await checksum_matches(info.checksum, blob) is True
