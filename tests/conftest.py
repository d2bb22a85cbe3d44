"""Shared fixtures: the anyio backend and the local CS3 emulator (both profiles)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cs3sync.emulator import Emulator, EmulatorConfig, EmulatorThread

PROFILES = ["cernbox", "ocis"]
TEST_PROJECTS = {"physics-data": "_projects/physics-data"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def emulator_config(tmp_path: Path, profile: str, **overrides: Any) -> EmulatorConfig:
    """The configuration the fixtures use: multi-user root, one project space."""
    values: dict[str, Any] = {
        "root": tmp_path / "cs3root",
        "profile": profile,
        "projects": dict(TEST_PROJECTS),
    }
    values.update(overrides)
    return EmulatorConfig(**values)


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def emulator(tmp_path: Path, profile: str) -> AsyncIterator[Emulator]:
    """An in-process emulator on the test's event loop, once per profile."""
    async with Emulator(emulator_config(tmp_path, profile)) as emu:
        yield emu


@pytest.fixture
def emulator_thread(tmp_path: Path, profile: str) -> Iterator[EmulatorThread]:
    """The same emulator on its own event loop in a thread (for synchronous clients or foreign loops)."""
    with EmulatorThread(emulator_config(tmp_path, profile)) as emu:
        yield emu


@pytest.fixture
def token_file(tmp_path: Path) -> Callable[..., Path]:
    """``token_file(user="einstein")`` writes the user's password to a file (mode 600) for basic auth."""

    def write(user: str = "einstein", secret: str | None = None) -> Path:
        from cs3sync.emulator.config import DEMO_USERS

        password = (
            secret if secret is not None else next(u.password for u in DEMO_USERS if u.username == user)
        )
        path = tmp_path / f"{user}.secret"
        path.write_text(password)
        path.chmod(0o600)
        return path

    return write


@pytest.fixture
def cs3_config(token_file: Callable[..., Path]) -> Callable[..., Any]:
    """``cs3_config(emu, user="einstein", **overrides)``: client settings for ``emu``.

    Returns a ``cs3sync.cs3.CS3Config`` when that class exists (only the fields it declares are passed),
    else a plain dict ``{host, http_url, user, password_file}``.
    """

    def build(emu: Emulator | EmulatorThread, user: str = "einstein", **overrides: Any) -> Any:
        password_file = token_file(user)
        try:
            from cs3sync.cs3 import CS3Config  # type: ignore[attr-defined]
        except ImportError:
            values = {
                "host": emu.grpc_address,
                "http_url": emu.http_url,
                "user": user,
                "password_file": str(password_file),
            }
            values.update(overrides)
            return values
        candidate: dict[str, Any] = {
            "host": emu.grpc_address,
            "auth_login_type": "basic",
            "client_id": user,
            "token_path": str(password_file),
            "ssl_enabled": False,
            "tus_enabled": "tus" in (emu.config.upload_protocols or []),
        }
        candidate.update(overrides)
        if dataclasses.is_dataclass(CS3Config):
            accepted = {f.name for f in dataclasses.fields(CS3Config)}
        else:
            accepted = set(inspect.signature(CS3Config).parameters)
        return CS3Config(**{k: v for k, v in candidate.items() if k in accepted})

    return build
