"""CS3 client pieces that need no server: the error table, JWT expiry, protocol choice, retries,
config validation, secrets hygiene, lazy connection."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import grpc
import httpx
import jwt
import pytest

from cs3sync.cs3 import CS3Client, CS3Config, errors, transfer
from cs3sync.cs3.auth import Authenticator, Secret, refresh_time, token_expiry
from cs3sync.cs3.retry import retry_idempotent
from cs3sync.cs3.transfer import PIECE, Source
from cs3sync.cs3.types import FileId, UploadSession
from cs3sync.cs3.uploads import choose_protocol

E = errors
KEY = "test-signing-key-of-sufficient-length-32b"

# (code, message, op, expected class) — every driver's way of saying the same thing.
STATUS_TABLE = [
    (E.NOT_FOUND, "path not found when statting", "stat", E.NotFound),
    (E.INTERNAL, "error: eos: mkdir failed (code: 2)", "delete", E.NotFound),
    (E.INTERNAL, "eos: rename: (code:17)", "move", E.AlreadyExists),
    (E.INTERNAL, "error: (code: 13)", "delete", E.PermissionDenied),
    (E.INTERNAL, "quota exceeded (code: 122)", "upload", E.QuotaExceeded),
    (E.INTERNAL, "path not found when initiating upload", "upload", E.NotFound),
    (E.INTERNAL, "something odd", "stat", E.ServerError),
    (E.ALREADY_EXISTS, "file exists", "mkdir", E.AlreadyExists),
    (E.PERMISSION_DENIED, "", "stat", E.AmbiguousDenial),  # gateway-relayed: maybe our token (row 10)
    (E.PERMISSION_DENIED, "denied by ACL", "stat", E.PermissionDenied),
    (E.PERMISSION_DENIED, "auth: core access token is invalid", "stat", E.Unauthenticated),
    (E.UNAUTHENTICATED, "auth: core access token not found", "stat", E.Unauthenticated),
    (E.FAILED_PRECONDITION, "reference already locked", "set_lock", E.Locked),
    (E.FAILED_PRECONDITION, "", "refresh_lock", E.Locked),
    (E.FAILED_PRECONDITION, "", "unlock", E.Locked),
    (E.ABORTED, "mismatching lock ID", "refresh_lock", E.Locked),
    (E.ABORTED, "", "upload", E.Locked),  # decomposedfs CheckLock
    (E.ABORTED, "", "delete", E.Locked),
    (E.LOCKED, "", "upload", E.Locked),
    (E.LOCKED, "", "unlock", E.Locked),
    (E.PERMISSION_DENIED, "lock holder mismatch", "unlock", E.Locked),
    (E.FAILED_PRECONDITION, "etag mismatch", "upload", E.PreconditionFailed),
    (E.FAILED_PRECONDITION, "resource is not a file", "upload", E.PreconditionFailed),
    (E.ABORTED, '{"conflict": "share exists on parent"}', "create_share", E.AlreadyExists),
    (E.UNKNOWN, "ShareClient returned error: share already exists", "create_share", E.AlreadyExists),
    (E.INSUFFICIENT_STORAGE, "", "upload", E.QuotaExceeded),
    (E.INVALID_ARGUMENT, "bad checksum", "upload", E.InvalidArgument),
    (E.UNIMPLEMENTED, "cross storage copy not yet implemented", "move", E.Unimplemented),
    (E.UNAVAILABLE, "", "stat", E.Transient),
    (E.TOO_EARLY, "", "stat", E.Transient),
    (E.UNKNOWN, "connection refused", "stat", E.Transient),
]


@pytest.mark.parametrize(("code", "message", "op", "expected"), STATUS_TABLE)
def test_status_table(code: int, message: str, op: str, expected: type) -> None:
    err = errors.from_status(code, message, op=op, path="/eos/user/e/einstein/x")
    assert type(err) is expected, err
    assert "/eos/user/e/einstein/x" in str(err)


GRPC_TABLE = [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect", E.Transient, True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", E.Transient, True),
    (grpc.StatusCode.UNKNOWN, "error getting provider", E.Transient, False),  # gateway Go error
    (grpc.StatusCode.UNAUTHENTICATED, "auth: core access token not found", E.Unauthenticated, None),
    (grpc.StatusCode.PERMISSION_DENIED, "auth: core access token is invalid", E.Unauthenticated, None),
    (grpc.StatusCode.PERMISSION_DENIED, "nope", E.PermissionDenied, None),
    (grpc.StatusCode.UNIMPLEMENTED, "", E.Unimplemented, None),
    (grpc.StatusCode.NOT_FOUND, "", E.NotFound, None),
    (grpc.StatusCode.INTERNAL, "Received RST_STREAM / connection reset; unavailable", E.Transient, True),
    (grpc.StatusCode.INTERNAL, "(code: 2)", E.NotFound, None),
    (grpc.StatusCode.CANCELLED, "", E.Transient, False),
]


@pytest.mark.parametrize(("code", "details", "expected", "connectivity"), GRPC_TABLE)
def test_grpc_table(code: grpc.StatusCode, details: str, expected: type, connectivity: bool | None) -> None:
    err = errors.from_grpc_code(code, details, op="stat", path="/x")
    assert type(err) is expected, err
    if connectivity is not None:
        assert err.connectivity is connectivity  # type: ignore[attr-defined]


HTTP_TABLE = [
    (401, "upload", E.Unauthenticated),
    (403, "download", E.PermissionDenied),
    (404, "download", E.NotFound),
    (409, "upload", E.Locked),  # EOS: X-Lock-Holder mismatch
    (423, "upload", E.Locked),
    (412, "upload", E.PreconditionFailed),
    (507, "upload", E.QuotaExceeded),
    (500, "upload", E.Transient),
    (503, "download", E.Transient),
    (419, "upload", E.Transient),
    (413, "upload", E.InvalidArgument),
]


@pytest.mark.parametrize(("status", "op", "expected"), HTTP_TABLE)
def test_http_table(status: int, op: str, expected: type) -> None:
    assert type(errors.from_http(status, op=op, path="/x")) is expected


def test_locked_names_holder() -> None:
    err = errors.Locked("conflict", holder="JupyterLab", op="upload", path="/a")
    assert "JupyterLab" in str(err)
    assert err.holder == "JupyterLab"


def test_retryable_classification() -> None:
    assert errors.is_retryable(errors.Transient("x"))
    assert not errors.is_retryable(errors.NotFound("x"))
    assert not errors.is_retryable(errors.AuthBlocked("x"))


# --- JWT expiry ---------------------------------------------------------------------------------------


def test_token_expiry_reads_exp_without_verifying() -> None:
    token = jwt.encode({"exp": 1_900_000_000, "aud": ["reva"], "user": {}}, KEY, algorithm="HS256")
    assert token_expiry(token) == 1_900_000_000.0
    # an already-expired token still parses: we only schedule refreshes with it
    old = jwt.encode({"exp": 10}, KEY, algorithm="HS256")
    assert token_expiry(old) == 10.0


@pytest.mark.parametrize(
    "token", ["not-a-jwt", "", "a.b.c", jwt.encode({"sub": "x"}, KEY, algorithm="HS256")]
)
def test_token_expiry_tolerates_non_jwts(token: str) -> None:
    assert token_expiry(token) is None


def test_refresh_time() -> None:
    cfg = CS3Config(host="h:1", ssl_enabled=False, token_refresh_margin=60)
    assert refresh_time(1000.0, 1000.0 + 86400, cfg) == pytest.approx(1000 + 86400 - 60)
    # short-lived tokens are not refreshed on every call: 90% of their life is used
    assert refresh_time(1000.0, 1002.0, cfg) == pytest.approx(1001.8)
    # no exp: authtokenvalidity
    assert refresh_time(0.0, None, cfg.replace(authtokenvalidity=100)) == pytest.approx(90)
    # clocks disagree (exp already past by our clock): try again soon, not in a loop
    assert refresh_time(1000.0, 900.0, cfg) == 1001.0


def test_secret_never_shows() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"
    session = UploadSession("tus", "http://dg/x", "transfer-token-value", None, 0, 10)
    assert "transfer-token-value" not in repr(session)


@pytest.mark.anyio
async def test_auth_single_flight_and_blocked(tmp_path) -> None:
    token_file = tmp_path / "secret"
    token_file.write_text("relativity\n")
    calls: list[tuple[str, str, str]] = []

    async def authenticate(kind: str, client_id: str, secret: str) -> str:
        calls.append((kind, client_id, secret))
        if secret != "relativity":
            raise errors.PermissionDenied("wrong password", op="login")
        return jwt.encode({"exp": time.time() + 3600, "n": len(calls)}, KEY, algorithm="HS256")

    cfg = CS3Config(
        host="h:1",
        ssl_enabled=False,
        client_id="einstein",
        token_path=str(token_file),
        token_poll_interval=0.01,
    )
    auth = Authenticator(cfg, authenticate)
    first = await auth.token()
    assert calls == [("basic", "einstein", "relativity")]
    assert await auth.token() == first  # cached

    # many concurrent callers with the same rejected token -> one login
    import anyio

    results: list[Secret] = []

    async def rejected() -> None:
        results.append(await auth.relogin(first))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(rejected)
    assert len(calls) == 2
    assert len(set(results)) == 1 and results[0] != first

    # wrong secret -> AuthBlocked, and later calls fail fast without calling the server
    token_file.write_text("badsecret-xyz")
    with pytest.raises(errors.AuthBlocked) as blocked:
        await auth.relogin(results[0])
    n = len(calls)
    with pytest.raises(errors.AuthBlocked):
        await auth.token()
    assert len(calls) == n
    assert "badsecret-xyz" not in str(blocked.value) and "relativity" not in str(blocked.value)

    # the waiter returns once the file changes
    async def fix() -> None:
        token_file.write_text("relativity")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked.value.wait_for_change)
            tg.start_soon(fix)
    await auth.token()
    assert not auth.blocked


# --- protocol choice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "enabled", "size", "expected"),
    [
        (["simple"], True, 10**9, "simple"),  # EOS
        (["tus", "simple"], True, 10**9, "tus"),
        (["simple", "tus"], True, 10, "simple"),  # below the threshold
        (["simple", "tus"], False, 10**9, "simple"),
        (["tus"], False, 10, "tus"),  # the only way in
        (["webdav", "simple", "tus"], True, 100, "tus"),
    ],
)
def test_choose_protocol(offered: list[str], enabled: bool, size: int, expected: str) -> None:
    assert choose_protocol(offered, tus_enabled=enabled, size=size, threshold=100) == expected


def test_choose_protocol_none() -> None:
    with pytest.raises(errors.Unimplemented):
        choose_protocol(["webdav"], tus_enabled=True, size=1, threshold=1)


# --- retry helper ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_retry_transient_with_injected_sleep() -> None:
    slept: list[float] = []
    attempts = 0

    async def sleep(s: float) -> None:
        slept.append(s)

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise errors.Transient("blip", connectivity=True)
        return "ok"

    assert await retry_idempotent(flaky, attempts=3, initial_wait=0.5, max_wait=4, sleep=sleep) == "ok"
    assert attempts == 3 and len(slept) == 2 and all(s > 0 for s in slept)


@pytest.mark.anyio
async def test_retry_gives_up_and_skips_permanent() -> None:
    async def sleep(s: float) -> None:
        pass

    n = 0

    async def always() -> None:
        nonlocal n
        n += 1
        raise errors.Transient("down")

    with pytest.raises(errors.Transient):
        await retry_idempotent(always, attempts=4, sleep=sleep)
    assert n == 4

    n = 0

    async def permanent() -> None:
        nonlocal n
        n += 1
        raise errors.NotFound("gone")

    with pytest.raises(errors.NotFound):
        await retry_idempotent(permanent, attempts=4, sleep=sleep)
    assert n == 1


# --- config, types, sources -------------------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        CS3Config(host="h:1", auth_login_type="kerberos")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CS3Config(host="h:1", keepalive=10)
    with pytest.raises(ValueError):
        CS3Config(host="h:1", max_receive=4 * 1024 * 1024)
    cfg = CS3Config(host="h:1")
    assert cfg.ssl_enabled and cfg.ssl_verify and cfg.tus_enabled
    assert cfg.upload_chunk_size == 16 * 1024 * 1024 and cfg.keepalive >= 300


def test_file_id_roundtrip() -> None:
    fid = FileId("00000000-0000-0000-0000-000000000000", "c3BhY2U", "abc")
    assert str(fid) == "00000000-0000-0000-0000-000000000000$c3BhY2U!abc"
    assert FileId.parse(str(fid)) == fid


@pytest.mark.anyio
async def test_source_pieces(tmp_path) -> None:
    data = bytes(range(256)) * (PIECE // 128 + 3)
    f = tmp_path / "blob"
    f.write_bytes(data)
    for src in (Source(f), Source(data)):
        assert await src.size() == len(data)
        got = b"".join([p async for p in src.pieces(5, len(data) - 10)])
        assert got == data[5:-5]
        assert all(len(p) <= PIECE for p in [p async for p in src.pieces(0, len(data))])


# --- lazy connection ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.anyio
async def test_client_creation_never_blocks_and_down_gateway_is_transient(tmp_path) -> None:
    token_file = tmp_path / "secret"
    token_file.write_text("relativity")
    cfg = CS3Config(
        host=f"127.0.0.1:{_free_port()}",
        ssl_enabled=False,
        client_id="einstein",
        token_path=str(token_file),
        metadata_deadline=5,
        retry_attempts=2,
    )
    client = CS3Client(cfg, sleep=_no_sleep)
    # Structural, not timed: creating the client opened nothing (no channel, no HTTP client, no login).
    assert client.gateway._channel is None and client.data._client is None
    assert client.gateway.auth.logins == 0
    try:
        with pytest.raises(errors.Transient) as exc:
            await client.stat("/home/einstein")
        assert exc.value.connectivity
        # Fails fast: refused (UNAVAILABLE), not parked until the deadline as wait_for_ready would be.
        assert exc.value.code == "UNAVAILABLE"
    finally:
        await client.aclose()
    assert "relativity" not in repr(client) and "relativity" not in repr(client.gateway.auth)


async def _no_sleep(_: float) -> None:
    return None


def test_source_refuses_str() -> None:
    with pytest.raises(TypeError):
        Source("some text or a path?")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_share_listings_follow_pages() -> None:
    """Listings loop over next_page_token (cs3client ignores it)."""
    import cs3.gateway.v1beta1.gateway_api_pb2 as gw
    import cs3.gateway.v1beta1.resources_pb2 as gwres
    import cs3.sharing.collaboration.v1beta1.resources_pb2 as sharepb

    client = CS3Client(CS3Config(host="127.0.0.1:1", ssl_enabled=False))
    pages = {"": ("p2", "a"), "p2": ("p3", "b"), "p3": ("", "c")}
    seen: list[str] = []

    async def fake_call(method: str, request, **kw):  # type: ignore[no-untyped-def]
        seen.append(request.page_token)
        nxt, share_id = pages[request.page_token]
        info = gwres.ShareResourceInfo(share=sharepb.Share(id=sharepb.ShareId(opaque_id=share_id)))
        return gw.ListExistingSharesResponse(share_infos=[info], next_page_token=nxt)

    client.gateway.call = fake_call  # type: ignore[method-assign]
    shares = await client.list_outgoing_shares()
    assert [s.id for s in shares] == ["a", "b", "c"] and seen == ["", "p2", "p3"]
    await client.aclose()


def test_resource_info_conversion_builds_the_same_dataclasses() -> None:
    """The fast path of `convert` (filling ``__dict__``) gives objects equal to the constructors' own,
    with every field set, and a listing shares one parent FileId."""
    import dataclasses

    import cs3.storage.provider.v1beta1.resources_pb2 as spr

    from cs3sync.cs3 import convert
    from cs3sync.cs3.types import Lock, ResourceInfo

    msgs = []
    for i in range(3):
        m = spr.ResourceInfo(path=f"/home/d/f{i}", type=spr.RESOURCE_TYPE_FILE, size=10 + i, etag=f"e{i}")
        m.mtime.seconds, m.mtime.nanos = 1_700_000_000, 7
        m.id.storage_id, m.id.space_id, m.id.opaque_id = "s", "sp", f"o{i}"
        m.parent_id.storage_id, m.parent_id.space_id, m.parent_id.opaque_id = "s", "sp", "dir"
        m.checksum.type, m.checksum.sum = 2, "ABCD"
        m.owner.opaque_id = "einstein"
        m.arbitrary_metadata.metadata["k"] = "v"
        if i == 1:
            m.lock.lock_id, m.lock.app_name, m.lock.type = "L", "app", 2
        msgs.append(m)
    infos = convert.resource_infos(msgs)
    assert infos[1] == ResourceInfo(
        path="/home/d/f1", name="f1", type="file", size=11, mtime_ns=1_700_000_000_000_000_007, etag="e1",
        file_id=FileId("s", "sp", "o1"), checksum="adler32:abcd", mimetype="", writable=True,
        lock=Lock(lock_id="L", app_name="app", type="write"), metadata={"k": "v"},
        parent_id=FileId("s", "sp", "dir"), owner="einstein",
    )  # fmt: skip
    for info in infos:
        assert set(vars(info)) == {f.name for f in dataclasses.fields(ResourceInfo)}
        assert set(vars(info.file_id)) == {f.name for f in dataclasses.fields(FileId)}
        assert hash(info.file_id) == hash(FileId("s", "sp", info.file_id.opaque_id))
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.size = 0  # type: ignore[misc]
    assert infos[0].parent_id is infos[2].parent_id
    bare = convert.resource_info(spr.ResourceInfo(path="/x/", type=spr.RESOURCE_TYPE_CONTAINER))
    assert bare == ResourceInfo(
        path="/x/", name="x", type="directory", size=0, mtime_ns=0, etag="", file_id=FileId(),
        mimetype="httpd/unix-directory",
    )  # fmt: skip


@pytest.mark.anyio
async def test_the_data_planes_http_client_is_built_off_the_event_loop(monkeypatch) -> None:
    """Building httpx's client reads the CA bundle into an SSL context (20-40 ms of CPU): the first
    transfer must not hold the event loop for it."""
    built_in: list[str] = []
    real = httpx.AsyncClient

    def recording(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        built_in.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(transfer.httpx, "AsyncClient", recording)
    data = transfer.DataPlane(CS3Config(host="h:1"))
    try:
        client = await data.client()
        assert await data.client() is client
    finally:
        await data.aclose()
    assert len(built_in) == 1 and built_in[0] != threading.current_thread().name
