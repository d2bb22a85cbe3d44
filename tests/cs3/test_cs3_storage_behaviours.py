"""The client against the real servers' behaviours (docs/storage-behaviours.md), which the emulator
has on by default in the profile whose server does it. Each test names its row of the table."""

from __future__ import annotations

from typing import Any

import pytest

from cs3sync.cs3 import CS3Client, errors
from cs3sync.cs3.types import LockContext

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------------------------------------- row 1


async def test_upload_into_a_removed_folder_is_not_found(emu: Any, client: CS3Client, home: str) -> None:
    """EOS: initiate OK, PUT 409; oCIS: FAILED_PRECONDITION at initiate. Both mean "the folder is gone",
    which must read as NotFound (the engine recreates the folder), not as a lock or an etag race."""
    await client.mkdir(f"{home}/analysis")
    emu.storage.external_delete(f"{home}/analysis")
    with pytest.raises(errors.NotFound, match=r"folder .*/analysis no longer exists"):
        await client.upload(f"{home}/analysis/nb.ipynb", b"{}")
    assert not emu.storage.exists(f"{home}/analysis")


async def test_upload_into_an_existing_folder_keeps_an_etag_refusal(
    emu: Any, client: CS3Client, home: str
) -> None:
    """The folder check does not swallow a genuine precondition failure (oCIS honours if_match)."""
    await client.upload(f"{home}/a.txt", b"one")
    if emu.config.conditional_upload == "ignore":
        # EOS ignores if_match (why the engine compares etags itself): nothing to refuse here.
        await client.upload(f"{home}/a.txt", b"two", if_match='"stale"', precheck=False)
        return
    with pytest.raises(errors.PreconditionFailed):
        await client.upload(f"{home}/a.txt", b"two", if_match='"stale"', precheck=False)


# ---------------------------------------------------------------------------------------------- row 2


async def test_write_under_a_foreign_lock_names_the_holder(emu: Any, client: CS3Client, home: str) -> None:
    """EOS answers a bare 500 (EBUSY unmapped); the client asks GetLock and reports who holds it."""
    path = f"{home}/locked.txt"
    await client.upload(path, b"base")
    emu.storage.lock(path, app="Collabora", user="marie")
    with pytest.raises(errors.Locked) as caught:
        await client.upload(path, b"mine")
    assert caught.value.holder == "Collabora"
    assert emu.storage.read(path) == b"base"


async def test_write_with_our_own_lock_goes_through(emu: Any, client: CS3Client, home: str) -> None:
    path = f"{home}/ours.txt"
    await client.upload(path, b"base")
    lock_id = client.new_lock_id()
    await client.set_lock(path, lock_id, app_name="jupyter")
    await client.upload(path, b"mine", lock=LockContext(lock_id, "jupyter"))
    assert emu.storage.read(path) == b"mine"


async def test_a_plain_server_error_is_retried(emu: Any, client: CS3Client, home: str) -> None:
    """A 500 that neither a lock, a missing folder nor the quota explains stays transient: the client
    initiates again and the second PUT lands."""
    from errno import EIO

    await client.upload(f"{home}/x.txt", b"x")
    emu.storage.fail_next_write(EIO)
    await client.upload(f"{home}/x.txt", b"y")
    assert emu.storage.read(f"{home}/x.txt") == b"y"


# ---------------------------------------------------------------------------------------------- row 7


async def test_quota_refusal_is_quota_exceeded_with_the_figures(
    emu: Any, client: CS3Client, home: str
) -> None:
    """EOS refuses nothing at initiate and its 507 arrives as HTTP 500; oCIS refuses at initiate. Both
    must read as QuotaExceeded with the figures, not as a retryable server error."""
    emu.storage.set_quota(1000, used=990)
    with pytest.raises(
        errors.QuotaExceeded, match=r"quota exceeded: 990 B of 1\.0 kB used, this file needs 100 B"
    ):
        await client.upload(f"{home}/big.bin", b"x" * 100)
    assert not emu.storage.exists(f"{home}/big.bin")


# ---------------------------------------------------------------------------------------------- row 3


