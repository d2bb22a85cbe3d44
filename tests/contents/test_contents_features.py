"""Quota and disk-full answers, lock modes and stale sessions, storage versions, folder copies and the
virtual Spaces folder, against the emulator (both profiles)."""

from __future__ import annotations

import errno
import json
import re
from typing import Any

import anyio
import pytest
from contents_helpers import body, put_text, rpc_names, status_of
from tornado.httpclient import HTTPClientError

import cs3sync.journal.spool as spool_module


async def test_quota_exceeded_is_507_and_the_save_lands_when_space_is_freed(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "q.txt", "small")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    emulator_thread.storage.set_quota(1)  # one byte: every write is refused
    try:
        with pytest.raises(HTTPClientError) as e:
            await put_text(jp_fetch, "q.txt", "a bigger version that does not fit")
        assert e.value.code == 507
        # EOS refuses a full quota with a bare HTTP 500 (storage behaviours row 7): still 507, with figures.
        assert re.search(r"quota exceeded \(.* of 1 B used\)", body(e.value.response)["message"])
        assert (cs3_root[1] / "q.txt").read_bytes() == b"small"
    finally:
        emulator_thread.storage.set_quota(None)
    engine.wake()
    ids = [x.id for x in await engine.entries() if x.path.endswith("/q.txt")]
    assert await engine.wait(ids[-1], timeout=60)
    assert (cs3_root[1] / "q.txt").read_bytes() == b"a bigger version that does not fit"


