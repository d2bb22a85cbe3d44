"""Small helpers for the engine tests: waiting on engine events (never sleeping)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from cs3sync.engine import SyncEngine


async def until(engine: SyncEngine, predicate: Callable[[], Any], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait on the engine's change signal until `predicate()` (sync or async) is true."""
    with anyio.fail_after(timeout):
        while True:
            since = engine.changed.generation
            value = predicate()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return
            await engine.changed.wait(since)


async def entry_state(engine: SyncEngine, entry_id: int) -> str:
    return (await engine.journal.entry(entry_id)).state


def puts(emulator: Any, status: int | None = 200) -> list[Any]:
    """Simple PUTs in the emulator's http log (committed ones by default)."""
    return [r for r in emulator.http_log if r.method == "PUT" and (status is None or r.status == status)]


def patches(emulator: Any) -> list[Any]:
    return [r for r in emulator.http_log if r.method == "PATCH"]


def initiates(emulator: Any) -> list[Any]:
    return [c for c in emulator.calls if c.method.endswith("InitiateFileUpload")]


def commits(emulator: Any, size: int) -> int:
    """Uploads of `size` bytes that completed on the storage: a simple PUT answered 200, or the tus
    PATCH whose bytes reached the end of the upload."""
    n = 0
    for r in emulator.http_log:
        if r.method == "PUT" and r.status == 200 and r.bytes_in == size:
            n += 1
        elif r.method == "PATCH" and r.status == 204:
            start = int(r.headers.get("Upload-Offset", "0"))
            if start + r.bytes_in == size:
                n += 1
    return n


async def reconnected(client: Any, timeout: float = 15.0) -> None:  # noqa: ASYNC109
    """Wait until the client's gRPC channel is connected again after an emulator restart (grpc-core
    reconnects on its own backoff; without this the next probe may fail fast)."""
    channel = client.gateway._channel
    if channel is not None:
        with anyio.fail_after(timeout):
            await channel.channel_ready()
