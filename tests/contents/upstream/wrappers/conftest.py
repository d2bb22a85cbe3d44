"""Run jupyter_server's contents tests against CS3ContentsManager on the CS3 emulator.

Environment: ``CS3SYNC_UPSTREAM_PROFILE`` (cernbox | ocis). The real SyncEngine applies every write. Each
test gets a fresh root folder in einstein's home and a fresh
journal. ``contents_dir`` is that folder on the emulator's disk, so upstream's seeding and on-disk
checks see what the storage holds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.contents.thirdparty.common import skip_reason
from traitlets.config import Config

PROFILE = os.environ.get("CS3SYNC_UPSTREAM_PROFILE", "cernbox")
USER = "einstein"
PASSWORD = "relativity"
CM_CLASS = "contents.manager.CS3ContentsManager"


@pytest.fixture(scope="session")
def cs3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cs3sync.emulator import EmulatorConfig, EmulatorThread

    root = tmp_path_factory.mktemp("cs3root")
    emu = EmulatorThread(EmulatorConfig(root=root, profile=PROFILE)).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def cs3_token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / f"{USER}.secret"
    path.write_text(PASSWORD)
    path.chmod(0o600)
    return path


@pytest.fixture
def cs3_root(cs3_emulator: Any) -> tuple[str, Path]:
    """(CS3 path, directory on the emulator's disk) of a fresh, empty root for this test."""
    name = f"jstest-{uuid.uuid4().hex[:10]}"
    disk = Path(cs3_emulator.config.root) / USER / name
    disk.mkdir(parents=True)
    return f"{cs3_emulator.home(USER)}/{name}", disk


@pytest.fixture
def cs3_settings(cs3_emulator: Any, cs3_token_file: Path, cs3_root: tuple[str, Path], tmp_path: Path) -> dict:
    return {
        "CS3Sync": {
            "host": cs3_emulator.grpc_address,
            "ssl_enabled": False,
            "auth_login_type": "basic",
            "client_id": USER,
            "token_path": str(cs3_token_file),
            "root_path": cs3_root[0],
            "journal_dir": str(tmp_path / "journal"),
            # Upstream's tests look at the storage's disk right after a write returns.
            "write_through_timeout": 3.0,
        },
        # Upstream expects Jupyter's one-checkpoint semantics; storage versions are tested by us.
        "CS3Checkpoints": {"list_versions": False},
    }


@pytest.fixture
def jp_server_config(cs3_settings: dict) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_server_terminals": True, "contents": True},
                "contents_manager_class": CM_CLASS,
            },
            **cs3_settings,
        }
    )


@pytest.fixture
def jp_argv() -> list[str]:
    return [f"--ServerApp.contents_manager_class={CM_CLASS}"]


@pytest.fixture
def contents_dir(cs3_root: tuple[str, Path]) -> Path:
    return cs3_root[1]


@pytest.fixture
def make_cm(cs3_settings: dict, jp_asyncio_loop: Any) -> Iterator[Callable[..., Any]]:
    from contents.manager import CS3ContentsManager

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        cm = CS3ContentsManager(config=Config(cs3_settings), **kwargs)
        made.append(cm)
        return cm

    yield make
    for cm in made:
        jp_asyncio_loop.run_until_complete(cm.shutdown())


@pytest.fixture(autouse=True)
def _make_dir_on_storage(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Upstream's ``_make_dir(cm, path)`` makes a folder under the FCM root; make it on the storage's disk."""
    from tests.services.contents import test_manager

    if "jp_contents_manager" not in request.fixturenames:
        return
    disk = request.getfixturevalue("contents_dir")

    def make_dir(cm: Any, api_path: str) -> None:
        (disk / api_path.strip("/")).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(test_manager, "_make_dir", make_dir)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = skip_reason(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