async def test_listings_and_stats_carry_absolute_paths(emu: Any, client: CS3Client, home: str) -> None:
    """oCIS answers basenames ("." for the space root); the client rebuilds the absolute path from the
    path it asked for, so models and downloads keep working."""
    await client.mkdir(f"{home}/d")
    await client.upload(f"{home}/d/a.txt", b"abc")
    assert (await client.stat(home)).path == home
    assert (await client.stat(f"{home}/d/a.txt")).path == f"{home}/d/a.txt"
    listed = await client.list(f"{home}/d")
    assert [(i.path, i.name) for i in listed] == [(f"{home}/d/a.txt", "a.txt")]
    assert await client.read_bytes(listed[0].path) == b"abc"


async def test_lost_put_reply_is_recognised_by_either_checksum(
    emu: Any, client: CS3Client, home: str
) -> None:
    """The PUT lands but its reply is lost: the client's re-check compares the storage's checksum (EOS
    adler32, oCIS SHA1) with the bytes, and does not upload a second time."""
    from cs3sync.emulator import DropReply

    path = f"{home}/lost.txt"
    emu.faults.http("PUT", DropReply(), times=1)
    emu.faults.http("PATCH", DropReply(), times=1)
    info = await client.upload(path, b"landed once")
    algo = "sha1:" if emu.config.checksum_type == "sha1" else "adler32:"
    assert info.checksum is not None and info.checksum.startswith(algo)
    commits = [r for r in emu.http_log if r.method in ("PUT", "PATCH") and r.bytes_in == len(b"landed once")]
    assert len(commits) == 1
    assert emu.storage.read(path) == b"landed once"


# ---------------------------------------------------------------------------------------------- row 10


async def test_token_expiry_relayed_as_an_empty_denial_logs_in_again(
    emu: Any, client: CS3Client, home: str
) -> None:
    """Reva's gateway relays the provider's token refusal on a mutating RPC as PERMISSION_DENIED with an
    empty message. The client takes it for a possible token expiry: logs in again and retries once."""
    await client.upload(f"{home}/old.txt", b"x")
    logins = sum(c.method == "Authenticate" for c in emu.calls)
    emu.clock.advance(emu.config.token_ttl + 60)  # the token expires on the server's clock only
    await client.delete(f"{home}/old.txt")
    assert not emu.storage.exists(f"{home}/old.txt")
    assert sum(c.method == "Authenticate" for c in emu.calls) == logins + 1
    refused = [c for c in emu.calls if c.method == "Delete"]
    assert len(refused) == 2  # the empty denial, then the retry with the fresh token


async def test_an_empty_denial_that_persists_is_a_permission_error(
    emu: Any, client: CS3Client, home: str
) -> None:
    from cs3sync.emulator import Status

    await client.upload(f"{home}/kept.txt", b"x")
    emu.faults.grpc("Delete", Status(8, ""), times=None)
    with pytest.raises(errors.PermissionDenied):
        await client.delete(f"{home}/kept.txt")
    assert emu.storage.exists(f"{home}/kept.txt")


# ---------------------------------------------------------------------------------------------- row 6


async def test_an_internal_lock_error_on_an_existing_file_is_transient(
    emu: Any, client: CS3Client, home: str
) -> None:
    """Not Unimplemented (which would switch locking off): GetLock still answers, so locks exist."""
    path = f"{home}/doc.ipynb"
    await client.upload(path, b"{}")
    emu.storage.fail_next_lock_change()
    with pytest.raises(errors.Transient, match="error setting eos lock"):
        await client.set_lock(path, client.new_lock_id(), app_name="jupyter")
    lock_id = client.new_lock_id()
    await client.set_lock(path, lock_id, app_name="jupyter")
    got = await client.get_lock(path)
    assert got is not None and got.lock_id == lock_id


async def test_lock_rpcs_on_a_missing_file_are_not_found(emu: Any, client: CS3Client, home: str) -> None:
    """EOS answers INTERNAL for a missing file too; the Stat decides."""
    with pytest.raises(errors.NotFound):
        await client.set_lock(f"{home}/missing.ipynb", client.new_lock_id(), app_name="jupyter")


# ---------------------------------------------------------------------------------------------- row 9


