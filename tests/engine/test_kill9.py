"""kill -9 at the engine's named crash points, then restart: no loss, no duplicates.

An emulator runs as a subprocess (`python -m cs3sync emulator`), the journal is filled in this process,
and `python -m cs3sync drain` applies it in another subprocess that dies like kill -9
(`CS3SYNC_CRASH_AT=<label>:<n>` -> `os._exit(137)`) at the named point. A second `drain` must finish the
work; the emulator's http log (admin API) proves that nothing was uploaded twice.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cs3sync.cs3 import CS3Client, CS3Config
from cs3sync.emulator.admin import ADMIN_HEADER
from cs3sync.emulator.cli import ADMIN_SECRET_ENV
from cs3sync.journal import Journal, Op, State

ADMIN_SECRET = secrets.token_urlsafe(16)

CHUNK = 1024 * 1024  # the client sends whole 1 MiB pieces: its smallest tus chunk
KILLED = 137


@pytest.fixture(scope="module", params=["cernbox", "ocis"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp(f"kill9-{request.param}") / "root"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cs3sync", "emulator", "--root", str(root), "--profile", request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", ADMIN_SECRET_ENV: ADMIN_SECRET},
    )
    assert proc.stdout is not None
    info: dict[str, Any] = {}
    for _ in range(3):
        key, _, value = proc.stdout.readline().strip().partition(": ")
        info[key] = value
    info["profile"] = request.param  # after the banner, whose "profile:" line says more
    info["admin"] = httpx.Client(
        base_url=info["http"] + "/_admin", timeout=10, headers={ADMIN_HEADER: ADMIN_SECRET}
    )
    info["home"] = info["admin"].get("/info").json()["homes"]["einstein"]
    try:
        yield info
    finally:
        info["admin"].close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "einstein.secret"
    path.write_text("relativity\n")
    path.chmod(0o600)
    return path


def drain(served: dict[str, Any], journal_dir: Path, secret: Path, crash_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "CS3SYNC_CRASH_AT"}
    if crash_at:
        env["CS3SYNC_CRASH_AT"] = crash_at
    cmd = [
        sys.executable, "-m", "cs3sync", "drain", "--quiet", "--insecure",
        "--journal-dir", str(journal_dir), "--host", served["grpc"], "--user", "einstein",
        "--token-path", str(secret), "--upload-chunk-size", str(CHUNK), "--tus-threshold", "1",
        "--timeout", "60",
    ]  # fmt: skip
    return subprocess.run(
        cmd, env=env, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ).returncode


def enqueue(journal_dir: Path, *commands: tuple[str, str, dict[str, Any]]) -> list[int]:
    async def run() -> list[int]:
        ids = []
        async with await Journal.open(journal_dir, owner=True) as journal:
            for op, path, kw in commands:
                kw = dict(kw)
                if "data" in kw:
                    kw["blob"] = await journal.store_blob(kw.pop("data"))
                ids.append((await journal.enqueue(op, path, **kw)).id)
        return ids

    return anyio.run(run)


def entries(journal_dir: Path) -> list[Any]:
    async def run() -> list[Any]:
        async with await Journal.open(journal_dir, owner=False) as journal:
            return await journal.entries()

    return anyio.run(run)


def read(served: dict[str, Any], secret: Path, path: str) -> bytes | None:
    async def run() -> bytes | None:
        config = CS3Config(
            host=served["grpc"], client_id="einstein", token_path=str(secret), ssl_enabled=False
        )
        async with CS3Client(config) as client:
            if await client.stat_or_none(path) is None:
                return None
            return await client.read_bytes(path)

    return anyio.run(run)


def http_log(served: dict[str, Any]) -> list[dict[str, Any]]:
    return served["admin"].get("/http_log").json()["requests"]


def commits(log: list[dict[str, Any]], size: int) -> int:
    """Completed uploads of `size` bytes: a PUT answered 200, or the tus PATCH that reached the end."""
    n = 0
    for r in log:
        if r["method"] == "PUT" and r["status"] == 200 and r["bytes_in"] == size:
            n += 1
        if r["method"] == "PATCH" and r["status"] == 204:
            offset = int({k.lower(): v for k, v in r["headers"].items()}.get("upload-offset", "0"))
            n += offset + r["bytes_in"] == size
    return n


def uses_tus(served: dict[str, Any]) -> bool:
    return served["profile"] == "ocis"


def data_of(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def test_upload_finished_not_marked(served: dict[str, Any], tmp_path: Path, secret: Path) -> None:
    path = f"{served['home']}/k1-{served['profile']}.bin"
    data = data_of(3 * CHUNK + 5)
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, path, {"data": data}))
    served["admin"].post("/logs/clear")
    assert drain(served, jdir, secret, "upload_finished_not_marked:1") == KILLED
    assert read(served, secret, path) == data  # it landed; the journal does not know yet
    assert drain(served, jdir, secret) == 0
    assert read(served, secret, path) == data
    assert commits(http_log(served), len(data)) == 1  # the restart recognised it: no second upload
    assert [e.state for e in entries(jdir)] == [State.DONE]


def test_move_returned_not_recorded(served: dict[str, Any], tmp_path: Path, secret: Path) -> None:
    src = f"{served['home']}/k2-{served['profile']}.txt"
    dst = f"{served['home']}/k2-{served['profile']}-renamed.txt"
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, src, {"data": b"moved content"}), (Op.RENAME, dst, {"src_path": src}))
    served["admin"].post("/logs/clear")
    assert drain(served, jdir, secret, "move_returned_not_recorded:1") == KILLED
    assert drain(served, jdir, secret) == 0
    assert read(served, secret, src) is None
    assert read(served, secret, dst) == b"moved content"
    assert commits(http_log(served), len(b"moved content")) == 1
    assert [e.state for e in entries(jdir)] == [State.DONE, State.DONE]


@pytest.mark.parametrize("served", ["ocis"], indirect=True)  # EOS offers only simple uploads: no PATCH
def test_mid_patch_resumes_from_the_server_offset(
    served: dict[str, Any], tmp_path: Path, secret: Path
) -> None:
    assert uses_tus(served)
    path = f"{served['home']}/k3.bin"
    data = data_of(5 * CHUNK + 17, seed=3)
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, path, {"data": data}))
    served["admin"].post("/logs/clear")
    rc = drain(served, jdir, secret, "mid_patch:1")
    assert rc == KILLED, [(r["method"], r["status"], r["bytes_in"], r["path"]) for r in http_log(served)]
    assert read(served, secret, path) is None  # unfinished tus uploads are invisible
    assert drain(served, jdir, secret) == 0
    assert read(served, secret, path) == data
    log = http_log(served)
    sent = sum(r["bytes_in"] for r in log if r["method"] == "PATCH")
    assert sent == len(data), f"{sent - len(data)} bytes sent twice"
    assert commits(log, len(data)) == 1


def test_mid_put_sends_the_file_again_once(served: dict[str, Any], tmp_path: Path, secret: Path) -> None:
    path = f"{served['home']}/k4-{served['profile']}.bin"
    data = data_of(4 * CHUNK, seed=4)
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, path, {"data": data}))
    served["admin"].post("/logs/clear")
    assert drain(served, jdir, secret, "mid_put:1") == KILLED
    assert drain(served, jdir, secret) == 0
    assert read(served, secret, path) == data
    assert commits(http_log(served), len(data)) == 1


@pytest.mark.parametrize("served", ["ocis"], indirect=True)  # EOS: no tus session to resume
def test_mid_patch_then_expired_transfer_token_initiates_again(
    served: dict[str, Any], tmp_path: Path, secret: Path
) -> None:
    """The recorded tus session outlived its transfer token while the engine was down: the restart's
    HEAD gets 403, the upload is initiated again and completes; nothing is lost."""
    assert uses_tus(served)
    path = f"{served['home']}/k5.bin"
    data = data_of(4 * CHUNK + 9, seed=5)
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, path, {"data": data}))
    served["admin"].post("/logs/clear")
    assert drain(served, jdir, secret, "mid_patch:1") == KILLED
    served["admin"].post("/transfers/expire_all")
    assert drain(served, jdir, secret) == 0
    assert read(served, secret, path) == data
    assert commits(http_log(served), len(data)) == 1
    assert [e.state for e in entries(jdir)] == [State.DONE]


def write(served: dict[str, Any], secret: Path, path: str, data: bytes) -> str:
    """Someone else's write (another client on the same account): returns the new etag."""

    async def run() -> str:
        config = CS3Config(
            host=served["grpc"], client_id="einstein", token_path=str(secret), ssl_enabled=False
        )
        async with CS3Client(config) as client:
            return (await client.upload(path, data, len(data))).etag

    return anyio.run(run)


