"""Fixtures of the contents tests: a Jupyter server on CS3ContentsManager against the emulator.

pytest-jupyter's fixtures (``jp_serverapp``, ``jp_fetch``, ``jp_asyncio_loop``) come from the root
``tests/conftest.py``, the one place that loads the plugin (its shim keeps anyio-marked tests on anyio).
Plain ``async def`` tests here run on pytest-jupyter's loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

collect_ignore = ["upstream"]

CM_CLASS = "contents.manager.CS3ContentsManager"
USER = "einstein"


@pytest.fixture
def cs3_root(emulator_thread: Any) -> tuple[str, Path]:
    """(CS3 path, on-disk directory) of the Jupyter root: a folder in einstein's home."""
    disk = Path(emulator_thread.config.root) / USER / "jupyter"
    disk.mkdir(parents=True, exist_ok=True)
    return f"{emulator_thread.home(USER)}/jupyter", disk


@pytest.fixture
def cs3_settings(
    emulator_thread: Any, token_file: Callable[..., Path], cs3_root: tuple[str, Path], tmp_path: Path
) -> dict:
    return {
        "CS3Sync": {
            "host": emulator_thread.grpc_address,
            "ssl_enabled": False,
            "auth_login_type": "basic",
            "client_id": USER,
            "token_path": str(token_file(USER)),
            "root_path": cs3_root[0],
            "journal_dir": str(tmp_path / "journal"),
            "write_through_timeout": 3.0,
        },
        # Fast retries and probes so that outage tests finish quickly (no sleeps in tests).
        "CS3ContentsManager": {
            "engine_options": {
                "backoff_base": 0.05,
                "backoff_max": 0.3,
                "backoff_jitter": 0.0,
                "offline_probe_interval": 0.2,
                "offline_probe_max": 0.5,
                # The backoff above squeezes the engine's ~40 minutes of retries into a few seconds; keep
                # a refused write retrying for the length of a test (the ceiling itself is tested in
                # tests/engine/test_ceilings.py and test_contents_rest.py::test_a_save_that_gives_up...).
                "max_attempts": 1000,
            }
        },
    }


@pytest.fixture
def jp_server_config(cs3_settings: dict) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"contents": True}, "contents_manager_class": CM_CLASS},
            **cs3_settings,
        }
    )


@pytest.fixture
def jp_argv() -> list[str]:
    return [f"--ServerApp.contents_manager_class={CM_CLASS}"]


@pytest.fixture
def cm(jp_serverapp: Any) -> Any:
    return jp_serverapp.contents_manager


@pytest.fixture
def make_cm(cs3_settings: dict, jp_asyncio_loop: Any) -> Iterator[Callable[..., Any]]:
    """A contents manager without a server (``make_cm(**CS3Sync overrides)``)."""
    from contents.manager import CS3ContentsManager

    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        settings = json.loads(json.dumps(cs3_settings))
        settings["CS3Sync"].update(overrides)
        manager = CS3ContentsManager(config=Config(settings))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        jp_asyncio_loop.run_until_complete(manager.shutdown())