async def test_every_put_carries_upload_length_and_its_own_token(
    emu: Any, client: CS3Client, home: str
) -> None:
    """EOS needs Upload-Length on a simple PUT and would accept a replayed token: the client sends the
    header every time and initiates again after a failure instead of re-sending on the same token."""
    from errno import EIO

    await client.login()
    emu.storage.fail_next_write(EIO)
    mark_calls, mark_http = len(emu.calls), len(emu.http_log)
    await client.upload(f"{home}/twice.txt", b"payload", precheck=False)
    writes = [r for r in emu.http_log[mark_http:] if r.method in ("PUT", "PATCH")]
    initiates = [c for c in emu.calls[mark_calls:] if c.method == "InitiateFileUpload"]
    assert len(writes) == 2 and len(initiates) == 2
    assert all(r.headers.get("Upload-Length") == "7" for r in writes if r.method == "PUT")
    assert emu.storage.read(f"{home}/twice.txt") == b"payload"


# ---------------------------------------------------------------------------------------------- row 4


async def test_untyped_internal_errors_are_decided_by_a_stat(emu: Any, client: CS3Client, home: str) -> None:
    """EOS answers INTERNAL with no errno for these; where a Stat can decide, the client types them."""
    await client.mkdir(f"{home}/d")
    await client.upload(f"{home}/d/f.txt", b"f")
    with pytest.raises(errors.NotFound):
        await client.list(f"{home}/gone")
    with pytest.raises(errors.InvalidArgument, match="not a folder"):
        await client.list(f"{home}/d/f.txt")
    with pytest.raises(errors.AlreadyExists):
        await client.mkdir(f"{home}/d")
    with pytest.raises(errors.NotFound):
        await client.set_metadata(f"{home}/d/missing.txt", {"k": "v"})
    with pytest.raises(errors.NotFound):
        await client.delete(f"{home}/d/missing.txt")
    with pytest.raises(errors.NotFound):
        await client.restore_version(f"{home}/d/f.txt", "no-such-key")


async def test_an_undecidable_internal_keeps_the_storage_message(
    emu: Any, client: CS3Client, home: str
) -> None:
    """Move onto an existing file: both exist, so no Stat decides; the storage's message is kept (the
    engine's rename executor then compares ids and reports a conflict)."""
    await client.upload(f"{home}/a.txt", b"a")
    await client.upload(f"{home}/b.txt", b"b")
    if emu.config.untyped_errors:
        with pytest.raises(errors.ServerError, match="error moving"):
            await client.move(f"{home}/a.txt", f"{home}/b.txt")
    else:
        with pytest.raises(errors.AlreadyExists):
            await client.move(f"{home}/a.txt", f"{home}/b.txt")
    assert emu.storage.read(f"{home}/b.txt") == b"b"


# ---------------------------------------------------------------------------------------------- row 8


async def test_an_empty_file_without_checksum_is_recognised_after_a_lost_reply(
    emu: Any, client: CS3Client, home: str
) -> None:
    """EOS reports no adler32 for an empty file: the lost-reply check must still see it is ours."""
    from cs3sync.emulator import DropReply

    path = f"{home}/empty.txt"
    emu.faults.http("PUT", DropReply(), times=1)
    emu.faults.http("PATCH", DropReply(), times=1)
    info = await client.upload(path, b"")
    assert info.size == 0
    if not emu.config.empty_file_checksum:
        assert info.checksum is None
    puts = [r for r in emu.http_log if r.method in ("PUT", "PATCH")]
    assert len(puts) <= 1  # oCIS finishes an empty upload at initiate; EOS commits it once


async def test_an_expired_lock_shown_by_stat_does_not_block(emu: Any, client: CS3Client, home: str) -> None:
    """EOS's Stat still shows a lock after it expired; GetLock and writes ignore it."""
    path = f"{home}/was-locked.txt"
    await client.upload(path, b"a")
    emu.storage.lock(path, app="Collabora", expiration=-60)
    shown = (await client.stat(path)).lock
    assert (shown is not None) == bool(emu.config.stat_reports_expired_locks)
    assert await client.get_lock(path) is None
    await client.upload(path, b"b")
    assert emu.storage.read(path) == b"b"
