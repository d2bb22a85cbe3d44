"""Subprocesses under test: the CS3 emulator and jupyter_server, on free loopback ports with tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
LOCAL_MANAGER = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
CS3_MANAGER = "contents.manager.CS3ContentsManager"
# Server extensions found in the environment that the benchmark does not need; both servers run without them.
# Installed in the same environment but not part of what is compared. The collaboration extensions
# (jupyter-collaboration, a test extra of cs3sync) listen to every contents event: jupyter_server_fileid
# indexes each save of the stock manager in its own SQLite database, which the stock setup does not do.
UNUSED_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook_shim",
    "jupyter_server_fileid",
    "jupyter_server_ydoc",
)


ERROR_GRACE_S = 15.0  # how long a server that answers with errors gets to come right


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message"))
    except ValueError:
        return response.text[:200]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class StartError(RuntimeError):
    """A subprocess did not come up; the message carries the tail of its log."""


@dataclass
class Proc:
    """One subprocess we started: its log file, and stopping by its own pid only."""

    name: str
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps the handle
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def kill9(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)


def base_env(workdir: Path) -> dict[str, str]:
    """An environment isolated from the user's Jupyter config, runtime and state directories."""
    env = dict(os.environ)
    for sub in ("config", "data", "runtime", "state"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_DATA_DIR=str(workdir / "data"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        XDG_STATE_HOME=str(workdir / "state"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env


class JupyterServer(Proc):
    """``python -m jupyter_server`` with the loop-lag extension, on a free port with a random token."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        manager_class: str,
        root_dir: Path,
        extra: list[str],
        extensions: dict[str, bool] | None = None,
        config: dict[str, Any] | None = None,
        python: str = sys.executable,
    ):
        super().__init__(name, workdir)
        self.python = python  # the peer package runs from its own virtualenv
        self.extensions = extensions or {}
        self.config = config or {}
        self.manager_class = manager_class
        self.root_dir = root_dir
        self.extra = extra
        self.port = 0
        self.token = secrets.token_hex(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, env: dict[str, str]) -> None:
        """Server extensions go through a config file (dict traits do not parse from one flag)."""
        extensions = {"benchmarks.looplag": True} | dict.fromkeys(UNUSED_EXTENSIONS, False) | self.extensions
        config = {"ServerApp": {"jpserver_extensions": extensions}, **self.config}
        Path(env["JUPYTER_CONFIG_DIR"], "jupyter_server_config.json").write_text(json.dumps(config, indent=1))

    def argv(self) -> list[str]:
        return [
            self.python,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--ServerApp.contents_manager_class={self.manager_class}",
            "--ServerApp.log_level=WARN",
            *self.extra,
        ]

    async def start(self, timeout: float = 90.0) -> float:
        """Start (or restart on a new port) and wait until the contents API answers; returns seconds."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        started = time.perf_counter()
        env = base_env(self.workdir)
        self.write_config(env)
        self.spawn(self.argv(), env)
        headers = {"Authorization": f"token {self.token}"}
        answered: float | None = None  # when the server first answered at all (maybe with an error)
        last = ""
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30.0) as client:
            while time.perf_counter() - started < timeout:
                if not self.alive():
                    raise StartError(f"{self.name} exited during start: {self.log_tail(3)}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("/api/contents", params={"content": "0"})
                    if response.status_code == 200:
                        return time.perf_counter() - started
                    answered = answered or time.perf_counter()
                    last = f"GET /api/contents answered HTTP {response.status_code}: {_message(response)}"
                    if time.perf_counter() - answered > ERROR_GRACE_S:
                        break
                await asyncio.sleep(0.2)
        self.stop()
        raise StartError(f"{self.name}: {last or f'no answer within {timeout:.0f} s: ' + self.log_tail(3)}")


class EmulatorProc(Proc):
    """``python -m cs3sync emulator`` on free loopback ports (kept across restarts)."""

    def __init__(self, name: str, workdir: Path, root: Path, profile: str, extra: list[str] | None = None):
        super().__init__(name, workdir)
        self.root = root
        self.profile = profile
        self.extra = extra or []
        self.grpc_port = free_port()
        self.http_port = free_port()
        #: The /_admin secret of this emulator (chosen here, passed in its environment).
        self.admin_secret = secrets.token_urlsafe(24)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cs3sync",
            "emulator",
            "--root",
            str(self.root),
            "--profile",
            self.profile,
            "--grpc-port",
            str(self.grpc_port),
            "--http-port",
            str(self.http_port),
            *self.extra,
        ]

    async def start(self, timeout: float = 30.0) -> float:
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        from cs3sync.emulator.cli import ADMIN_SECRET_ENV

        self.spawn(self.argv(), {**base_env(self.workdir), ADMIN_SECRET_ENV: self.admin_secret})
        while time.perf_counter() - started < timeout:
            if not self.alive():
                raise StartError(f"{self.name} exited during start:\n{self.log_tail()}")
            if port_open(self.grpc_port) and port_open(self.http_port):
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
        self.stop()
        raise StartError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log_tail()}")
