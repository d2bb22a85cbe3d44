"""The contract on hostile and unlucky paths (issue 12), through the REST API: signed-out saves,
saves after a conflict, foreign deletes, foreign locks, refusals."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from contents_helpers import body, put_text, status_of


def _swap(path: Path, text: str) -> str:
    """Write ``text`` to ``path``, returning what it held."""
    old = path.read_text()
    path.write_text(text)
    return old


async def test_a_save_while_signed_out_is_journaled_and_lands_after_signing_in(
    jp_fetch: Any, cm: Any, cs3_root: Any, cs3_settings: dict, emulator_thread: Any
) -> None:
    """A save answered 2xx is in the journal even when the token is refused, `status` shows the auth
    pause, and the save lands once the token file holds a good secret again."""
    token = Path(cs3_settings["CS3Sync"]["token_path"])
    good = _swap(token, "not-the-password")
    emulator_thread.auth.expire_all()  # a token the server took at start-up is refused too
    model = {"type": "file", "format": "text", "content": "written while signed out"}
    code = await status_of(jp_fetch, "api", "contents", "later.txt", method="PUT", body=json.dumps(model))
    engine = await cm.get_engine()
    entries = [e for e in await engine.entries() if e.path.endswith("/later.txt")]
    if code < 300:
        assert entries, "a 2xx save must be in the journal"
    else:  # refused: then nothing may claim it was kept
        assert code == 503 and not entries
    assert entries, "a save while signed out is kept (journaled), like a save while offline"
    got = body(await jp_fetch("api", "contents", "later.txt"))
    assert got["content"] == "written while signed out"  # read-your-writes from the spool
    for _ in range(600):  # the engine tried it, found the token refused and paused
        if engine.state == "auth":
            break
        await engine.changed.wait(timeout=0.1)
    assert engine.state == "auth", [(e.state, e.last_error) for e in await engine.entries()]
    control = await engine.journal.control()
    assert control.engine_state == "auth"  # what `python -m cs3sync status` shows
    _swap(token, good)
    assert await engine.wait(entries[-1].id, timeout=60)
    assert (cs3_root[1] / "later.txt").read_bytes() == b"written while signed out"


def _time(model: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(model["last_modified"].replace("Z", "+00:00"))


def _copies(folder: Path, stem: str) -> list[bytes]:
    return sorted(p.read_bytes() for p in folder.iterdir() if p.name.startswith(f"{stem} (conflicted copy"))


async def _settle(engine: Any, name: str) -> list[Any]:
    """Wait for the engine to finish with ``name`` (after an outage too); its entries, oldest first."""
    from cs3sync.engine import ConflictError

    for entry in [e for e in await engine.entries() if e.path.endswith(f"/{name}")]:
        with contextlib.suppress(ConflictError):
            assert await engine.wait(entry.id, timeout=60)
    return [e for e in await engine.entries() if e.path.endswith(f"/{name}")]


async def test_after_a_conflict_the_storage_time_is_presented_and_the_next_save_is_not_applied_over_it(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """Einstein's save waits (storage down) while marie changes the file: his bytes go to a conflict
    copy, the next GET presents a time JupyterLab's "File Changed" check sees (> 500 ms newer than
    what his save returned), and his next save from the same editor does not replace marie's version."""
    await put_text(jp_fetch, "welcome.txt", "v1")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("welcome.txt")
    body(await jp_fetch("api", "contents", "welcome.txt"))  # einstein's editor loads v1
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        saved = await put_text(jp_fetch, "welcome.txt", "einstein's edit")
        emulator_thread.storage.external_write(cs3_path, b"marie's edit")
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    engine.wake()
    entries = await _settle(engine, "welcome.txt")
    assert entries[-1].state == "conflict"
    # JupyterLab's check before the next save (metadata only: the editor still holds einstein's text)
    got = body(await jp_fetch("api", "contents", "welcome.txt", params={"content": "0"}))
    assert (_time(got) - _time(saved)).total_seconds() > 0.5, (got["last_modified"], saved["last_modified"])
    again = body(await jp_fetch("api", "contents", "welcome.txt", params={"content": "0"}))
    assert again["last_modified"] == got["last_modified"]  # stable once presented
    # The still-open editor saves again (its base is v1, older than marie's version).
    model = {"type": "file", "format": "text", "content": "einstein's second edit"}
    code = await status_of(jp_fetch, "api", "contents", "welcome.txt", method="PUT", body=json.dumps(model))
    assert code in (200, 201, 409)
    await _settle(engine, "welcome.txt")
    assert (cs3_root[1] / "welcome.txt").read_bytes() == b"marie's edit"
    assert b"einstein's second edit" in _copies(cs3_root[1], "welcome")
    # Having loaded marie's version, einstein's editor saves over it normally.
    body(await jp_fetch("api", "contents", "welcome.txt"))
    await put_text(jp_fetch, "welcome.txt", "einstein on top of marie")
    await _settle(engine, "welcome.txt")
    assert (cs3_root[1] / "welcome.txt").read_bytes() == b"einstein on top of marie"


