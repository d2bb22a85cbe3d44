"""Fetch jupyter_server's own contents tests (from the sdist of the installed version) and assemble a
work directory that runs them against ``CS3ContentsManager``.

Nothing from upstream is committed: the sdist is downloaded with pip into a cache directory
(``$CS3SYNC_UPSTREAM_CACHE``, else ``$XDG_CACHE_HOME/cs3sync/upstream``) and unpacked there; the work
directory gets upstream's ``tests/`` and ``pyproject.toml`` plus our wrappers (``wrappers/wrap_*.py``
copied as ``tests/services/contents/thirdparty/test_*.py``).

    python tests/contents/upstream/fetch.py WORKDIR     # prints the work directory
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    env = os.environ.get("CS3SYNC_UPSTREAM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cs3sync" / "upstream"


def ensure_sdist(js_version: str | None = None) -> Path:
    """The unpacked jupyter_server sdist of the installed (or given) version."""
    js_version = js_version or version("jupyter_server")
    root = cache_dir()
    unpacked = root / f"jupyter_server-{js_version}"
    if (unpacked / "tests" / "services" / "contents" / "test_api.py").is_file():
        return unpacked
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"jupyter_server-{js_version}.tar.gz"
    if not archive.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"jupyter_server=={js_version}", "-d", str(root)],
            check=True,
        )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return unpacked


def build_workdir(workdir: Path, js_version: str | None = None) -> Path:
    """Upstream tests + pyproject + our wrapper package in ``workdir`` (recreated)."""
    sdist = ensure_sdist(js_version)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(sdist / "tests", workdir / "tests")
    shutil.copy2(sdist / "pyproject.toml", workdir / "pyproject.toml")
    target = workdir / "tests" / "services" / "contents" / "thirdparty"
    target.mkdir()
    (target / "__init__.py").write_text("")
    for source in sorted((HERE / "wrappers").glob("*.py")):
        name = source.name
        if name.startswith("wrap_"):
            name = "test_" + name[len("wrap_") :]
        shutil.copy2(source, target / name)
    return workdir


if __name__ == "__main__":
    print(build_workdir(Path(sys.argv[1]).resolve()))
