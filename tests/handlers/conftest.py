"""A Jupyter server on the CS3ContentsManager, against the emulator seeded with the demo data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cs3sync.emulator import EmulatorConfig, EmulatorThread
from cs3sync.emulator.demo import DEMO_PROJECTS, seed


@pytest.fixture(params=["cernbox", "ocis"])
def demo_profile(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def demo_emulator(tmp_path: Path, demo_profile: str) -> Iterator[EmulatorThread]:
    """The emulator with einstein's home, two project spaces, shares both ways and a public link."""
    config = EmulatorConfig(root=tmp_path / "cs3root", profile=demo_profile, projects=dict(DEMO_PROJECTS))
    with EmulatorThread(config) as emu:
        seed(emu)  # synchronous storage hooks are thread-safe
        yield emu


@pytest.fixture
def cs3_user() -> str:
    return "einstein"


@pytest.fixture
def public_link_url() -> str:
    """``CS3SyncAPI.public_link_url`` of the server (parametrize a test to set it)."""
    return ""


@pytest.fixture
def jp_server_config(
    demo_emulator: EmulatorThread,
    token_file: Callable[..., Path],
    tmp_path: Path,
    cs3_user: str,
    public_link_url: str,
) -> dict[str, Any]:
    return {
        "CS3SyncAPI": {"public_link_url": public_link_url},
        "ServerApp": {
            "jpserver_extensions": {"contents": True},
            "contents_manager_class": "contents.manager.CS3ContentsManager",
            "allow_unauthenticated_access": False,
        },
        "CS3Sync": {
            "host": demo_emulator.grpc_address,
            "ssl_enabled": False,
            "auth_login_type": "basic",
            "client_id": cs3_user,
            "token_path": str(token_file(cs3_user)),
            "journal_dir": str(tmp_path / f"journal-{cs3_user}"),
            "write_through_timeout": 5.0,
        },
    }


@pytest.fixture
def api(jp_fetch: Callable[..., Any]) -> Callable[..., Any]:
    """``await api("spaces")`` -> (status, parsed JSON or None); never raises on HTTP errors."""

    async def call(endpoint: str, method: str = "GET", body: Any = None, **params: Any) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PATCH", "PUT"):
            kwargs["body"] = ""
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await jp_fetch("api", "cs3sync", *endpoint.split("/"), **kwargs)
        text = response.body.decode() if response.body else ""
        try:
            return response.code, (json.loads(text) if text else None)
        except ValueError:  # tornado's own HTML pages (unrouted URLs)
            return response.code, text

    return call
