"""Faults: every error mapping through the emulator's hooks, transient errors, drops mid-transfer,
token expiry (access and transfer), outages, and a structural proof that nothing blocks the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from cs3sync.cs3 import CS3Client, errors, types
from cs3sync.emulator import Deadline, DropAfter, GrpcAbort, Hang, Status, Unavailable, WrongLength

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def rpcs(emu: Any, since: int = 0) -> list[str]:
    return [call.method for call in emu.calls[since:]]


async def http(emu: Any, since: int = 0) -> list[tuple[str, int]]:
    """The data-plane log since ``since``, once the server has finished every request (a record is
    written when its handler returns, which can be after the client has seen the reply)."""
    await emu.wait_http_idle()
    return [(rec.method, rec.status) for rec in emu.http_log[since:]]


# --- error mappings via the fault hooks -------------------------------------------------------------

GRPC_CASES = [
    # (rpc, action, operation, expected)
    ("Stat", Status(15, "error: eos: stat: (code: 2)"), "stat", errors.NotFound),
    ("CreateContainer", Status(15, "error: eos: mkdir: (code: 17)"), "mkdir", errors.AlreadyExists),
    ("Move", Status(15, "error: path not found when moving"), "move", errors.NotFound),
    ("Delete", Status(20, ""), "delete", errors.Locked),
    ("Delete", Status(12, "mismatching lock ID"), "delete", errors.Locked),
    ("Delete", Status(8, ""), "delete", errors.AmbiguousDenial),  # empty even after a fresh login
    ("InitiateFileUpload", Status(19, "insufficient storage"), "upload", errors.QuotaExceeded),
    ("InitiateFileUpload", Status(11, "etag mismatch"), "upload", errors.PreconditionFailed),
    ("InitiateFileUpload", Status(4, "bad checksum"), "upload", errors.InvalidArgument),
    ("Move", Status(14, "cross storage copy not yet implemented"), "move", errors.Unimplemented),
    ("SetLock", Status(11, "reference already locked"), "set_lock", errors.Locked),
    ("SetLock", Status(12, ""), "set_lock", errors.Locked),
    ("Unlock", Status(20, ""), "unlock", errors.Locked),
    ("Stat", Status(15, "something broke"), "stat", errors.ServerError),
    ("Stat", GrpcAbort("UNKNOWN", "error getting storage provider"), "stat", errors.Transient),
    ("Stat", Unavailable(), "stat", errors.Transient),
    ("Stat", Deadline(), "stat", errors.Transient),
    ("Delete", Unavailable(), "delete", errors.Transient),
    ("Stat", GrpcAbort("UNIMPLEMENTED", ""), "stat", errors.Unimplemented),
]


async def _run(client: CS3Client, op: str, home: str) -> None:
    path = f"{home}/target.txt"
    if op == "stat":
        await client.stat(path)
    elif op == "mkdir":
        await client.mkdir(f"{home}/newdir")
    elif op == "move":
        await client.move(path, f"{home}/moved.txt")
    elif op == "delete":
        await client.delete(path)
    elif op == "upload":
        await client.upload(path, b"new")
    elif op == "set_lock":
        await client.set_lock(path, "id")
    elif op == "unlock":
        await client.unlock(path, "id")


@pytest.mark.parametrize(
    ("rpc", "action", "op", "expected"), GRPC_CASES, ids=lambda v: getattr(v, "__name__", None)
)
async def test_grpc_error_mapping(
    client: CS3Client, emu: Any, home: str, rpc: str, action: Any, op: str, expected: type
) -> None:
    await client.upload(f"{home}/target.txt", b"x")
    emu.faults.grpc(rpc, action, times=None)
    with pytest.raises(expected) as exc:
        await _run(client, op, home)
    assert type(exc.value) is expected
    if isinstance(action, (Unavailable, Deadline)):
        assert exc.value.connectivity  # type: ignore[attr-defined]


async def test_transient_reads_are_retried_mutations_are_not(client: CS3Client, emu: Any, home: str) -> None:
    await client.login()
    emu.faults.grpc("Stat", Unavailable(), times=2)
    mark = len(emu.calls)
    assert (await client.stat(home)).type == "directory"  # third attempt succeeds
    assert rpcs(emu, mark).count("Stat") >= 1
    emu.faults.grpc("CreateContainer", Unavailable(), times=1)
    with pytest.raises(errors.Transient):
        await client.mkdir(f"{home}/once")  # not retried blindly: the journal verifies and retries
    assert await client.stat_or_none(f"{home}/once") is None


@pytest.mark.client(metadata_deadline=0.3)
async def test_hung_gateway_hits_the_deadline(client: CS3Client, emu: Any, home: str) -> None:
    emu.faults.grpc("Stat", Hang(), times=None)
    with anyio.fail_after(10):
        with pytest.raises(errors.Transient) as exc:
            await client.stat(home)
    assert exc.value.connectivity
    emu.faults.clear()


HTTP_CASES = [
    ("PUT", 507, errors.QuotaExceeded),
    ("PUT", 409, errors.Locked),
    ("PUT", 500, errors.Transient),  # after upload_attempts fresh initiates
    ("PUT", 403, errors.PermissionDenied),  # 403 every time: not an expired token after all
]


@pytest.mark.parametrize(("method", "status", "expected"), HTTP_CASES)
async def test_http_upload_error_mapping(
    client: CS3Client, emu: Any, home: str, method: str, status: int, expected: type
) -> None:
    emu.faults.http(method, Status(status), times=None)
    mark = len(emu.calls)
    with pytest.raises(expected):
        await client.upload(f"{home}/x.bin", b"payload")
    initiates = rpcs(emu, mark).count("InitiateFileUpload")
    if expected in (errors.Transient, errors.PermissionDenied):
        assert initiates == client.config.upload_attempts  # never a second PUT on one token
    else:
        assert initiates == 1


async def test_http_download_error_mapping(client: CS3Client, emu: Any, home: str) -> None:
    await client.upload(f"{home}/d.bin", b"data")
    emu.faults.http("GET", Status(404), times=None)
    with pytest.raises(errors.NotFound):
        await client.read_bytes(f"{home}/d.bin")
    emu.faults.clear()
    emu.faults.http("GET", Status(500), times=None)
    with pytest.raises(errors.Transient):
        await client.read_bytes(f"{home}/d.bin")
    emu.faults.clear()
    emu.faults.http("GET", Status(503), times=1)
    assert await client.read_bytes(f"{home}/d.bin") == b"data"


# --- drops mid-transfer ------------------------------------------------------------------------------


async def test_drop_mid_put_reinitiates(client: CS3Client, emu: Any, home: str) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    emu.faults.http("PUT", DropAfter(100_000), times=1)
    mark, hmark = len(emu.calls), len(emu.http_log)
    info = await client.upload(f"{home}/dropped.bin", data)
    assert info.size == len(data)
    assert rpcs(emu, mark).count("InitiateFileUpload") == 2  # a fresh token, never the same PUT twice
    assert [m for m, _ in (await http(emu, hmark))] == ["PUT", "PUT"]
    assert await client.read_bytes(f"{home}/dropped.bin") == data


async def test_drop_mid_put_gives_up_clearly(client: CS3Client, emu: Any, home: str) -> None:
    emu.faults.http("PUT", DropAfter(10), times=None)
    with pytest.raises(errors.Transient) as exc:
        await client.upload(f"{home}/never.bin", b"x" * 100_000)
    assert "never.bin" in str(exc.value) and not exc.value.connectivity
    assert await client.stat_or_none(f"{home}/never.bin") is None


@pytest.mark.emu(upload_protocols=["simple", "tus"])
@pytest.mark.client(tus_threshold=1024, upload_chunk_size=MiB)
async def test_drop_mid_patch_resumes_from_server_offset(client: CS3Client, emu: Any, home: str) -> None:
    data = bytes(range(251)) * (3 * MiB // 251 + 1)
    emu.faults.http("PATCH", DropAfter(300_000), after=1, times=1)
    offsets: list[int] = []

    async def record(session: types.UploadSession) -> None:
        offsets.append(session.offset)

    mark, hmark = len(emu.calls), len(emu.http_log)
    info = await client.upload(f"{home}/tus.bin", data, on_session=record)
    assert info.size == len(data)
    assert rpcs(emu, mark).count("InitiateFileUpload") == 1  # resumed in place
    methods = [m for m, _ in (await http(emu, hmark))]
    assert "HEAD" in methods
    # the bytes that reached the server before the drop were kept and not sent again
    assert any(MiB < o < 2 * MiB for o in offsets)
    assert await client.read_bytes(f"{home}/tus.bin") == data


async def test_drop_mid_get_resumes(client: CS3Client, emu: Any, home: str) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    await client.upload(f"{home}/get.bin", data)
    emu.faults.http("GET", DropAfter(200_000), times=1)
    hmark = len(emu.http_log)
    assert await client.read_bytes(f"{home}/get.bin") == data
    await emu.wait_http_idle()
    gets = [rec for rec in emu.http_log[hmark:] if rec.method == "GET"]
    assert len(gets) == 2 and gets[1].headers.get("Range", "").startswith("bytes=")
    assert gets[1].status == 206


@pytest.mark.emu(range_support=False)
async def test_drop_mid_get_without_range_support_restarts(client: CS3Client, emu: Any, home: str) -> None:
    data = bytes(range(256)) * 4096
    await client.upload(f"{home}/get.bin", data)
    emu.faults.http("GET", DropAfter(200_000), times=1)
    hmark = len(emu.http_log)
    assert await client.read_bytes(f"{home}/get.bin") == data
    await emu.wait_http_idle()
    statuses = [rec.status for rec in emu.http_log[hmark:] if rec.method == "GET"]
    assert 416 in statuses and statuses[-1] == 200


async def test_short_read_is_detected_and_resumed(client: CS3Client, emu: Any, home: str) -> None:
    data = b"0123456789" * 10_000
    await client.upload(f"{home}/short.bin", data)
    emu.faults.http("GET", WrongLength(-1), times=1)
    assert await client.read_bytes(f"{home}/short.bin") == data


async def test_change_during_download_is_not_spliced(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/moving.bin"
    await client.upload(path, b"a" * 500_000)
    emu.faults.http("GET", DropAfter(100_000), times=1)
    with pytest.raises(errors.PreconditionFailed):
        async with client.download(path) as stream:
            async for _ in stream:
                emu.storage.external_write(path, b"b" * 500_000)


# --- tokens -----------------------------------------------------------------------------------------


async def test_access_token_expiry_is_invisible(client: CS3Client, emu: Any, home: str) -> None:
    await client.stat(home)
    logins = client.gateway.auth.logins
    emu.auth.expire_all()  # the server invalidates before exp: PERMISSION_DENIED "access token is invalid"
    await client.stat(home)
    await client.upload(f"{home}/after.txt", b"x")
    assert client.gateway.auth.logins == logins + 1


async def test_clock_expiry_is_invisible(client: CS3Client, emu: Any, home: str) -> None:
    emu.auth.set_ttl(60)
    await client.login()
    emu.clock.advance(3600)
    assert (await client.list(home)) == []


async def test_expiry_between_initiate_and_put_relogs(client: CS3Client, emu: Any, home: str) -> None:
    expired = False

    async def expire_once(session: types.UploadSession) -> None:
        nonlocal expired
        if not expired:
            expired = True
            emu.auth.expire_all()  # the PUT then gets HTTP 401

    hmark = len(emu.http_log)
    logins = client.gateway.auth.logins
    info = await client.upload(f"{home}/x.bin", b"bytes", on_session=expire_once)
    assert info.size == 5
    assert (await http(emu, hmark)) == [("PUT", 401), ("PUT", 200)]
    assert client.gateway.auth.logins == logins + 1


@pytest.mark.emu(bearer_tokens={"oidc-one": "einstein", "oidc-two": "einstein"})
async def test_bearer_rewritten_token_file(make_client: Any, secret_file: Any, emu: Any) -> None:
    path = secret_file("einstein", "oidc-one")
    client = make_client(auth_login_type="bearer", token_path=str(path))
    home = await client.home()
    await client.stat(home)
    # the IdP token expired and the sidecar wrote a new one; Reva's token is invalidated
    emu.auth.fail_authenticate(9, "oidc: error verifying oidc token", times=None)
    emu.auth.expire_all()
    path.write_text("oidc-two")
    emu.auth.clear_failures()
    await client.stat(home)
    auths = [c.request for c in emu.calls if c.method == "Authenticate"]
    assert auths[-1].client_secret == "oidc-two" and auths[-1].type == "bearer"


@pytest.mark.emu(bearer_tokens={"oidc-one": "einstein", "oidc-two": "einstein"})
async def test_unchanged_token_file_blocks_then_recovers(
    make_client: Any, secret_file: Any, emu: Any
) -> None:
    path = secret_file("einstein", "oidc-one")
    client = make_client(auth_login_type="bearer", token_path=str(path))
    home = await client.home()
    emu.auth.fail_authenticate(9, "oidc: error verifying oidc token", times=None)
    emu.auth.expire_all()
    with pytest.raises(errors.AuthBlocked) as blocked:
        await client.stat(home)
    assert "oidc-one" not in str(blocked.value)
    # fails fast while the file is unchanged (no hammering of the gateway)
    n = len(emu.calls)
    with pytest.raises(errors.AuthBlocked):
        await client.stat(home)
    assert rpcs(emu, n).count("Authenticate") == 0

    async def refresh_token_file() -> None:
        path.write_text("oidc-two")
        emu.auth.clear_failures()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked.value.wait_for_change)
            tg.start_soon(refresh_token_file)
    await client.stat(home)


async def test_login_failure_is_blocked_not_failed(make_client: Any, secret_file: Any, home: str) -> None:
    client = make_client(token_path=str(secret_file("einstein", "not-the-password")))
    with pytest.raises(errors.AuthBlocked):
        await client.stat(home)


@pytest.mark.parametrize("client_id", ["einstein", "mail:einstein@example.org"])
async def test_machine_auth(make_client: Any, secret_file: Any, emu: Any, client_id: str) -> None:
    client = make_client(
        auth_login_type="machine",
        client_id=client_id,
        token_path=str(secret_file("einstein", emu.config.machine_api_key)),
    )
    assert (await client.whoami()).username == "einstein"


async def test_transfer_token_expiry_reinitiates(client: CS3Client, emu: Any, home: str) -> None:
    expired = False

    async def expire_once(session: types.UploadSession) -> None:
        nonlocal expired
        if not expired:
            expired = True
            emu.transfers.expire_all()  # the PUT then gets 403 from the data gateway

    mark, hmark = len(emu.calls), len(emu.http_log)
    info = await client.upload(f"{home}/t.bin", b"bytes", on_session=expire_once)
    assert info.size == 5
    assert rpcs(emu, mark).count("InitiateFileUpload") == 2
    assert (await http(emu, hmark)) == [("PUT", 403), ("PUT", 200)]


@pytest.mark.emu(upload_protocols=["simple", "tus"])
@pytest.mark.client(tus_threshold=1024, upload_chunk_size=MiB)
async def test_expired_recorded_tus_session_reinitiates(client: CS3Client, emu: Any, home: str) -> None:
    data = b"q" * (2 * MiB)
    sessions: list[types.UploadSession] = []

    async def record(session: types.UploadSession) -> None:
        sessions.append(types.UploadSession(**vars(session)))

    emu.faults.http("PATCH", DropAfter(0), after=1, times=None)
    with pytest.raises(errors.Transient):
        await client.upload(f"{home}/e.bin", data, on_session=record)
    emu.faults.clear()
    emu.transfers.expire_all()
    mark = len(emu.calls)
    info = await client.upload(f"{home}/e.bin", data, session=sessions[-1])
    assert info.size == len(data) and "InitiateFileUpload" in rpcs(emu, mark)
    assert await client.read_bytes(f"{home}/e.bin") == data


# --- outages ----------------------------------------------------------------------------------------


async def test_gateway_outage_and_restart(client: CS3Client, emu: Any, home: str) -> None:
    await client.stat(home)
    await emu.faults.outage()
    with pytest.raises(errors.Transient) as exc:
        await client.stat(home)
    assert exc.value.connectivity
    await emu.faults.restart()
    channel = client.gateway._channel
    assert channel is not None
    with anyio.fail_after(30):
        # The channel reconnects on its own (bounded backoff); wait for that event, not a sleep loop.
        await channel.channel_ready()
    await client.stat(home)


# --- the loop is never blocked ----------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["ocis"])
async def test_big_transfer_never_blocks_the_loop(tmp_path: Path, secret_file: Any, profile: str) -> None:
    """A 64 MiB upload and download, with the emulator in its own thread so only the client runs on
    this loop: a 5 ms ticker must keep ticking throughout (bound generous: 0.5 s). That the check can
    fail is shown by test_cs3_structural.py::test_loop_watch_catches_a_blocking_client."""
    from cs3sync.cs3 import CS3Config
    from cs3sync.emulator import EmulatorConfig, EmulatorThread

    root = tmp_path / "storage"
    root.mkdir()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * (64 * MiB // 256))
    with EmulatorThread(EmulatorConfig(root=root, profile=profile)) as emu:
        for tus in (False, True):
            cfg = CS3Config(
                host=emu.grpc_address,
                ssl_enabled=False,
                client_id="einstein",
                token_path=str(secret_file("einstein")),
                tus_enabled=tus,
            )
            async with CS3Client(cfg) as client:
                home = await client.home()
                gaps: list[float] = []
                done = anyio.Event()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_tick, gaps, done)
                    info = await client.upload(f"{home}/big.bin", blob)
                    total = 0
                    async with client.download(f"{home}/big.bin") as stream:
                        async for chunk in stream:
                            total += len(chunk)
                    done.set()
                assert info.size == total == 64 * MiB
                assert len(gaps) > 20
                assert max(gaps) < 0.5, f"loop blocked for {max(gaps):.3f} s"


async def _tick(gaps: list[float], done: anyio.Event) -> None:
    last = anyio.current_time()
    while not done.is_set():
        await anyio.sleep(0.005)
        now = anyio.current_time()
        gaps.append(now - last)
        last = now