async def test_a_save_with_the_quota_full_is_kept_and_presents_no_foreign_change(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """Issue 15: with the quota full JupyterLab said "Saving failed" for a save that was kept, and later
    "File Changed" about our own write. With replies once journaled (the default write_through_timeout
    0) the save answers 2xx; every GET JupyterLab sends (after a save, and before the next one: its
    File Changed check) presents the last_modified and hash of our own save's reply, while the storage
    refuses it and after it lands."""
    await put_text(jp_fetch, "q.txt", "small")
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    cm.cs3.write_through_timeout = 0.0  # the default (the fixture waits for the storage)

    async def check() -> dict[str, Any]:
        return body(await jp_fetch("api", "contents", "q.txt", params={"content": "0", "hash": "1"}))

    emulator_thread.storage.set_quota(1)  # one byte: every write is refused
    try:
        first = await put_text(jp_fetch, "q.txt", "a bigger version that does not fit")
        [entry] = [e for e in engine.active_entries() if e.path.endswith("/q.txt")]
        with anyio.fail_after(30):  # the storage refused it once
            while True:
                since = engine.changed.generation
                if any(e.id == entry.id and e.state == "retrying" for e in engine.active_entries()):
                    break
                await engine.changed.wait(since)
        assert entry.id in {e.id for e in engine.active_entries()}
        got = await check()
        assert got["last_modified"] == first["last_modified"]
        status = body(await jp_fetch("api", "cs3sync", "journal"))
        [waiting] = [e for e in status["entries"] if e["api_path"] == "q.txt"]
        assert "quota" in (waiting["last_error"] or "").lower()  # the Sync panel says why it waits
        second = await put_text(jp_fetch, "q.txt", "a second version that does not fit either")
        got = await check()
        assert got["last_modified"] == second["last_modified"] >= first["last_modified"]
    finally:
        emulator_thread.storage.set_quota(None)
    engine.wake()
    ids = [x.id for x in await engine.entries() if x.path.endswith("/q.txt")]
    assert await engine.wait(ids[-1], timeout=60)
    assert (cs3_root[1] / "q.txt").read_bytes() == b"a second version that does not fit either"
    landed = await check()
    assert (landed["last_modified"], landed["hash"]) == (second["last_modified"], got["hash"])


async def test_one_refused_write_on_the_storage_is_retried(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    emulator_thread.storage.fail_next_write(errno.ENOSPC)
    code = await status_of(
        jp_fetch, "api", "contents", "once.txt", method="PUT",
        body=json.dumps({"type": "file", "format": "text", "content": "retried"}),
    )  # fmt: skip
    assert code in (201, 507)  # 507 only if the retry did not land within write_through_timeout
    assert await (await cm.get_engine()).wait_idle(timeout=60)
    assert (cs3_root[1] / "once.txt").read_bytes() == b"retried"


async def test_local_disk_full_is_507_with_a_clear_message(
    jp_fetch: Any, cm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cm.get_engine()

    def no_space(fd: int, data: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module, "write_all", no_space)
    with pytest.raises(HTTPClientError) as e:
        await put_text(jp_fetch, "full.txt", "nowhere to keep it")
    assert e.value.code == 507
    message = body(e.value.response)["message"]
    assert "Local disk full" in message and "full.txt" in message and "not saved" in message
    monkeypatch.undo()
    assert await status_of(jp_fetch, "api", "contents", "full.txt") == 404


@pytest.mark.parametrize("mode", ["lock_not_impl", "lock_as_attr"])
async def test_lock_modes(make_cm: Any, emulator_thread: Any, mode: str) -> None:
    cm = make_cm(**{mode: True})
    await cm.save({"type": "file", "format": "text", "content": "x"}, "l.txt")
    cs3_path = cm.path_map.to_cs3("l.txt")
    opened = await cm.locks.open("l.txt", "s1")
    calls = [c.method for c in emulator_thread.calls]
    assert "SetLock" not in calls  # neither mode uses the lock RPCs
    client = await cm.get_client()
    if mode == "lock_not_impl":
        assert opened["read_only"] is False
        assert await client.get_lock(cs3_path) is None
    else:
        assert opened["locked"] is True and opened["read_only"] is False
        lock = await client.get_lock(cs3_path)  # the emulated lock, in the metadata attribute
        assert lock is not None and lock.lock_id == cm.locks.lock_id_for("l.txt")
        await cm.save({"type": "file", "format": "text", "content": "ours"}, "l.txt")  # our lock: fine
        await cm.locks.close("l.txt", "s1")
        assert await client.get_lock(cs3_path) is None
        # Someone else takes the emulated lock: read-only for us, 423 on save, reported on open.
        other = make_cm(lock_as_attr=True, lock_app_name="office", journal_dir=str(cm.cs3.journal_dir) + "-2")
        other_client = await other.get_client()
        await other_client.set_lock(cs3_path, "office-lock", app_name="office", expiration=600)
        cm.invalidate(cs3_path)
        assert (await cm.get("l.txt", content=False))["writable"] is False
        with pytest.raises(Exception) as e:
            await cm.save({"type": "file", "format": "text", "content": "theirs"}, "l.txt")
        assert getattr(e.value, "status_code", None) == 423 and "office" in e.value.log_message
        reopened = await cm.locks.open("l.txt", "s2")
        assert reopened["read_only"] is True and "office" in reopened["holder"]
    await cm.locks.close()


async def test_stale_lock_sessions_are_dropped_and_unlocked(make_cm: Any, emulator_thread: Any) -> None:
    cm = make_cm()
    now = [1000.0]
    cm.locks.clock = lambda: now[0]
    await cm.save({"type": "file", "format": "text", "content": "x"}, "s.txt")
    cs3_path = cm.path_map.to_cs3("s.txt")
    client = await cm.get_client()
    await cm.locks.open("s.txt", "alive")
    await cm.locks.open("s.txt", "gone")
    assert (await client.get_lock(cs3_path)) is not None
    now[0] += cm.locks.expiration - 1
    await cm.locks.open("s.txt", "alive")  # heartbeat of one session only
    now[0] += 2
    await cm.locks.sweep()
    assert (await cm.locks.open("s.txt", "alive"))["count"] == 1  # "gone" was dropped, lock kept
    assert (await client.get_lock(cs3_path)) is not None
    now[0] += cm.locks.expiration + 1
    await cm.locks.sweep()  # the last session went stale: unlocked
    assert cm.locks.lock_id_for("s.txt") is None
    assert (await client.get_lock(cs3_path)) is None


async def test_storage_versions_are_read_only_and_restored_with_our_lock(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "v.txt", "version one")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    emulator_thread.storage.external_write(cm.path_map.to_cs3("v.txt"), b"version two")
    cm.invalidate(cm.path_map.to_cs3("v.txt"))
    listed = body(await jp_fetch("api", "contents", "v.txt", "checkpoints"))
    versions = [c for c in listed if c["id"].startswith("v-")]
    assert versions, listed
    assert await status_of(jp_fetch, "api", "contents", "v.txt", "checkpoints", versions[0]["id"],
                           method="DELETE") == 400  # fmt: skip
    await jp_fetch(
        "api", "cs3sync", "locks", method="POST", body=json.dumps({"path": "v.txt", "session": "s"})
    )
    lock_id = cm.locks.lock_id_for("v.txt")
    assert lock_id
    mark = len(emulator_thread.calls)
    await jp_fetch("api", "contents", "v.txt", "checkpoints", versions[0]["id"], method="POST",
                   allow_nonstandard_methods=True)  # fmt: skip
    restores = [c for c in emulator_thread.calls[mark:] if c.method == "RestoreFileVersion"]
    assert len(restores) == 1 and restores[0].request.lock_id == lock_id
    assert (cs3_root[1] / "v.txt").read_bytes() == b"version one"
    got = body(await jp_fetch("api", "contents", "v.txt"))
    assert got["content"] == "version one"
    await jp_fetch("api", "cs3sync", "locks", method="DELETE", params={"path": "v.txt", "session": "s"})


async def test_folder_copy_is_recursive_and_bounded(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    for folder in ("src", "src/sub"):
        await jp_fetch("api", "contents", folder, method="PUT", body=json.dumps({"type": "directory"}))
    await put_text(jp_fetch, "src/a.txt", "a")
    await put_text(jp_fetch, "src/sub/b.txt", "b" * 2048)
    copied = body(await jp_fetch("api", "contents", "", method="POST", body=json.dumps({"copy_from": "src"})))
    assert copied["type"] == "directory"
    await (await cm.get_engine()).wait_idle(timeout=60)
    target = cs3_root[1] / copied["path"]
    assert (target / "a.txt").read_bytes() == b"a"
    assert (target / "sub" / "b.txt").read_bytes() == b"b" * 2048
    cm.max_copy_folder_size_mb = 0  # anything bigger than 0 bytes is refused, before any write
    mark = len(emulator_thread.calls)
    code = await status_of(
        jp_fetch, "api", "contents", "", method="POST", body=json.dumps({"copy_from": "src"})
    )
    assert code == 400
    assert not {"InitiateFileUpload", "CreateContainer"} & set(rpc_names(emulator_thread, mark))


async def test_virtual_spaces_folder(jp_fetch: Any, cm: Any, emulator_thread: Any) -> None:
    client = await cm.get_client()
    project = next(s for s in await client.spaces() if s.name == "physics-data")
    cm.path_map.set_mounts("Spaces", {project.name: project.path})
    emulator_thread.storage.external_write(f"{project.path}/readme.txt", b"shared notes")
    folder = body(await jp_fetch("api", "contents", "Spaces", params={"content": "1"}))
    assert folder["type"] == "directory" and folder["writable"] is False
    assert [c["name"] for c in folder["content"]] == ["physics-data"]
    assert all(c["writable"] is False for c in folder["content"])
    inside = body(await jp_fetch("api", "contents", "Spaces/physics-data", params={"content": "1"}))
    assert "readme.txt" in [c["name"] for c in inside["content"]]
    got = body(await jp_fetch("api", "contents", "Spaces/physics-data/readme.txt"))
    assert got["content"] == "shared notes" and got["path"] == "Spaces/physics-data/readme.txt"
    model = json.dumps({"type": "file", "format": "text", "content": "x"})
    assert await status_of(jp_fetch, "api", "contents", "Spaces/new.txt", method="PUT", body=model) == 403
    assert await status_of(jp_fetch, "api", "contents", "Spaces/nope/x.txt") == 404
    assert await status_of(jp_fetch, "api", "contents", "Spaces", method="DELETE") in (400, 403)


def test_every_trait_is_documented_with_its_default() -> None:
    import re
    from pathlib import Path

    from contents.config import CS3Sync

    doc = (Path(__file__).parents[2] / "docs" / "contents.md").read_text()
    documented: dict[str, str] = {}
    for names, default in re.findall(r"^\| `([^|]+)` \| `([^`]*)` \|", doc, re.M):
        for name in re.findall(r"[a-z_]+", names):
            documented[name] = default
    config = CS3Sync()
    traits = set(config.trait_names(config=True))
    assert traits == set(documented), traits ^ set(documented)
    units = {"MiB": 1024 * 1024}
    for name in traits:
        value, text = getattr(config, name), documented[name].strip('"')
        if isinstance(value, bool):
            assert str(value) == text, name
        elif isinstance(value, (int, float)):
            number, _, unit = text.partition(" ")
            assert float(number) * units.get(unit, 1) == value, name
        else:
            assert value == text, name


def test_deprecated_sections_are_taken_over_and_logged_once_through_the_parents_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """c.CS3FileManagerMixin.* (the old package's names) reach the server's log, which people read, not a
    DeprecationWarning that Python's default filters hide; each name once."""
    import logging
    import warnings

    from traitlets.config import Config, LoggingConfigurable

    from contents.config import CS3Sync

    logger = logging.getLogger("test.server")
    parent = LoggingConfigurable(
        config=Config(
            {
                "CS3FileManagerMixin": {"host": "old:19000", "lock_value": "x", "lock_by_setting_attr": True},
                "CS3Mixin": {"client_id": "old-name"},
                "CS3Sync": {"client_id": "new-name"},
            }
        ),
        log=logger,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of any kind escapes to Python's warnings machinery
        with caplog.at_level(logging.WARNING, logger="test.server"):
            config = CS3Sync(parent=parent)
    assert config.host == "old:19000" and config.lock_as_attr is True and config.client_id == "new-name"
    messages = [r.getMessage() for r in caplog.records if r.name == "test.server"]
    assert sorted(messages) == sorted(
        [
            "c.CS3FileManagerMixin.host is deprecated; use c.CS3Sync.host",
            "c.CS3FileManagerMixin.lock_value is ignored: lock ids are unique per server instance now",
            "c.CS3FileManagerMixin.lock_by_setting_attr is deprecated; use c.CS3Sync.lock_as_attr",
            "c.CS3Mixin.client_id is deprecated and overridden by c.CS3Sync.client_id",
        ]
    ), messages


async def test_the_server_start_leaves_its_startup_objects_out_of_full_collections(cm: Any) -> None:
    """A full garbage collection walks every tracked object with the GIL held (a big listing set one off
    that held the loop ~100 ms): what the server made while starting is frozen when our engine starts
    with it, and thawed when it stops."""
    import gc
    import logging

    from contents.extension import shutdown_manager, start_engine

    gc.unfreeze()
    await start_engine(cm, logging.getLogger("test"))
    assert gc.get_freeze_count() > 0
    await shutdown_manager(cm)
    assert gc.get_freeze_count() == 0
