"""Shared fixtures: the anyio backend and the local CS3 emulator (both profiles)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cs3sync.cs3 import CS3Config
from cs3sync.emulator import Emulator, EmulatorConfig, EmulatorThread

# Tests render every cs3sync event (debug included) into pytest's log capture, shown with a failure.
logging.getLogger("cs3sync").setLevel(logging.DEBUG)

# jp_fetch, jp_serverapp and friends for the REST tests; pytest only accepts plugins from the root conftest.
pytest_plugins = ("pytest_jupyter.jupyter_server",)


def _anyio_marked(collector: Any, obj: Any) -> bool:
    own = getattr(obj, "pytestmark", ())
    return collector.get_closest_marker("anyio") is not None or any(m.name == "anyio" for m in own)


def pytest_configure(config: pytest.Config) -> None:
    """pytest-jupyter collects and runs *every* coroutine test on its own loop (tryfirst hooks), which
    would steal the ``@pytest.mark.anyio`` tests from the anyio plugin. Hand those back: its hooks now
    step aside (return None) for anyio-marked tests and keep serving the plain ``async def`` ones."""
    hooks = config.pluginmanager.hook

    def jupyter_impls(hook: Any) -> list[Any]:
        # pytest_jupyter.jupyter_server star-imports these hooks, so match on where they were defined.
        return [i for i in hook.get_hookimpls() if getattr(i.function, "__module__", "") == _JUPYTER_CORE]

    for impl in jupyter_impls(hooks.pytest_pycollect_makeitem):
        original_collect = impl.function

        def collect(collector: Any, name: str, obj: Any, _orig: Any = original_collect) -> Any:
            return None if _anyio_marked(collector, obj) else _orig(collector, name, obj)

        impl.function = collect
    for impl in jupyter_impls(hooks.pytest_pyfunc_call):
        original_call = impl.function

        def call(pyfuncitem: Any, _orig: Any = original_call) -> Any:
            return None if pyfuncitem.get_closest_marker("anyio") else _orig(pyfuncitem)

        impl.function = call


_JUPYTER_CORE = "pytest_jupyter.jupyter_core"

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
def cs3_config(token_file: Callable[..., Path]) -> Callable[..., CS3Config]:
    """``cs3_config(emu, user="einstein", **overrides)``: client settings for ``emu``."""

    def build(emu: Emulator | EmulatorThread, user: str = "einstein", **overrides: Any) -> CS3Config:
        settings: dict[str, Any] = {
            "host": emu.grpc_address,
            "auth_login_type": "basic",
            "client_id": user,
            "token_path": str(token_file(user)),
            "ssl_enabled": False,
            "tus_enabled": "tus" in (emu.config.upload_protocols or []),
        }
        settings.update(overrides)
        return CS3Config(**settings)

    return build


class FullDisk:
    """A journal disk that is full while ``full``: every COMMIT of the journal's writer connection
    fails with SQLite's own "database or disk is full" (SQLITE_FULL), and the transaction is left
    open, as a failed COMMIT may leave it. ``refused`` counts the refused commits."""

    def __init__(self) -> None:
        self.full = True
        self.refused = 0

    @staticmethod
    def error() -> sqlite3.OperationalError:
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # what sqlite3 sets on the errors SQLite raises
        exc.sqlite_errorname = "SQLITE_FULL"
        return exc


@pytest.fixture
def full_disk() -> Callable[[Any], contextlib.AbstractContextManager[FullDisk]]:
    """``with full_disk(journal) as disk:`` the journal's disk is full (deterministically, no real
    disk involved) until the block ends or ``disk.full = False``."""

    @contextlib.contextmanager
    def inject(journal: Any) -> Iterator[FullDisk]:
        disk = FullDisk()
        writer = journal.unit._writer
        assert writer is not None
        execute = writer.execute

        async def refusing_execute(sql: str, *args: Any, **kw: Any) -> Any:
            if disk.full and sql.strip().upper() == "COMMIT":
                disk.refused += 1
                raise FullDisk.error()
            return await execute(sql, *args, **kw)

        # A transaction made in one round trip to the writer's thread (`UnitOfWork.run_transaction`)
        # commits there: refused the same way, after its statements ran.
        from cs3sync.journal import unit as unit_module

        atomically = unit_module._atomically

        def refusing_atomically(conn: Any, synchronous: str | None, body: Any) -> Any:
            def then_full(c: Any) -> Any:
                result = body(c)
                if disk.full:
                    disk.refused += 1
                    raise FullDisk.error()
                return result

            return atomically(conn, synchronous, then_full)

        writer.execute = refusing_execute
        unit_module._atomically = refusing_atomically
        try:
            yield disk
        finally:
            writer.execute = execute
            unit_module._atomically = atomically

    return inject
