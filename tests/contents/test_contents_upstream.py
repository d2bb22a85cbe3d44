"""jupyter_server's own contents tests (sdist of the installed version) against CS3ContentsManager.

Runs upstream's ``tests/services/contents`` through the wrappers in ``upstream/`` in a subprocess, once
per emulator profile, and requires every filesystem-agnostic case to pass (155 in 2.21.1); skipped
cases carry their reason (``upstream/wrappers/common.py``). Needs network access to PyPI the first
time (cached afterwards, see ``upstream/fetch.py``); set ``CS3SYNC_SKIP_UPSTREAM=1`` to skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

FETCH = Path(__file__).parent / "upstream" / "fetch.py"


def build_workdir(workdir: Path) -> Path:
    spec = importlib.util.spec_from_file_location("cs3sync_upstream_fetch", FETCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_workdir(workdir)


EXPECTED_PASSED = {"2.21.1": 155}


@pytest.mark.skipif(bool(os.environ.get("CS3SYNC_SKIP_UPSTREAM")), reason="CS3SYNC_SKIP_UPSTREAM is set")
@pytest.mark.parametrize("profile", ["cernbox", "ocis"])
def test_upstream_contents_suite(profile: str, tmp_path: Path) -> None:
    try:
        workdir = build_workdir(tmp_path / "upstream")
    except subprocess.CalledProcessError:
        pytest.skip("could not download the jupyter_server sdist (offline?)")
    env = dict(os.environ, CS3SYNC_UPSTREAM_PROFILE=profile)
    # Upstream's own pytest configuration, unchanged (log_cli_level=debug, filterwarnings=error,
    # its timeout); only the cache is left out of the work directory.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/services/contents/thirdparty", "-p", "no:cacheprovider"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    stdout = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # upstream's addopts ask for --color=yes
    summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    counts = {key: int(n) for n, key in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}
    detail = stdout[-6000:] + result.stderr[-2000:]
    assert counts.get("failed", 0) == 0 and not counts.get("error") and not counts.get("errors"), detail
    expected = EXPECTED_PASSED.get(version("jupyter_server"))
    if expected is not None:
        assert counts.get("passed") == expected, detail
    assert result.returncode == 0, detail
