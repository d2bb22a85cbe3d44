"""The client and contract tests against a real CS3 gateway, and against the emulator in both profiles.

Set ``CS3_TEST_GATEWAY`` (host:port of a Reva gateway, e.g. a CERNBox test instance) with
``CS3_TEST_USER`` and ``CS3_TEST_SECRET`` (password, or OIDC token with ``CS3_TEST_LOGIN_TYPE=bearer``)
to add the live target; ``CS3_TEST_TLS=0`` for a plaintext gateway, ``CS3_TEST_FOLDER`` for the folder
the tests work in (default: a fresh folder under the user's home, removed afterwards). Without
``CS3_TEST_GATEWAY`` the live target is skipped: the one skip the suite allows, since no live server is
reachable from CI. The emulator targets always run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cs3sync.cs3 import CS3Client, CS3Config, errors

LIVE = os.environ.get("CS3_TEST_GATEWAY", "")
TARGETS = ["emulator-cernbox", "emulator-ocis", "live"]


@dataclass
class Target:
    """One storage to run the tests on: a client and a fresh folder of its own."""

    name: str
    client: CS3Client
    folder: str
    emulator: Any = None  # the in-process emulator, None for the live gateway


@pytest.fixture(params=TARGETS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    name = request.param
    secret = tmp_path / "secret"
    if name == "live":
        if not LIVE:
            pytest.skip("CS3_TEST_GATEWAY is not set: no live gateway to test against")
        secret.write_text(os.environ.get("CS3_TEST_SECRET", "") + "\n")
        secret.chmod(0o600)
        config = CS3Config(
            host=LIVE,
            ssl_enabled=os.environ.get("CS3_TEST_TLS", "1") != "0",
            auth_login_type=os.environ.get("CS3_TEST_LOGIN_TYPE", "basic"),  # type: ignore[arg-type]
            client_id=os.environ.get("CS3_TEST_USER", ""),
            token_path=str(secret),
        )
        async with CS3Client(config) as client:
            base = os.environ.get("CS3_TEST_FOLDER") or await client.home()
            folder = f"{base.rstrip('/')}/cs3sync-test-{uuid.uuid4().hex[:12]}"
            await client.mkdir(folder)
            try:
                yield Target(name, client, folder)
            finally:
                try:
                    await client.delete(folder)
                except errors.CS3Error:
                    pass
        return
    from cs3sync.emulator import Emulator, EmulatorConfig

    profile = name.removeprefix("emulator-")
    root = tmp_path / "storage"
    root.mkdir()
    async with Emulator(EmulatorConfig(root=root, profile=profile)) as emu:  # type: ignore[arg-type]
        secret.write_text("relativity\n")
        config = CS3Config(
            host=emu.grpc_address, ssl_enabled=False, client_id="einstein", token_path=str(secret)
        )
        async with CS3Client(config) as client:
            folder = f"{await client.home()}/cs3sync-test"
            await client.mkdir(folder)
            yield Target(name, client, folder, emu)
