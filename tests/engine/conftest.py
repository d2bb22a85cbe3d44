"""Fixtures for the engine tests: an emulator (both profiles), a client on it, and engines on a
journal in the test's tmp dir. Time-dependent tests inject a `ManualClock`; nothing sleeps to
synchronise (waits are on engine events, bounded by `fail_after`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cs3sync.cs3 import CS3Client, CS3Config
from cs3sync.engine import Clock, SyncEngine

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}


async def no_sleep(_: float) -> None:
    """The client's own in-call retries never wait in these tests."""


def client_config(emu: Any, secret: Path, user: str = "einstein", **overrides: Any) -> CS3Config:
    return CS3Config(**client_fields(emu, secret, user, **overrides))


def client_fields(emu: Any, secret: Path, user: str = "einstein", **overrides: Any) -> dict[str, Any]:
    """The client settings of these tests, as plain values (a subprocess gets them as JSON)."""
    fields: dict[str, Any] = {
        "host": emu.grpc_address,
        "ssl_enabled": False,
        "client_id": user,
        "token_path": str(secret),
        "token_poll_interval": 0.02,
        "tus_enabled": True,
        "tus_threshold": 1,
        "upload_chunk_size": 1024 * 1024,  # the smallest chunk the client uses (one read piece)
        "metadata_deadline": 5.0,
        "transfer_deadline": 10.0,
        "connect_timeout": 2.0,
        **overrides,
    }
    return fields


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "einstein.secret"
    path.write_text(PASSWORDS["einstein"] + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def client(emulator: Any, secret: Path) -> AsyncIterator[CS3Client]:
    c = CS3Client(client_config(emulator, secret), sleep=no_sleep)
    try:
        yield c
    finally:
        await c.aclose()


@pytest.fixture
async def home(client: CS3Client) -> str:
    return await client.home()


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def make_engine(client: CS3Client, journal_dir: Path) -> Callable[..., Any]:
    """``async with make_engine(**SyncEngine overrides) as engine`` on the test's journal."""

    @asynccontextmanager
    async def make(clock: Clock | None = None, **kw: Any) -> AsyncIterator[SyncEngine]:
        kw.setdefault("client", client)
        async with SyncEngine(journal_dir=journal_dir, clock=clock, **kw) as engine:
            yield engine

    return make
