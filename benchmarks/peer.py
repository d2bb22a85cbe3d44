"""The package cs3sync replaces: the published cs3-jupyter 0.2.0 (PyPI), measured in every run.

It gets its own virtualenv (its pins: cs3client, cs3apis, ``jupyter-server<3``) under the benchmarks'
work directory, kept between runs, with the same jupyter_server version as the other servers; its
jupyter_server runs ``CS3LargeFileManager`` (its pure-CS3 async manager) against an emulator of its
own, started with the same profile as cs3sync's. Its server extension (shares, locks UI) is not loaded:
only the contents manager is compared.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

PACKAGE = "cs3-jupyter==0.2.0"
LABEL = "cs3-jupyter 0.2.0"
MANAGER = "cs3_jupyter.cs3largefilemanager.CS3LargeFileManager"
VENV_NAME = "peer-venv"  # under the work directory; survives the emptying at the start of a run
INSTALL_TIMEOUT_S = 900


def requirements() -> list[str]:
    return [PACKAGE, f"jupyter_server=={version('jupyter_server')}"]


def ensure_venv(directory: Path) -> Path:
    """The peer's python, installing it with pip first if the virtualenv is missing or stale.
    Raises RuntimeError with pip's last lines when the package cannot be installed."""
    python = directory / "bin" / "python"
    stamp = directory / "installed.txt"
    wanted = "\n".join(requirements())
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(directory, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True, capture_output=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements()],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"pip install {' '.join(requirements())} failed: {tail}")
    stamp.write_text(wanted)
    return python


def server_options(grpc_address: str, token_path: Path, user: str, root_path: str) -> list[str]:
    """Command-line configuration of the peer (its traits live on ``CS3Mixin``)."""
    return [
        f"--CS3Mixin.host={grpc_address}",
        "--CS3Mixin.ssl_enabled=False",
        "--CS3Mixin.tus_enabled=False",
        "--CS3Mixin.auth_login_type=basic",
        f"--CS3Mixin.client_id={user}",
        f"--CS3Mixin.token_path={token_path}",
        f"--CS3Mixin.root_path={root_path}",
        f"--CS3LargeFileManager.root_dir={root_path}",
    ]
