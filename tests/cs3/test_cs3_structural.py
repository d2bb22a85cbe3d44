"""Structural proofs: every RPC the client makes carries a deadline (seen by the server), every HTTP
transfer has timeouts, the loop-blocking check really catches a blocking client, and oCIS revision
keys are downloaded by resource id."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from cs3sync.cs3 import CS3Client, errors, types
from cs3sync.cs3.transfer import PIECE, Source

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


async def _exercise(client: CS3Client, home: str, blob: Path) -> None:
    """One of (nearly) every client operation."""
    await client.whoami()
    await client.stat(home)
    await client.list(home)
    await client.mkdir(f"{home}/d")
    await client.touch(f"{home}/d/t.txt")
    await client.upload(f"{home}/a.txt", b"one")
    await client.upload(f"{home}/a.txt", b"two!")
    await client.upload(f"{home}/big.bin", blob)  # tus where offered (threshold lowered)
    assert await client.read_bytes(f"{home}/a.txt") == b"two!"
    versions = await client.list_versions(f"{home}/a.txt")
    assert await client.read_bytes(f"{home}/a.txt", version_key=versions[0].key) == b"one"
    await client.restore_version(f"{home}/a.txt", versions[0].key)
    await client.set_metadata(f"{home}/a.txt", {"k": "v"})
    await client.unset_metadata(f"{home}/a.txt", ["k"])
    lock_id = client.new_lock_id()
    await client.set_lock(f"{home}/a.txt", lock_id)
    await client.get_lock(f"{home}/a.txt")
    await client.refresh_lock(f"{home}/a.txt", lock_id)
    await client.unlock(f"{home}/a.txt", lock_id)
    await client.quota()
    await client.spaces()
    marie = (await client.find_users("marie"))[0]
    await client.find_groups("physics")
    share = await client.create_share(f"{home}/d", types.Grantee("user", marie.opaque_id, marie.idp))
    await client.list_outgoing_shares()
    await client.list_incoming_shares()
    await client.remove_share(share.id)
    link = await client.create_link(f"{home}/d")
    await client.list_links()
    await client.remove_link(link.id)
    await client.move(f"{home}/a.txt", f"{home}/b.txt")
    await client.delete(f"{home}/b.txt")


@pytest.mark.client(metadata_deadline=17.0, tus_threshold=1, upload_chunk_size=MiB)
async def test_every_rpc_carries_a_deadline(client: CS3Client, emu: Any, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * (2 * MiB + 5))
    home = await client.home()
    await _exercise(client, home, blob)
    calls = list(emu.calls)
    methods = {c.method for c in calls}
    assert len(methods) >= 25, sorted(methods)
    missing = [c.method for c in calls if c.deadline is None]
    assert not missing, f"RPCs sent without a deadline: {missing}"
    # grpc rounds the propagated deadline up a little
    assert all(c.deadline <= 17.5 for c in calls), [
        (c.method, c.deadline) for c in calls if c.deadline > 17.5
    ]
    # The data plane: every phase of every HTTP request is bounded.
    http = await client.data.client()
    timeout = http.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)
    assert timeout.read == client.config.transfer_deadline
    assert timeout.connect == client.config.connect_timeout


async def test_deadline_is_enforced_per_call(client: CS3Client, emu: Any, home: str) -> None:
    """The deadline is not only sent but fires: a hung Stat ends as a connectivity Transient. (Login and
    GetHome ran above with the normal deadline, so a loaded machine cannot make them time out.)"""
    import cs3.storage.provider.v1beta1.provider_api_pb2 as sp

    from cs3sync.cs3 import convert
    from cs3sync.emulator import Hang

    emu.faults.grpc("Stat", Hang(), times=None)
    request = sp.StatRequest(ref=convert.ref(home))
    with anyio.fail_after(30), pytest.raises(errors.Transient) as exc:
        await client.gateway.call("Stat", request, op="stat", path=home, deadline=0.2)
    assert exc.value.code == "DEADLINE_EXCEEDED" and exc.value.connectivity
    (hung,) = [c for c in emu.calls if c.method == "Stat"]
    assert hung.deadline is not None and hung.deadline <= 0.5
    emu.faults.clear()


# --- the loop-blocking check can fail ---------------------------------------------------------------


class LoopWatch:
    """A ticker on the loop; ``worst`` is the longest gap between ticks (the longest the loop was held)."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._done = anyio.Event()

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    async def _tick(self) -> None:
        last = anyio.current_time()
        while not self._done.is_set():
            await anyio.sleep(0.005)
            now = anyio.current_time()
            self.gaps.append(now - last)
            last = now

    @classmethod
    @contextlib.asynccontextmanager
    async def around(cls) -> AsyncIterator[LoopWatch]:
        watch = cls()
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch._tick)
            try:
                yield watch
            finally:
                watch._done.set()


class BlockingSource(Source):
    """The mistake the real check must catch: file reads done synchronously on the event loop (the
    sleep makes the block long enough to be unmistakable on any machine)."""

    async def pieces(self, start: int, length: int, on_piece: Any = None) -> AsyncIterator[bytes]:  # type: ignore[override]
        assert self._path is not None
        with open(self._path, "rb") as f:  # noqa: ASYNC230 - blocking on purpose
            f.seek(start)
            remaining = length
            while remaining > 0:
                time.sleep(0.6)  # noqa: ASYNC251 - blocking on purpose
                piece = f.read(min(PIECE, remaining))
                remaining -= len(piece)
                if on_piece:
                    on_piece(piece)
                yield piece


