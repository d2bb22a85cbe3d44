"""End to end through the REST API: jupyter_server + CS3ContentsManager + engine + emulator."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from contents_helpers import body, put_text, rpc_names, status_of
from tornado.httpclient import HTTPClientError


async def test_save_then_get_last_modified_and_hash_are_identical(jp_fetch: Any, cm: Any) -> None:
    saved = await put_text(jp_fetch, "a.txt", "one")
    got = body(await jp_fetch("api", "contents", "a.txt", params={"content": "0", "hash": "1"}))
    assert got["last_modified"] == saved["last_modified"]
    again = body(await jp_fetch("api", "contents", "a.txt", params={"content": "0", "hash": "1"}))
    assert again["hash"] == got["hash"] and again["last_modified"] == got["last_modified"]
    nb = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    saved_nb = body(await jp_fetch("api", "contents", "n.ipynb", method="PUT", body=json.dumps(nb)))
    got_nb = body(await jp_fetch("api", "contents", "n.ipynb", params={"content": "0"}))
    assert got_nb["last_modified"] == saved_nb["last_modified"]
    second = await put_text(jp_fetch, "a.txt", "two")
    assert second["last_modified"] > saved["last_modified"]


async def test_round_trip_budgets(jp_fetch: Any, cm: Any, emulator_thread: Any) -> None:
    emu = emulator_thread
    await jp_fetch("api", "contents", "d", method="PUT", body=json.dumps({"type": "directory"}))
    await put_text(jp_fetch, "d/f.txt", "x")
    nb = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    await jp_fetch("api", "contents", "d/n.ipynb", method="PUT", body=json.dumps(nb))
    await (await cm.get_engine()).wait_idle(timeout=30)

    cm.invalidate(cm.path_map.to_cs3("d"))
    mark = len(emu.calls)
    await jp_fetch("api", "contents", "d", params={"content": "1"})
    assert rpc_names(emu, mark) == ["ListContainer"]

    cm.invalidate(cm.path_map.to_cs3("d"))
    mark = len(emu.calls)
    await jp_fetch("api", "contents", "d/f.txt", params={"content": "0"})
    assert rpc_names(emu, mark) == ["Stat"]

    cm.invalidate(cm.path_map.to_cs3("d"))
    cm.remote.content_cache.drop(cm.path_map.to_cs3("d/n.ipynb"))
    mark = len(emu.calls)
    await jp_fetch("api", "contents", "d/n.ipynb", params={"content": "1"})
    assert rpc_names(emu, mark) == ["Stat", "InitiateFileDownload"]

    await jp_fetch("api", "contents", "d/f.txt", params={"content": "0", "hash": "1"})  # what Lab does first
    mark = len(emu.calls)
    await put_text(jp_fetch, "d/f.txt", "y")
    steady = rpc_names(emu, mark)
    assert steady.count("InitiateFileUpload") == 1
    assert len(steady) <= 3, steady

    print("round trips: steady save", steady)


async def test_round_trip_budget_rename_delete(jp_fetch: Any, cm: Any, emulator_thread: Any) -> None:
    emu = emulator_thread
    await jp_fetch("api", "contents", "d", method="PUT", body=json.dumps({"type": "directory"}))
    await put_text(jp_fetch, "d/f.txt", "x")
    await (await cm.get_engine()).wait_idle(timeout=30)
    cm.invalidate(cm.path_map.to_cs3("d"))
    mark = len(emu.calls)
    await jp_fetch("api", "contents", "d/f.txt", method="PATCH", body=json.dumps({"path": "d/g.txt"}))
    renamed = rpc_names(emu, mark)
    print("round trips: rename", renamed)
    assert renamed.count("Move") == 1 and len(renamed) <= 3, renamed  # 2 RPCs + Move

    mark = len(emu.calls)
    await jp_fetch("api", "contents", "d/g.txt", method="DELETE")
    deleted = rpc_names(emu, mark)
    print("round trips: delete", deleted)
    assert deleted.count("Delete") == 1 and len(deleted) <= 3, deleted  # 2 RPCs + Delete


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "a\x00b.txt", "a\\..\\b.txt", "x" * 300, "%2e%2e/escape.txt"],
)
async def test_path_attacks_are_refused(jp_fetch: Any, cm: Any, path: str, cs3_root: Any) -> None:
    model = json.dumps({"type": "file", "format": "text", "content": "evil"})
    for method, kw in (("GET", {}), ("PUT", {"body": model}), ("DELETE", {})):
        code = await status_of(jp_fetch, "api", "contents", path, method=method, **kw)
        assert code in (400, 404), (method, path, code)
    assert not list(cs3_root[1].parent.glob("escape.txt"))


async def test_foreign_lock_makes_file_read_only_and_save_423(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    await put_text(jp_fetch, "locked.txt", "mine")
    await (await cm.get_engine()).wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("locked.txt")
    emulator_thread.storage.lock(cs3_path, app="office-online", lock_id="wopi-1", user="marie")
    cm.invalidate(cs3_path)
    got = body(await jp_fetch("api", "contents", "locked.txt", params={"content": "0"}))
    assert got["writable"] is False
    with pytest.raises(HTTPClientError) as e:
        await put_text(jp_fetch, "locked.txt", "theirs")
    assert e.value.code == 423
    assert "office-online" in body(e.value.response)["message"]


async def test_lock_taken_after_the_last_look_is_423_naming_the_holder(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """Someone locks the file after our last Stat: the write itself is refused (EOS: a bare HTTP 500,
    storage behaviours row 2). The client asks GetLock, the save answers 423 naming the holder, and the
    bytes stay in the journal."""
    await put_text(jp_fetch, "late.txt", "mine")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("late.txt")
    await body_of_get(jp_fetch, "late.txt")  # our last look: unlocked
    emulator_thread.storage.lock(cs3_path, app="office-online", lock_id="wopi-2", user="marie")
    with pytest.raises(HTTPClientError) as e:
        await put_text(jp_fetch, "late.txt", "edited")
    assert e.value.code == 423
    assert "office-online" in body(e.value.response)["message"]
    assert (cs3_root[1] / "late.txt").read_bytes() == b"mine"
    pending = [x for x in await engine.entries() if x.path == cs3_path and x.state != "done"]
    assert [x.last_error_kind for x in pending] == ["locked"]


async def test_a_save_that_gives_up_on_a_lock_is_423_and_kept(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """The engine stops retrying after its ceiling (max_attempts): the entry is failed, the save answers
    423 naming the holder and saying how to go on, and the bytes stay in the journal."""
    await put_text(jp_fetch, "stuck.txt", "mine")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    engine.max_attempts = 2
    cs3_path = cm.path_map.to_cs3("stuck.txt")
    await body_of_get(jp_fetch, "stuck.txt")
    emulator_thread.storage.lock(cs3_path, app="office-online", lock_id="wopi-3", user="marie")
    with pytest.raises(HTTPClientError) as e:
        await put_text(jp_fetch, "stuck.txt", "edited")
    assert e.value.code == 423
    message = body(e.value.response)["message"]
    assert "office-online" in message and "retry it from the sync panel" in message
    [failed] = [x for x in await engine.entries() if x.path == cs3_path and x.state == "failed"]
    assert failed.last_error_kind == "locked" and "gave up after 2 attempts" in (failed.last_error or "")
    assert engine.blob_path(failed.blob).read_bytes() == b"edited"
    assert (cs3_root[1] / "stuck.txt").read_bytes() == b"mine"


async def body_of_get(jp_fetch: Any, path: str) -> dict[str, Any]:
    return body(await jp_fetch("api", "contents", path, params={"content": "0"}))


async def test_remote_edit_then_save_keeps_remote_and_conflict_copy(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    first = await put_text(jp_fetch, "shared.txt", "base")
    await (await cm.get_engine()).wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("shared.txt")
    before = body(await jp_fetch("api", "contents", "shared.txt", params={"content": "0", "hash": "1"}))
    emulator_thread.storage.external_write(cs3_path, b"remote edit")
    code = await status_of(
        jp_fetch, "api", "contents", "shared.txt", method="PUT",
        body=json.dumps({"type": "file", "format": "text", "content": "our edit"}),
    )  # fmt: skip
    assert code in (200, 409)
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "shared.txt").read_bytes() == b"remote edit"
    copies = [p for p in cs3_root[1].iterdir() if p.name.startswith("shared (conflicted copy")]
    assert [p.read_bytes() for p in copies] == [b"our edit"]
    cm.invalidate(cs3_path)
    after = body(await jp_fetch("api", "contents", "shared.txt", params={"content": "0", "hash": "1"}))
    # JupyterLab's "File Changed" rule: differing hashes, or a time > 500 ms newer.
    assert after["hash"] != before["hash"] or after["last_modified"] > first["last_modified"]


async def test_chunked_upload_assembles_exact_bytes_and_touches_storage_once(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    mib = 1024 * 1024
    data = bytes(range(256)) * (3 * mib // 256) + b"tail"
    chunks = [data[i : i + mib] for i in range(0, len(data), mib)]
    mark = len(emulator_thread.calls)
    for number, chunk in enumerate(chunks, start=1):
        last = number == len(chunks)
        model = {
            "type": "file", "format": "base64", "name": "big.bin", "chunk": -1 if last else number,
            "content": base64.b64encode(chunk).decode(),
        }  # fmt: skip
        await jp_fetch("api", "contents", "big.bin", method="PUT", body=json.dumps(model))
        if not last:  # nothing reaches the storage before the last chunk
            assert "InitiateFileUpload" not in rpc_names(emulator_thread, mark)
    await (await cm.get_engine()).wait_idle(timeout=60)
    assert (cs3_root[1] / "big.bin").read_bytes() == data
    assert rpc_names(emulator_thread, mark).count("InitiateFileUpload") == 1


async def test_a_chunk_is_staged_with_the_requests_first(jp_fetch: Any, cm: Any, monkeypatch: Any) -> None:
    """Like a save, a chunk of an upload is a request the engine's workers hold back for
    (`cs3sync.engine.priority`): a chunk shares the loop and the writer with the engine applying a
    folder of files uploaded just before."""
    engine = await cm.get_engine()
    seen: list[int] = []
    real = engine.stage_chunk

    async def stage_chunk(*args: Any, **kwargs: Any) -> Any:
        seen.append(engine.priority.requests)
        return await real(*args, **kwargs)

    monkeypatch.setattr(engine, "stage_chunk", stage_chunk)
    for number in (1, 2, -1):
        model = {"type": "file", "format": "base64", "name": "p.bin", "chunk": number,
                 "content": base64.b64encode(b"x" * 10).decode()}  # fmt: skip
        await jp_fetch("api", "contents", "p.bin", method="PUT", body=json.dumps(model))
    assert seen == [1, 1, 1]
    assert engine.priority.requests == 0


async def test_a_get_without_content_is_answered_with_the_requests_first(
    jp_fetch: Any, cm: Any, monkeypatch: Any
) -> None:
    """`GET ?content=0` (JupyterLab's ask right after a save) is a request the engine's workers hold
    back for, like a save: else it waits on the loop behind the engine landing that save. A GET with
    content (a download, maybe long) is not."""
    await put_text(jp_fetch, "g.txt", "v1")
    engine = await cm.get_engine()
    seen: list[int] = []
    real = cm.lookups.read

    async def read(*args: Any, **kwargs: Any) -> Any:
        seen.append(engine.priority.requests)
        return await real(*args, **kwargs)

    monkeypatch.setattr(cm.lookups, "read", read)
    got = body(await jp_fetch("api", "contents", "g.txt", params={"content": "0"}))
    assert got["content"] is None and got["path"] == "g.txt"
    got = body(await jp_fetch("api", "contents", "g.txt"))
    assert got["content"] == "v1"
    assert seen == [1, 0]
    assert engine.priority.requests == 0


async def test_save_while_storage_down_is_accepted_and_applied_later(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "seen.txt", "v1")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        saved = await put_text(jp_fetch, "offline.txt", "written offline")
        assert saved["path"] == "offline.txt"
        pending = [e for e in engine.active_entries() if e.path.endswith("/offline.txt")]
        assert pending, "the save is listed as pending"
        got = body(await jp_fetch("api", "contents", "offline.txt"))
        assert got["content"] == "written offline"  # read-your-writes from the spool
        code = await status_of(jp_fetch, "api", "contents", "never-seen.txt")
        assert code == 503  # an outage is never a 404
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    engine.wake()
    assert await engine.wait_idle(timeout=60)
    entry_ids = [e.id for e in await engine.entries() if e.path.endswith("/offline.txt")]
    assert await engine.wait(entry_ids[-1], timeout=60)
    assert (cs3_root[1] / "offline.txt").read_bytes() == b"written offline"


async def test_checkpoints_create_list_restore_delete_also_offline(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    await put_text(jp_fetch, "c.txt", "original")
    created = body(
        await jp_fetch(
            "api", "contents", "c.txt", "checkpoints", method="POST", allow_nonstandard_methods=True
        )
    )
    await put_text(jp_fetch, "c.txt", "changed")
    await (await cm.get_engine()).wait_idle(timeout=30)
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        listed = body(await jp_fetch("api", "contents", "c.txt", "checkpoints"))
        assert created["id"] in [c["id"] for c in listed]
        await jp_fetch(
            "api",
            "contents",
            "c.txt",
            "checkpoints",
            created["id"],
            method="POST",
            allow_nonstandard_methods=True,
        )
        restored = body(await jp_fetch("api", "contents", "c.txt"))
        assert restored["content"] == "original"
        await jp_fetch("api", "contents", "c.txt", "checkpoints", created["id"], method="DELETE")
        listed = body(await jp_fetch("api", "contents", "c.txt", "checkpoints"))
        assert created["id"] not in [c["id"] for c in listed]
    finally:
        emulator_thread.call(emulator_thread.faults.restart)


async def test_lock_sessions_rest(jp_fetch: Any, cm: Any, emulator_thread: Any) -> None:
    await put_text(jp_fetch, "doc.txt", "x")
    info = body(await jp_fetch("api", "cs3sync", "locks"))
    assert info["heartbeat"] > 0
    opened = body(
        await jp_fetch(
            "api", "cs3sync", "locks", method="POST", body=json.dumps({"path": "doc.txt", "session": "s1"})
        )
    )
    assert opened["locked"] is True and opened["read_only"] is False
    lock = await (await cm.get_client()).get_lock(cm.path_map.to_cs3("doc.txt"))
    assert lock is not None and lock.lock_id.startswith("cs3sync-")
    await put_text(jp_fetch, "doc.txt", "saved while we hold the lock")  # our lock does not block us
    code = await status_of(
        jp_fetch, "api", "cs3sync", "locks", method="DELETE", params={"path": "doc.txt", "session": "s1"}
    )
    assert code == 204
    assert (
        await status_of(
            jp_fetch, "api", "cs3sync", "locks", method="DELETE", params={"path": "doc.txt", "session": "s1"}
        )
        == 404
    )


async def test_internal_lock_errors_never_switch_locking_off(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Storage behaviours row 6: EOS answers INTERNAL "eosfs: error setting eos lock" when its attribute
    write fails, on SetLock (the open), RefreshLock (the heartbeat) or Unlock (the close). Each is a
    passing failure, not a storage without locks. The open answers (editable, not yet locked) and the
    next heartbeat takes the lock; a refused refresh keeps our lock and locking on (the editor's poll
    still shows it ours, saves carry it); a refused unlock leaves our lock on the storage until it
    expires, and opening the document again recognises it as ours: editable, saves land, never
    "locked by" ourselves."""
    await put_text(jp_fetch, "beat.txt", "x")
    session = {"path": "beat.txt", "session": "s1"}
    emulator_thread.storage.fail_next_lock_change()
    first = body(await jp_fetch("api", "cs3sync", "locks", method="POST", body=json.dumps(session)))
    assert first["locked"] is False and first["read_only"] is False
    opened = body(await jp_fetch("api", "cs3sync", "locks", method="POST", body=json.dumps(session)))
    assert opened["locked"] is True
    path = cm.path_map.to_cs3("beat.txt")
    client = await cm.get_client()
    ours = await client.get_lock(path)
    assert ours is not None and ours.lock_id.startswith("cs3sync-")
    now = [cm.locks.clock() + cm.locks.heartbeat + 1]  # the heartbeat is due, the session not stale
    cm.locks.clock = lambda: now[0]
    emulator_thread.storage.fail_next_lock_change()
    await cm.locks.sweep()  # the heartbeat's RefreshLock answers INTERNAL
    assert body(await jp_fetch("api", "cs3sync", "locks"))["enabled"] is True
    # The editor's poll still shows the document locked by us, and a save carries our lock at once
    # (dropping the lock id would leave our own lock on EOS refusing our writes until it expires).
    polled = body(await jp_fetch("api", "cs3sync", "locks", params=session))
    assert polled["locked"] is True and polled["read_only"] is False and polled["holder"] is None
    await put_text(jp_fetch, "beat.txt", "saved after the refused refresh")
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert emulator_thread.storage.read(path) == b"saved after the refused refresh"
    beat = body(await jp_fetch("api", "cs3sync", "locks", method="POST", body=json.dumps(session)))
    assert beat["locked"] is True and beat["read_only"] is False and beat["holder"] is None
    after = await client.get_lock(path)
    assert after is not None and after.lock_id == ours.lock_id
    emulator_thread.storage.fail_next_lock_change()
    code = await status_of(jp_fetch, "api", "cs3sync", "locks", method="DELETE", params=session)
    assert code == 204  # the close answers; the storage keeps our lock until it expires
    still = await client.get_lock(path)
    assert still is not None and still.lock_id == ours.lock_id
    again = {"path": "beat.txt", "session": "s2"}
    reopened = body(await jp_fetch("api", "cs3sync", "locks", method="POST", body=json.dumps(again)))
    assert reopened["locked"] is True and reopened["read_only"] is False and reopened["holder"] is None
    await put_text(jp_fetch, "beat.txt", "saved after the refused unlock")
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert emulator_thread.storage.read(path) == b"saved after the refused unlock"


async def test_an_expired_lock_shown_by_stat_does_not_refuse_a_save(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """Storage behaviours row 8: EOS's Stat keeps showing a lock after it expired (only GetLock deletes
    it). Such a lock is nobody's: opening and saving the file answer as for an unlocked file, not 423."""
    await put_text(jp_fetch, "was-locked.txt", "a")
    await (await cm.get_engine()).wait_idle(timeout=30)
    path = cm.path_map.to_cs3("was-locked.txt")
    emulator_thread.storage.lock(path, app="Collabora", lock_id="theirs", user="marie", expiration=-60)
    cm.invalidate(path)
    info = await (await cm.get_client()).stat(path)
    assert (info.lock is not None) == bool(emulator_thread.emulator.config.stat_reports_expired_locks)
    opened = body(await jp_fetch("api", "contents", "was-locked.txt"))
    assert opened["writable"] is True
    await put_text(jp_fetch, "was-locked.txt", "b")
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert emulator_thread.storage.read(path) == b"b"


async def test_token_expiry_mid_session_is_invisible(jp_fetch: Any, cm: Any, emulator_thread: Any) -> None:
    await put_text(jp_fetch, "t.txt", "before")
    emulator_thread.auth.expire_all()
    cm.invalidate(cm.path_map.to_cs3("t.txt"))
    got = body(await jp_fetch("api", "contents", "t.txt"))
    assert got["content"] == "before"
    await put_text(jp_fetch, "t.txt", "after")
    emulator_thread.auth.expire_all()
    listing = body(await jp_fetch("api", "contents", "", params={"content": "1"}))
    assert "t.txt" in [c["name"] for c in listing["content"]]


async def _conflict(jp_fetch: Any, cm: Any, emulator_thread: Any, name: str, theirs: bytes, mine: str) -> int:
    """A remote edit, then our save of the same file: the journal parks a conflict; its id."""
    await put_text(jp_fetch, name, "base")
    await (await cm.get_engine()).wait_idle(timeout=30)
    await jp_fetch("api", "contents", name, params={"content": "0"})  # the version the editor holds
    emulator_thread.storage.external_write(cm.path_map.to_cs3(name), theirs)
    model = json.dumps({"type": "file", "format": "text", "content": mine})
    assert await status_of(jp_fetch, "api", "contents", name, method="PUT", body=model) in (200, 409)
    await (await cm.get_engine()).wait_idle(timeout=30)
    journal = body(await jp_fetch("api", "cs3sync", "journal"))
    [entry] = [e for e in journal["entries"] if e["state"] == "conflict" and e["api_path"] == name]
    assert entry["conflict_api_path"].startswith(name.rsplit(".", 1)[0] + " (conflicted copy")
    return int(entry["id"])


async def test_conflict_keep_mine_keep_theirs_and_refusals_in_plain_words(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """The Sync panel's conflict choices over REST: Keep mine puts our bytes over the other version,
    Keep theirs / Mark resolved (`resolve`) leaves the storage's; the conflict copy stays either way."""
    mine = await _conflict(jp_fetch, cm, emulator_thread, "mine.txt", b"their edit", "my edit")
    # A plain retry of a conflict is refused with words a user understands, never "retryed".
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "cs3sync", "journal", str(mine), "retry", method="POST", body="")
    assert refused.value.code == 409
    message = body(refused.value.response)["message"]
    assert "retryed" not in message and "entry" not in message.lower(), message
    await jp_fetch("api", "cs3sync", "journal", str(mine), "keep-mine", method="POST", body="")
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "mine.txt").read_bytes() == b"my edit"
    assert [p.read_bytes() for p in cs3_root[1].iterdir() if p.name.startswith("mine (conflicted copy")] == [
        b"my edit"
    ]
    # Keeping mine twice: the entry has moved on.
    assert (
        await status_of(jp_fetch, "api", "cs3sync", "journal", str(mine), "keep-mine", method="POST", body="")
        == 409
    )

    theirs = await _conflict(jp_fetch, cm, emulator_thread, "theirs.txt", b"their edit", "my edit")
    await jp_fetch("api", "cs3sync", "journal", str(theirs), "resolve", method="POST", body="")
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "theirs.txt").read_bytes() == b"their edit"
    journal = body(await jp_fetch("api", "cs3sync", "journal"))
    assert not [e for e in journal["entries"] if e["state"] == "conflict"]


