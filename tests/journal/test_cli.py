"""`python -m cs3sync status` and friends, run as subprocesses against prepared journals."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from cs3sync.cli import main
from cs3sync.journal import Journal, Op, State

from .helpers import save

pytestmark = pytest.mark.anyio

ENTRY_KEYS = {
    "id", "op", "path", "src_path", "state", "blocked_reason", "attempts", "next_attempt_at", "size",
    "progress", "last_error", "last_error_kind", "conflict_path", "merge", "resolution", "needs_check",
    "created_at", "updated_at", "finished_at",
}  # fmt: skip
TOP_KEYS = {
    "schema", "account", "journal", "owner", "engine", "counts", "pending", "problems", "blocked",
    "oldest_pending", "bytes_to_upload", "exit_code", "entries", "merged",
}  # fmt: skip


def cs3sync(*args: str, journal_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "CS3SYNC_JOURNAL_DIR": str(journal_dir)}
    return subprocess.run(
        [sys.executable, "-m", "cs3sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


async def run_cli(*args: str, journal_dir: Path) -> subprocess.CompletedProcess[str]:
    """A real `python -m cs3sync` process (slow to start: used where the process boundary matters)."""
    return await anyio.to_thread.run_sync(lambda: cs3sync(*args, journal_dir=journal_dir))


async def cli(*args: str, journal_dir: Path) -> subprocess.CompletedProcess[str]:
    """The same command in this process, on its own event loop in a worker thread (as separate from the
    test's journal as another process would be: its own connections, no owner lock)."""

    def run() -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args[:1], "--journal-dir", str(journal_dir), *args[1:]])
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return await anyio.to_thread.run_sync(run)


async def status_json(journal_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = await run_cli("status", "--json", *extra, journal_dir=journal_dir)
    return proc.returncode, json.loads(proc.stdout)


async def status_json_inproc(journal_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = await cli("status", "--json", *extra, journal_dir=journal_dir)
    return proc.returncode, json.loads(proc.stdout)


async def test_exit_codes_and_schema(journal_dir: Path, clock, local_mounts: Path) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts, account="u@h")
    try:
        code, data = await status_json(journal_dir)
        assert code == 0 and data["exit_code"] == 0 and data["entries"] == []
        assert set(data) == TOP_KEYS
        assert data["schema"] == "cs3sync.status/1" and data["account"] == "u@h"
        assert set(data["counts"]) == State.ALL
        assert data["owner"] == {"pid": os.getpid(), "alive": True}

        entry = await save(journal, "/h/a", b"12345")
        code, data = await status_json(journal_dir)
        assert code == 1 and data["pending"] == 1 and data["bytes_to_upload"] == 5
        assert set(data["entries"][0]) == ENTRY_KEYS
        assert data["entries"][0]["state"] == "queued"

        await journal.claim("w")
        await journal.record_upload_session(
            entry.id, protocol="tus", url="https://secret-url", token="SECRET", token_expires=None, total=5
        )
        await journal.update_upload(entry.id, offset=2)
        proc = await run_cli("status", "--json", journal_dir=journal_dir)
        assert "SECRET" not in proc.stdout and "secret-url" not in proc.stdout
        progress = json.loads(proc.stdout)["entries"][0]["progress"]
        assert progress == {"protocol": "tus", "total": 5, "offset": 2, "sent": 2, "resets": 0,
                            "updated_at": progress["updated_at"]}  # fmt: skip

        await journal.mark_failed(entry.id, error="permission denied")
        code, data = await status_json(journal_dir)
        assert code == 2 and data["problems"] == 1

        proc = await run_cli("status", journal_dir=journal_dir)
        assert proc.returncode == 2
        assert "permission denied" in proc.stdout and "paths under /h" in proc.stdout
    finally:
        await journal.close()


async def test_unreadable_journal_exits_3(tmp_path: Path) -> None:
    proc = await run_cli("status", journal_dir=tmp_path / "missing")
    assert proc.returncode == 3 and "unreadable" in proc.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "journal.db").write_bytes(b"not a database at all" * 100)
    proc = await run_cli("status", "--json", journal_dir=broken)
    assert proc.returncode == 3
    error = json.loads(proc.stdout)  # --json answers in JSON even when there is nothing to show
    assert error["schema"] == "cs3sync.error/1" and error["error"] == "journal_unreadable"
    assert error["exit_code"] == 3 and error["message"]