async def test_a_save_does_not_undo_a_foreign_delete_online(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "gone.txt", "v1")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    body(await jp_fetch("api", "contents", "gone.txt"))  # open in an editor
    emulator_thread.storage.external_delete(cm.path_map.to_cs3("gone.txt"))
    cm.invalidate(cm.path_map.to_cs3("gone.txt"))
    model = {"type": "file", "format": "text", "content": "edit of a deleted file"}
    code = await status_of(jp_fetch, "api", "contents", "gone.txt", method="PUT", body=json.dumps(model))
    assert code == 409  # applied at once: the user hears of it
    entries = await _settle(engine, "gone.txt")
    assert entries[-1].state == "conflict"
    assert not (cs3_root[1] / "gone.txt").exists()
    assert _copies(cs3_root[1], "gone") == [b"edit of a deleted file"]


async def test_an_offline_save_does_not_undo_a_foreign_delete(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "gone.txt", "v1")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    body(await jp_fetch("api", "contents", "gone.txt"))
    emulator_thread.call(emulator_thread.faults.outage)
    try:
        assert (await put_text(jp_fetch, "gone.txt", "offline edit"))["path"] == "gone.txt"
        emulator_thread.storage.external_delete(cm.path_map.to_cs3("gone.txt"))
    finally:
        emulator_thread.call(emulator_thread.faults.restart)
    engine.wake()
    entries = await _settle(engine, "gone.txt")
    assert entries[-1].state == "conflict"
    assert not (cs3_root[1] / "gone.txt").exists()
    assert _copies(cs3_root[1], "gone") == [b"offline edit"]


async def test_our_own_delete_then_a_save_creates_the_file_again(
    jp_fetch: Any, cm: Any, cs3_root: Any
) -> None:
    await put_text(jp_fetch, "again.txt", "v1")
    body(await jp_fetch("api", "contents", "again.txt"))
    await jp_fetch("api", "contents", "again.txt", method="DELETE")
    await put_text(jp_fetch, "again.txt", "v2")
    entries = await _settle(await cm.get_engine(), "again.txt")
    assert [e.state for e in entries] == ["done", "done", "done"]
    assert (cs3_root[1] / "again.txt").read_bytes() == b"v2"