@pytest.mark.parametrize("profile", ["ocis"])
async def test_loop_watch_catches_a_blocking_client(
    client: CS3Client, home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control for test_big_transfer_never_blocks_the_loop: the same watch, with the client's
    file reader swapped for a blocking one, reports the loop held well past the 0.5 s bound."""
    import cs3sync.cs3.client as client_module

    blob = tmp_path / "small.bin"
    blob.write_bytes(b"b" * 1000)
    monkeypatch.setattr(client_module, "Source", BlockingSource)
    async with LoopWatch.around() as watch:
        await client.upload(f"{home}/blocked.bin", blob)
    assert watch.worst >= 0.5, f"the watch missed a 0.6 s block (worst gap {watch.worst:.3f} s)"


# --- oCIS revision keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["ocis"])
async def test_ocis_revision_keys_download_by_resource_id(client: CS3Client, emu: Any, home: str) -> None:
    """The emulator's ocis profile issues decomposedfs keys (``<node>.REV.<ts>``); with the default
    ``version_ref_style="auto"`` the client asks for them as a resource id, not ``opaque.version_key``."""
    path = f"{home}/rev.txt"
    await client.upload(path, b"revision one")
    info = await client.upload(path, b"two")
    (old,) = await client.list_versions(path)
    assert old.key.startswith(info.file_id.opaque_id + ".REV.")
    mark = len(emu.calls)
    assert await client.read_bytes(path, version_key=old.key) == b"revision one"
    (initiate,) = [c for c in emu.calls[mark:] if c.method == "InitiateFileDownload"]
    assert initiate.request.ref.resource_id.opaque_id == old.key
    assert "version_key" not in initiate.request.opaque.map
    await client.restore_version(path, old.key)
    assert await client.read_bytes(path) == b"revision one"


# --- docs/configuration.md documents every client setting with its default ---------------------------


def _rendered(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return f"`{value}`"
    if isinstance(value, int) and value >= MiB and value % MiB == 0:
        return f"{value // MiB} MiB"
    if isinstance(value, (int, float)):
        return f"`{value:g}`"
    return f'`"{value}"`' if value else '`""`'


def test_configuration_page_documents_every_setting_and_default() -> None:
    import dataclasses

    from cs3sync.cs3 import CS3Config

    readme = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    for f in dataclasses.fields(CS3Config):
        (row,) = [r for r in rows if f"`{f.name}`" in r.split("|")[1]] or [None]
        assert row is not None, f"{f.name} is not in the settings table"
        if f.name == "host" or f.default is None:  # required, or "none"/"system store" in words
            continue
        default = f.default
        column = row.split("|")[3]
        rendered = _rendered(default)
        if f.name == "token_path":
            rendered = '`""`'
        assert rendered in column, f"{f.name}: default {rendered} not in {column!r}"


# --- secrets never reach logs, errors or reprs ------------------------------------------------------


async def test_no_secret_in_logs_errors_or_reprs(
    make_client: Callable[..., CS3Client], emu: Any, secret_file: Callable[..., Path]
) -> None:
    """A session with re-logins, a rejected password, a dropped transfer and an expired transfer token;
    then no password, access token or transfer token appears in any log event, error or repr."""
    from structlog.testing import capture_logs

    from cs3sync.emulator import DropAfter

    seen_errors: list[BaseException] = []
    with capture_logs() as logs:
        client = make_client(upload_attempts=2)
        home = await client.home()
        await client.upload(f"{home}/a.txt", b"a" * 5000)
        emu.auth.expire_all()  # rejected token -> single re-login
        await client.stat(f"{home}/a.txt")
        emu.faults.http("PUT", DropAfter(100))
        await client.upload(f"{home}/a.txt", b"b" * 5000)  # dropped PUT -> re-initiate
        emu.transfers.expire_all()
        assert await client.read_bytes(f"{home}/a.txt") == b"b" * 5000
        emu.faults.http("PUT", DropAfter(100), times=None)
        try:
            await client.upload(f"{home}/a.txt", b"c" * 5000)
        except errors.CS3Error as exc:
            seen_errors.append(exc)
        emu.faults.clear()
        bad = make_client(token_path=str(secret_file("einstein", "wrong-password-value")))
        try:
            await bad.stat(home)
        except errors.CS3Error as exc:
            seen_errors.append(exc)
    assert len(seen_errors) == 2 and isinstance(seen_errors[1], errors.AuthBlocked)
    await emu.wait_http_idle()
    secrets = {"relativity", "wrong-password-value"}
    secrets |= {c.metadata["x-access-token"] for c in emu.calls if "x-access-token" in c.metadata}
    secrets |= {r.headers["X-Reva-Transfer"] for r in emu.http_log if "X-Reva-Transfer" in r.headers}
    assert len(secrets) > 4
    texts = [repr(event) for event in logs]
    texts += [f"{e!s} {e!r}" for e in seen_errors]
    texts += [
        repr(client),
        repr(client.gateway),
        repr(client.gateway.auth),
        repr(client.data),
        repr(client.config),
    ]
    texts += [repr(bad.gateway.auth)]
    for text in texts:
        for secret in secrets:
            assert secret not in text, text[:300]
    assert logs, "expected the client to log something"