@pytest.mark.parametrize("label", ["merge_computed", "merge_recorded", "upload_finished_not_marked"])
def test_a_merge_interrupted_by_kill9_completes_after_restart(
    served: dict[str, Any], tmp_path: Path, secret: Path, label: str
) -> None:
    """kill -9 after the merge was computed (not yet journaled: redone), after it was journaled (the
    entry carries it: uploaded once), or after its upload landed (recognised: not uploaded again)."""
    from nbformat.v4 import new_code_cell
    from notebooks import analysis, data, edited, load, set_source, sources

    path = f"{served['home']}/k-merge-{label}-{served['profile']}.ipynb"
    base = analysis()
    base_etag = write(served, secret, path, data(base))
    theirs = data(edited(base, set_source(0, "# Half-lives (corrected)")))
    write(served, secret, path, theirs)
    ours = data(edited(base, lambda nb: nb.cells.append(new_code_cell("print(lam)"))))
    jdir = tmp_path / "journal"
    enqueue(jdir, (Op.SAVE, path, {"data": ours, "base_etag": base_etag}))
    served["admin"].post("/logs/clear")
    assert drain(served, jdir, secret, f"{label}:1") == KILLED
    if label == "merge_computed":
        assert read(served, secret, path) == theirs  # nothing written yet
    assert drain(served, jdir, secret) == 0
    stored = read(served, secret, path)
    merged = load(stored)
    assert merged.cells[0].source == "# Half-lives (corrected)" and sources(merged)[-1] == "print(lam)"
    assert stored is not None and commits(http_log(served), len(stored)) == 1  # the merge, uploaded once
    (entry,) = entries(jdir)
    assert entry.state == State.DONE and entry.extra["merge"]["merged"] is True  # no conflict copy