def bare_status(state_home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m cs3sync status` with no journal option, as typed after `make lab`."""
    env = {k: v for k, v in os.environ.items() if k != "CS3SYNC_JOURNAL_DIR"}
    env.update(XDG_STATE_HOME=str(state_home), COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "cs3sync", "status", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_bare_status_finds_the_journal_of_a_running_lab(tmp_path: Path, local_mounts: Path) -> None:
    """`python -m cs3sync lab` keeps its journals under cs3sync/lab/journal/<profile>/<user>/: a bare
    `status` finds the only journal, and among several the one a running server owns."""
    state = tmp_path / "state"
    lab = state / "cs3sync" / "lab" / "journal" / "cernbox" / "einstein"
    proc = await anyio.to_thread.run_sync(lambda: bare_status(state, "--json"))
    assert proc.returncode == 3 and json.loads(proc.stdout)["error"] == "journal_unreadable"
    async with await Journal.open(lab, owner=True, mounts_file=local_mounts, account="einstein@lab"):
        pass  # written and closed: the only journal on the machine, no server running
    proc = await anyio.to_thread.run_sync(lambda: bare_status(state, "--json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["journal"]["path"] == str(lab)
    other = state / "cs3sync" / "lab" / "journal" / "ocis" / "marie"
    async with await Journal.open(other, owner=True, mounts_file=local_mounts, account="marie@lab"):
        pass
    proc = await anyio.to_thread.run_sync(lambda: bare_status(state, "--json"))
    assert proc.returncode == 3 and "several journals" in json.loads(proc.stdout)["message"]
    async with await Journal.open(lab, owner=True, mounts_file=local_mounts, account="einstein@lab") as owned:
        assert owned.owner_pid() is not None
        proc = await anyio.to_thread.run_sync(lambda: bare_status(state))
    assert proc.returncode == 0, proc.stderr
    assert "einstein@lab" in proc.stdout


async def test_entry_detail_all_and_watch(journal_dir: Path, clock, local_mounts: Path) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        first = await save(journal, "/h/a", b"1")
        await journal.claim("w")
        await journal.mark_done(first.id, result_etag="e2")
        await save(journal, "/h/b", b"2")
    finally:
        await journal.close()

    code, data = await status_json_inproc(journal_dir)
    assert [e["id"] for e in data["entries"]] == [2]
    code, data = await status_json_inproc(journal_dir, "--all")
    assert [e["id"] for e in data["entries"]] == [1, 2]
    assert data["owner"]["alive"] is False and data["engine"]["state"] == "stopped"

    code, detail = await status_json_inproc(journal_dir, "--id", "1")
    assert detail["schema"] == "cs3sync.entry/1" and code == 0
    assert detail["entry"]["result_etag"] == "e2"
    assert [ev["kind"] for ev in detail["events"]] == ["enqueued", "claimed", "done"]

    proc = await cli("status", "--id", "2", journal_dir=journal_dir)
    assert proc.returncode == 1 and "/h/b" in proc.stdout, "the full entry shows full paths"
    proc = await cli("status", "--watch", "--interval", "0", "--iterations", "2", journal_dir=journal_dir)
    assert proc.returncode == 1 and "paths under /h" in proc.stdout


async def test_actions_never_take_the_owner_lock(journal: Journal, journal_dir: Path) -> None:
    failed = await save(journal, "/h/f", b"f")
    await journal.claim("w")
    await journal.mark_failed(failed.id, error="boom")
    conflict = await save(journal, "/h/c", b"c")
    await journal.claim("w")
    await journal.mark_conflict(conflict.id, conflict_path="/h/c (conflicted copy)", error="etag moved")
    pending = await save(journal, "/h/p", b"p")

    # The owner (this process) keeps running all along.
    assert (await cli("retry", str(failed.id), journal_dir=journal_dir)).returncode == 0
    assert (await journal.entry(failed.id)).state == State.QUEUED
    proc = await cli("retry", str(conflict.id), journal_dir=journal_dir)
    assert proc.returncode == 1 and "resolve" in proc.stderr
    assert (await cli("resolve", str(conflict.id), journal_dir=journal_dir)).returncode == 0
    assert (await journal.entry(conflict.id)).state == State.DONE

    proc = await cli("discard", str(pending.id), journal_dir=journal_dir)
    assert proc.returncode == 1, "not a terminal and no --yes: refused"
    assert (await journal.entry(pending.id)).state == State.QUEUED
    assert (await cli("discard", str(pending.id), "--yes", journal_dir=journal_dir)).returncode == 0
    assert (await journal.entry(pending.id)).state == State.CANCELLED

    assert (await cli("pause", journal_dir=journal_dir)).returncode == 0
    assert (await journal.control()).paused
    assert await journal.claim("w") is None
    assert (await cli("resume", journal_dir=journal_dir)).returncode == 0
    assert not (await journal.control()).paused
    proc = await cli("gc", "--json", journal_dir=journal_dir)
    assert proc.returncode == 0 and set(json.loads(proc.stdout)) >= {"entries", "blobs"}
    assert (await cli("retry", "--all-failed", journal_dir=journal_dir)).returncode == 0
    assert (await cli("resolve", "999", journal_dir=journal_dir)).returncode == 1
    await journal.enqueue(Op.MKDIR, "/h/still-works", kind="directory")


async def test_status_table_is_limited_problems_first(journal_dir: Path, clock, local_mounts: Path) -> None:
    journal = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        for name in "abcd":
            await save(journal, f"/h/{name}", name.encode())
        failed = await save(journal, "/h/f", b"f")
        while (claimed := await journal.claim("w")) is not None and claimed.id != failed.id:
            await journal.mark_done(claimed.id)  # a..d done, one by one, until f is claimed
        await journal.mark_failed(failed.id, error="boom")
        for name in "xyz":
            await save(journal, f"/h/{name}", name.encode())
    finally:
        await journal.close()

    code, data = await status_json_inproc(journal_dir)
    assert code == 2 and len(data["entries"]) == 4, "--json lists every entry by default"
    code, data = await status_json_inproc(journal_dir, "--limit", "2")
    assert [e["path"] for e in data["entries"]] == ["/h/f", "/h/x"], "problems first, then the oldest"
    assert data["pending"] == 3 and data["problems"] == 1, "counts cover everything"
    proc = await cli("status", "--limit", "2", journal_dir=journal_dir)
    assert proc.returncode == 2 and "boom" in proc.stdout and "2 more pending or parked" in proc.stdout
    proc = await cli("status", "--limit", "0", journal_dir=journal_dir)
    assert "more pending" not in proc.stdout


async def test_keep_mine_requeues_a_conflict_over_the_remote_unless_a_later_change_exists(
    journal: Journal,
) -> None:
    from cs3sync.journal.errors import InvalidTransition

    conflict = await save(journal, "/h/c", b"mine")
    await journal.claim("w")
    await journal.mark_conflict(conflict.id, conflict_path="/h/c (conflicted copy)", error="etag moved")
    later = await save(journal, "/h/c", b"newer")
    with pytest.raises(InvalidTransition):  # the newer save must not be overwritten by the older bytes
        await journal.keep_mine(conflict.id)
    await journal.discard(later.id)
    kept = await journal.keep_mine(conflict.id)
    assert kept.state == State.QUEUED and kept.base_etag is None and kept.needs_check
    with pytest.raises(InvalidTransition):  # not a conflict any more
        await journal.keep_mine(conflict.id)


async def test_status_shows_merged_saves(journal: Journal, journal_dir: Path) -> None:
    """A save merged with a foreign change (cs3sync.rebase): a line above the table, `merged` in --json."""
    entry = await save(journal, "/h/decay.ipynb", b"ours")
    await journal.claim("w")
    note = {"merged": True, "with": "marie", "changes": 2, "unit": "cell", "collisions": [],
            "message": "merged with marie's change, 2 cells"}  # fmt: skip
    merged = await journal.store_blob(b"merged")
    await journal.rebase_save(
        entry.id,
        merged,
        base_etag='"theirs"',
        base_fileid=None,
        presented_mtime=entry.created_at + 1,
        merge=note,
    )
    await journal.mark_done(entry.id, result_etag='"merged"')
    code, data = await status_json_inproc(journal_dir)
    assert code == 0 and data["entries"] == []
    [m] = data["merged"]
    assert (m["path"], m["merge"]["message"], m["size"]) == (
        "/h/decay.ipynb",
        note["message"],
        len(b"merged"),
    )
    proc = await cli("status", journal_dir=journal_dir)
    assert "/h/decay.ipynb: merged with marie's change, 2 cells" in proc.stdout


async def test_status_shows_an_owner_that_stopped_its_heartbeat(
    journal_dir: Path, local_mounts: Path
) -> None:
    """An engine that died, or cannot write its journal (disk full), stops its heartbeat: `status`
    says so instead of showing the last state it wrote (issue 13: "offline" with a heartbeat 172 s old)."""
    journal = await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    try:
        await journal.set_control(engine_state="offline", heartbeat=time.time())
        _, data = await status_json_inproc(journal_dir)
        assert data["engine"]["health"] == "ok"
        await journal.set_control(heartbeat=time.time() - 100)
        _, data = await status_json_inproc(journal_dir)
        assert data["engine"]["health"] == "not_responding"
        proc = await cli("status", journal_dir=journal_dir)
        assert "not responding: last heartbeat 100 s ago" in proc.stdout
    finally:
        await journal.close()
