"""Browser tests of the labextension: Galata in Debian's chromium, run as a subprocess.

Runs ``jlpm playwright test`` in ``labext/ui-tests`` (CI=1, port 8888 must be free) against a JupyterLab on
the cs3sync contents manager, with the demo emulator running here so that, afterwards, the share created
through the dialog can be checked from the other demo user's side. Writes the README screenshots to
docs/screenshots/. Deselect with ``-m "not browser"``. Without a working chromium the test fails at once
with the reason (never a downloaded browser, never a hang).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cs3sync.emulator import EmulatorConfig, EmulatorThread
from cs3sync.emulator.demo import DEMO_PROJECTS, seed

ROOT = Path(__file__).resolve().parents[1]
UI_TESTS = ROOT / "labext" / "ui-tests"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: The whole Galata run (its own per-test timeouts are in labext/ui-tests/playwright.config.js).
TIMEOUT = int(os.environ.get("CS3SYNC_BROWSER_TIMEOUT", "1500"))

# The suite's own ceiling (TIMEOUT) replaces pytest-timeout's per-test 300 s: fourteen browser tests with
# outages and recoveries take about five minutes on two cores.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(TIMEOUT + 120)]


def _port_busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _missing() -> str | None:
    """Why the browser tests cannot run here (checked before anything starts), or None."""
    if not Path(CHROMIUM).exists():
        return (
            f"no chromium at {CHROMIUM}: install Debian's (apt-get install chromium) or set CHROMIUM_PATH; "
            'never a downloaded browser. Deselect these tests with -m "not browser".'
        )
    try:  # a broken install (missing libraries) fails here in seconds instead of hanging Galata
        probe = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{CHROMIUM} does not start: {type(exc).__name__}: {exc}"
    if probe.returncode != 0:
        return f"{CHROMIUM} --version failed (rc {probe.returncode}): {probe.stderr.strip()[-500:]}"
    if not (UI_TESTS / "node_modules" / "@jupyterlab" / "galata").exists():
        return "labext/ui-tests has no node_modules (cd labext/ui-tests && jlpm install)"
    if shutil.which("jlpm", path=str(Path(sys.executable).parent)) is None and shutil.which("jlpm") is None:
        return "jlpm not found (pip install jupyterlab)"
    return None


@pytest.fixture
def demo_thread(tmp_path: Path) -> Any:
    # tus as well (Reva master + localfs; `emulator --tus`): large uploads then report confirmed offsets,
    # which the upload-progress test watches (a simple PUT's progress is only what the socket took).
    config = EmulatorConfig(
        root=tmp_path / "cs3root",
        profile="cernbox",
        projects=dict(DEMO_PROJECTS),
        upload_protocols=["simple", "tus"],
    )
    with EmulatorThread(config) as emu:
        seed(emu)
        yield emu


def run_galata(demo_thread: Any, *args: str) -> None:
    """``jlpm playwright test ARGS`` in labext/ui-tests against this emulator; fails with Galata's output."""
    reason = _missing()
    if reason:
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    assert not _port_busy(8888), "port 8888 is busy: the Galata server needs it"
    env = dict(os.environ)
    env.update(
        CI="1",
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
        CHROMIUM_PATH=CHROMIUM,
        CS3SYNC_UI_GRPC=demo_thread.grpc_address,
        CS3SYNC_UI_ADMIN=demo_thread.http_url,
        # The emulator's /_admin wants this run's secret (helpers.ts sends it with every admin call).
        CS3SYNC_UI_ADMIN_SECRET=demo_thread.emulator.config.admin_secret,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["jlpm", "playwright", "test", "--reporter=list", *args],
            cwd=UI_TESTS,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"Galata did not finish within {TIMEOUT} s; last output:\n{out[-4000:]}", pytrace=False)
    output = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("[WebServer]"))
    print(output[-20000:])
    tail = f"{output[-6000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"Galata failed (rc {proc.returncode}):\n{tail}"


def test_galata(demo_thread: Any, cs3_config: Callable[..., Any]) -> None:
    run_galata(demo_thread)

    # The share created through the dialog is visible to the other demo user.
    async def marie_sees_it() -> list[Any]:
        from cs3sync.cs3 import CS3Client

        async with CS3Client(cs3_config(demo_thread, user="marie")) as client:
            return await client.list_incoming_shares()

    received = asyncio.run(marie_sees_it())
    names = {(rs.resource or rs.share.resource).name for rs in received if (rs.resource or rs.share.resource)}
    assert "welcome.ipynb" in names, names


def test_galata_real_time_collaboration(demo_thread: Any) -> None:
    """rtc.spec.ts, and merge.spec.ts again (conflict banner, Keep theirs), with jupyter-collaboration's RTC
    on (the suite runs with it off: docs/decisions.md, docs/collaboration.md)."""
    run_galata(demo_thread, "--config", "playwright-rtc.config.js")
