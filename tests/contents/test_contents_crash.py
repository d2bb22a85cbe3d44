"""kill -9 of the Jupyter server during a chunked upload: an upload in progress continues after the restart,
and the push of a finished one completes."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from cs3sync.emulator.faults import Hang

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(config: Path, port: int, token: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["JUPYTER_CONFIG_DIR"] = str(config.parent)
    env["JUPYTER_RUNTIME_DIR"] = str(cwd / "runtime")
    cmd = [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
           f"--IdentityProvider.token={token}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)  # waiting for the port of a process we just started
    raise AssertionError("server did not start")


def request(port: int, token: str, method: str, path: str, data: Any = None) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/contents/{path}",
        method=method,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Authorization": f"token {token}"},
    )
    try:
        with opener.open(req, timeout=60) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def write_config(tmp_path: Path, emu: Any, token_file: Any) -> Path:
    """A jupyter_server config for CS3ContentsManager on the emulator, with its journal in ``tmp_path``."""
    config = tmp_path / "config" / "jupyter_server_config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {
                "ServerApp": {
                    "contents_manager_class": "contents.manager.CS3ContentsManager",
                    "jpserver_extensions": {"contents": True},
                },
                "CS3Sync": {
                    "host": emu.grpc_address, "ssl_enabled": False, "auth_login_type": "basic",
                    "client_id": "einstein", "token_path": str(token_file("einstein")),
                    "root_path": emu.home("einstein"), "journal_dir": str(tmp_path / "journal"),
                    "write_through_timeout": 0.5,
                },
                "CS3ContentsManager": {"engine_options": {"backoff_base": 0.05, "backoff_max": 0.3}},
            }
        )
    )  # fmt: skip
    return config


def test_kill_9_after_last_chunk_then_restart_completes_the_push(
    emulator_thread: Any, token_file: Any, tmp_path: Path, profile: str
) -> None:
    emu = emulator_thread
    home_disk = Path(emu.config.root) / "einstein"
    home_disk.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, emu, token_file)
    data = os.urandom(2 * MiB + 123)
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    port, token = free_port(), "t0ken"
    server = start_server(config, port, token, tmp_path)
    hang = emu.faults.http("PUT", Hang(), times=None)  # the push never finishes before the kill
    try:
        for number, chunk in enumerate(chunks, start=1):
            model = {
                "type": "file", "format": "base64", "name": "big.bin",
                "chunk": -1 if number == len(chunks) else number, "content": base64.b64encode(chunk).decode(),
            }  # fmt: skip
            code, _ = request(port, token, "PUT", "big.bin", model)
            assert code in (200, 201)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    emu.faults.remove(hang)
    emu.faults.release_hangs()
    assert not (home_disk / "big.bin").exists() or (home_disk / "big.bin").read_bytes() != data

    port = free_port()
    server = start_server(config, port, token, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the restarted engine resumes the journaled push
            if (home_disk / "big.bin").exists() and (home_disk / "big.bin").read_bytes() == data:
                break
            code, model = request(port, token, "GET", "big.bin?content=0")
            assert code == 200 and model["size"] == len(data)  # read-your-writes meanwhile
            time.sleep(0.2)
        assert (home_disk / "big.bin").read_bytes() == data
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def upload_chunk(port: int, token: str, number: int, piece: bytes) -> int:
    model = {"type": "file", "format": "base64", "name": "big.bin", "chunk": number,
             "content": base64.b64encode(piece).decode()}  # fmt: skip
    return request(port, token, "PUT", "big.bin", model)[0]


def test_kill_9_in_the_middle_of_an_upload_then_the_next_chunks_continue_it(
    emulator_thread: Any, token_file: Any, tmp_path: Path, profile: str
) -> None:
    """Chunks are not fsynced (only the finished upload is), but a crash of the server alone loses none of
    those it answered: the client goes on with the next chunk after the restart, not from chunk 1."""
    emu = emulator_thread
    home_disk = Path(emu.config.root) / "einstein"
    home_disk.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, emu, token_file)
    data = os.urandom(3 * MiB + 77)
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    port, token = free_port(), "t0ken"
    server = start_server(config, port, token, tmp_path)
    try:
        assert upload_chunk(port, token, 1, chunks[0]) in (200, 201)
        assert upload_chunk(port, token, 2, chunks[1]) in (200, 201)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    port = free_port()
    server = start_server(config, port, token, tmp_path)
    try:
        assert upload_chunk(port, token, 3, chunks[2]) in (200, 201)  # chunk 2 was kept
        assert upload_chunk(port, token, 3, chunks[2]) in (200, 201)  # a retry: back to its own range
        assert upload_chunk(port, token, -1, chunks[3]) in (200, 201)
        code, model = request(port, token, "GET", "big.bin?content=0")
        assert code == 200 and model["size"] == len(data)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            (home_disk / "big.bin").exists() and (home_disk / "big.bin").read_bytes() == data
        ):
            time.sleep(0.2)  # polling the storage's disk for the push of the finished upload
        assert (home_disk / "big.bin").read_bytes() == data
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
