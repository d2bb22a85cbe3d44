"""Fixtures for the CS3 client tests.

They build the emulator directly from its public API (docs/emulator.md) so each test can set
emulator switches with ``@pytest.mark.emu(**EmulatorConfig overrides)`` and client settings with
``@pytest.mark.client(**CS3Config overrides)``. Named ``emu``/``client`` so they never shadow the shared
fixtures of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cs3sync.cs3 import CS3Client, CS3Config

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "emu(**overrides): EmulatorConfig overrides for the cs3 tests")
    config.addinivalue_line("markers", "client(**overrides): CS3Config overrides for the cs3 tests")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def no_sleep(_: float) -> None:
    """Retries in tests never wait: backoff timing is the retry helper's unit test's business."""
    return None


@pytest.fixture(params=["cernbox", "ocis"])
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(name))):
        kwargs.update(mark.kwargs)
    return kwargs


@pytest.fixture
async def emu(request: pytest.FixtureRequest, tmp_path: Path, profile: str) -> AsyncIterator[Any]:
    from cs3sync.emulator import Emulator, EmulatorConfig

    root = tmp_path / "storage"
    root.mkdir()
    config = EmulatorConfig(root=root, profile=profile, **_marker_kwargs(request, "emu"))  # type: ignore[arg-type]
    async with Emulator(config) as server:
        yield server


@pytest.fixture
def secret_file(tmp_path: Path) -> Callable[[str, str | None], Path]:
    """``secret_file(user, secret=None)`` writes the user's password (or ``secret``) to a file."""

    def write(user: str, secret: str | None = None) -> Path:
        path = tmp_path / f"{user}.secret"
        path.write_text((secret if secret is not None else PASSWORDS[user]) + "\n")
        return path

    return write


@pytest.fixture
async def make_client(
    request: pytest.FixtureRequest, emu: Any, secret_file: Callable[..., Path]
) -> AsyncIterator[Callable[..., CS3Client]]:
    """``make_client(user="einstein", **CS3Config overrides)``; closed at teardown."""
    made: list[CS3Client] = []
    marked = _marker_kwargs(request, "client")

    def make(user: str = "einstein", **overrides: Any) -> CS3Client:
        fields: dict[str, Any] = {
            "host": emu.grpc_address,
            "ssl_enabled": False,
            "client_id": user,
            "token_poll_interval": 0.02,
            **marked,
            **overrides,
        }
        if "token_path" not in fields:
            fields["token_path"] = str(secret_file(user))
        client = CS3Client(CS3Config(**fields), sleep=no_sleep)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make_client: Callable[..., CS3Client]) -> CS3Client:
    return make_client()


@pytest.fixture
async def home(client: CS3Client) -> str:
    return await client.home()