async def test_a_lock_with_our_app_name_but_not_our_id_is_foreign(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """With bearer tokens every user's Jupyter locks as `jupyter-rtc`: marie's lock looks like ours by app
    name. Only a lock id we issued is ours: the file is read-only and a save answers 423."""
    await put_text(jp_fetch, "theirs.txt", "mine")
    await (await cm.get_engine()).wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("theirs.txt")
    emulator_thread.storage.lock(cs3_path, app=cm.cs3.lock_holder, lock_id="marie-session", user="marie")
    cm.invalidate(cs3_path)
    got = body(await jp_fetch("api", "contents", "theirs.txt", params={"content": "0"}))
    assert got["writable"] is False
    model = {"type": "file", "format": "text", "content": "over marie's lock"}
    code = await status_of(jp_fetch, "api", "contents", "theirs.txt", method="PUT", body=json.dumps(model))
    assert code == 423
    assert (cs3_root[1] / "theirs.txt").read_bytes() == b"mine"
    engine = await cm.get_engine()
    assert [e.state for e in await engine.entries() if e.path == cs3_path] == ["done"]  # nothing journaled


async def test_our_lock_from_before_a_restart_is_still_ours(
    jp_fetch: Any, cm: Any, emulator_thread: Any, make_cm: Any
) -> None:
    """Lock ids carry a prefix kept in the journal: after a restart the earlier process's lock is ours."""
    await put_text(jp_fetch, "doc.txt", "v1")
    await cm.get_path_map()
    prefix = cm.locks.prefix
    cs3_path = cm.path_map.to_cs3("doc.txt")
    await cm.shutdown()
    emulator_thread.storage.lock(cs3_path, app=cm.cs3.lock_holder, lock_id=f"{prefix}before", user="einstein")
    restarted = make_cm()
    await restarted.get_path_map()
    assert restarted.locks.prefix == prefix
    assert (await restarted.get("doc.txt", content=False))["writable"] is True


def _chunk_model(data: bytes, number: int) -> str:
    import base64

    content = base64.b64encode(data).decode()
    return json.dumps(
        {"type": "file", "format": "base64", "name": "big.bin", "chunk": number, "content": content}
    )


async def test_two_clients_uploading_one_path_at_once_do_not_mix(
    jp_fetch: Any, cm: Any, cs3_root: Any
) -> None:
    """Interleaved chunked uploads from two clients: each client's chunks are staged apart and the
    upload that completes last is stored whole."""
    a = [b"A" * 1000, b"a" * 1000, b"<A>"]
    b = [b"B" * 1000, b"b" * 1000, b"<B>"]

    async def send(client: str, data: bytes, number: int) -> int:
        headers = {"User-Agent": f"uploader-{client}"}
        return await status_of(
            jp_fetch,
            "api",
            "contents",
            "big.bin",
            method="PUT",
            body=_chunk_model(data, number),
            headers=headers,
        )

    for number, (pa, pb) in enumerate(zip(a, b, strict=True), start=1):
        last = number == len(a)
        assert await send("a", pa, -1 if last else number) in (200, 201)
        assert await send("b", pb, -1 if last else number) in (200, 201)
    await _settle(await cm.get_engine(), "big.bin")
    assert (cs3_root[1] / "big.bin").read_bytes() == b"".join(b)


async def test_two_uploads_from_one_client_at_once_do_not_mix(jp_fetch: Any, cm: Any, cs3_root: Any) -> None:
    """Same client, same path, interleaved: the second upload is refused (409) instead of mixed."""

    async def send(data: bytes, number: int) -> int:
        return await status_of(
            jp_fetch, "api", "contents", "big.bin", method="PUT", body=_chunk_model(data, number)
        )

    assert await send(b"A" * 1000, 1) in (200, 201)
    assert await send(b"B" * 1000, 1) == 409
    assert await send(b"a" * 1000, 2) in (200, 201)
    assert await send(b"<A>", -1) in (200, 201)
    await _settle(await cm.get_engine(), "big.bin")
    assert (cs3_root[1] / "big.bin").read_bytes() == b"A" * 1000 + b"a" * 1000 + b"<A>"


async def test_a_foreign_write_in_the_same_second_is_a_change(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """Storage behaviours row 8: EOS shows mtimes in whole seconds, so marie's write in the same
    second as einstein's save carries the same storage mtime (and here the same size). The etag
    decides: the next GET shows marie's text at a time JupyterLab sees as newer (> 500 ms), and
    einstein's next save from the stale editor does not replace it."""
    saved = await put_text(jp_fetch, "second.txt", "einstein")
    engine = await cm.get_engine()
    await engine.wait_idle(timeout=30)
    cs3_path = cm.path_map.to_cs3("second.txt")
    ours = emulator_thread.storage.resolve_path(cs3_path, None).disk.stat().st_mtime_ns
    same_second = ours // 1_000_000_000 + 0.999  # ours and marie's show one whole-second mtime
    emulator_thread.storage.external_write(cs3_path, b"marie's!", mtime=same_second)
    got = body(await jp_fetch("api", "contents", "second.txt"))
    assert got["content"] == "marie's!"
    assert (_time(got) - _time(saved)).total_seconds() > 0.5, (got["last_modified"], saved["last_modified"])


async def test_a_new_file_whose_name_someone_else_took_before_it_landed_is_a_conflict_copy(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    """The PUT of a new name is acknowledged once journaled; if someone else creates that name on the
    storage before the engine applies it, their file stays and ours lands beside it (it was
    overwritten: the engine's check before writing took a save without a base for "write anyway")."""
    engine = await cm.get_engine()
    assert await engine.wait_idle(timeout=30)
    cm.cs3.write_through_timeout = 0.0
    await engine.journal.set_control(paused=True)  # the create stays pending until the queue resumes
    engine.set_paused(True)
    try:
        assert (await put_text(jp_fetch, "taken.txt", "ours"))["path"] == "taken.txt"
        (cs3_root[1] / "taken.txt").write_bytes(b"marie's, made meanwhile")
    finally:
        await engine.journal.set_control(paused=False)
        engine.set_paused(False)
        engine.wake()
    entries = await _settle(engine, "taken.txt")
    assert entries[-1].state == "conflict"
    assert (cs3_root[1] / "taken.txt").read_bytes() == b"marie's, made meanwhile"
    assert _copies(cs3_root[1], "taken") == [b"ours"]