async def test_a_lock_taken_after_opening_is_seen_by_the_check_and_names_the_person(
    jp_fetch: Any, cm: Any, emulator_thread: Any
) -> None:
    """The editor's frequent GET check reads the lock: someone else's lock, taken after the document was
    opened, is reported with the person's name (not the application's) and makes it read-only."""
    await put_text(jp_fetch, "held.txt", "x")
    session = {"path": "held.txt", "session": "s1"}
    opened = body(await jp_fetch("api", "cs3sync", "locks", method="POST", body=json.dumps(session)))
    assert opened["read_only"] is False
    checked = body(await jp_fetch("api", "cs3sync", "locks", params=session))
    assert checked["read_only"] is False and checked["holder"] is None
    emulator_thread.storage.lock(
        cm.path_map.to_cs3("held.txt"), app="cernbox-office", lock_id="theirs", user="marie"
    )
    cm.locks.clock = lambda: 1e12  # past the check interval, without sleeping
    checked = body(await jp_fetch("api", "cs3sync", "locks", params=session))
    assert checked["read_only"] is True
    assert checked["holder"] == "Marie Curie" and checked["holder_app"] == "cernbox-office"
    assert await status_of(jp_fetch, "api", "cs3sync", "locks", params={**session, "session": "nope"}) == 404


async def test_big_listing_leaves_out_hidden_names_and_shows_our_pending_files(
    jp_fetch: Any, cm: Any, cs3_root: Any
) -> None:
    """A folder listed in batches (LISTING_BATCHED entries or more): every visible child once, sorted by
    name, without dot-names or names matching ``hide_globs``, with our own files added since."""
    from contents.listing import LISTING_BATCHED

    folder = cs3_root[1] / "big"
    (folder / "__pycache__").mkdir(parents=True)
    names = [f"f-{i:04d}.txt" for i in range(LISTING_BATCHED + 50)]
    for name in [*names, ".hidden.txt", "old.pyc", "backup.txt~"]:
        (folder / name).write_text("x")
    await put_text(jp_fetch, "big/zz-ours.txt", "mine")
    listed = body(await jp_fetch("api", "contents", "big", params={"content": "1"}))
    assert [m["name"] for m in listed["content"]] == [*names, "zz-ours.txt"]
    assert all(m["path"] == f"big/{m['name']}" and m["type"] == "file" for m in listed["content"])
