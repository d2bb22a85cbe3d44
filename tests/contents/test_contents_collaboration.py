"""Real-time collaboration (jupyter-collaboration) on cs3sync, below the browser: a real Jupyter server with
jupyter_server_fileid and jupyter_server_ydoc loaded over the emulator.

- RTC's file ids are CS3 resource ids (``contents.fileids``): the session endpoint a browser asks names
  the resource, and a rename - through Jupyter or by someone else on the storage - keeps the id, so the
  room keeps its document.
- The room's file loader (jupyter_server_ydoc's ``FileLoader``, what every room reads and saves through)
  saves through our contents manager, so through the journal, and its out-of-band check (a strictly newer
  ``last_modified``) sees a change on the storage and never sees our own saves as one; a room save that
  meets someone else's change is merged by the engine and the merge reaches the room.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from contents_helpers import body
from jupyter_server_ydoc.loaders import FileLoader
from jupyter_server_ydoc.utils import OutOfBandChanges
from nbformat.v4 import new_code_cell
from notebooks import analysis, edited, set_source

from contents.fileids import CS3FileIdManager, decode
from cs3sync.cs3 import CS3Client
from cs3sync.cs3.types import FileId


@pytest.fixture
def stat_cache_ttl() -> float:
    return 2.0  # the default: repeated metadata calls within 2 s answer from the last Stat


@pytest.fixture
def cs3_settings(cs3_settings: dict, stat_cache_ttl: float) -> dict:
    cs3_settings["CS3Sync"]["stat_cache_ttl"] = stat_cache_ttl
    # Every look at a room's path also asks the storage where the resource is now (5 s in production).
    cs3_settings["CS3FileIdManager"] = {"follow_interval": 0.0}
    # No polling task: the tests drive the loader's check. The rooms' store and session file go beside
    # the journal by default (test_the_rooms_state_is_kept_beside_the_journal).
    cs3_settings["YDocExtension"] = {"file_poll_interval": 0.0}
    return cs3_settings


@pytest.fixture
def file_id_manager_class() -> str | None:
    return None  # the cs3sync extension chooses


@pytest.fixture
def jp_server_config(jp_server_config: Any, file_id_manager_class: str | None, tmp_path: Any) -> Any:
    jp_server_config.ServerApp.jpserver_extensions = {
        "contents": True,
        "jupyter_server_fileid": True,
        "jupyter_server_ydoc": True,
    }
    if file_id_manager_class is not None:
        jp_server_config.FileIdExtension.file_id_manager_class = file_id_manager_class
        jp_server_config.BaseFileIdManager.db_path = str(tmp_path / "file_ids.db")
    return jp_server_config


@pytest.fixture
def file_ids(jp_serverapp: Any, jp_asyncio_loop: Any) -> CS3FileIdManager:
    # What a real server does once its loop runs (pytest-jupyter's server does not): the extensions'
    # start hooks, where cs3sync gives the file id manager our contents manager.
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    manager = jp_serverapp.web_app.settings["file_id_manager"]
    assert isinstance(manager, CS3FileIdManager), type(manager)  # chosen by the cs3sync extension
    return manager


def notebook_model(nb: Any) -> str:
    return json.dumps({"type": "notebook", "content": nb})


async def session(jp_fetch: Any, path: str) -> str:
    """What JupyterLab's document provider asks before joining a room: the document's file id."""
    request = json.dumps({"format": "json", "type": "notebook"})
    answer = body(await jp_fetch("api", "collaboration", "session", path, method="PUT", body=request))
    return str(answer["fileId"])


async def on_storage(cs3_config: Callable[..., Any], emulator_thread: Any, cs3_path: str) -> FileId:
    """The resource id of a path, asked by another client (the CERNBox web, say)."""
    async with CS3Client(cs3_config(emulator_thread)) as other:
        return (await other.stat(cs3_path)).file_id


async def created(jp_fetch: Any, cm: Any, name: str, nb: Any) -> None:
    await jp_fetch("api", "contents", name, method="PUT", body=notebook_model(nb))
    await (await cm.get_engine()).wait_idle(timeout=30)
    await jp_fetch("api", "contents", name, params={"content": "0"})  # JupyterLab looks before it opens


async def test_the_file_id_of_a_room_is_the_resource_id_and_a_rename_in_jupyter_keeps_it(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_config: Any
) -> None:
    await created(jp_fetch, cm, "decay.ipynb", analysis())
    file_id = await session(jp_fetch, "decay.ipynb")
    resource = await on_storage(cs3_config, emulator_thread, cm.path_map.to_cs3("decay.ipynb"))
    assert decode(file_id) == resource

    await jp_fetch(
        "api", "contents", "decay.ipynb", method="PATCH", body=json.dumps({"path": "radium.ipynb"})
    )
    assert file_ids.get_path(file_id) == "radium.ipynb"
    assert await session(jp_fetch, "radium.ipynb") == file_id  # the same room
    assert file_ids.get_id("decay.ipynb") is None
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert await on_storage(cs3_config, emulator_thread, cm.path_map.to_cs3("radium.ipynb")) == resource


async def test_a_rename_on_the_storage_moves_the_room_along(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_config: Any
) -> None:
    await created(jp_fetch, cm, "decay.ipynb", analysis())
    file_id = await session(jp_fetch, "decay.ipynb")
    loader = FileLoader(file_id, file_ids, cm, poll_interval=None)
    renamed: list[str] = []

    async def on_change() -> None:
        pass

    loader.observe("room", on_change, lambda: renamed.append(loader.path))
    await loader.load_content("json", "notebook")

    async with CS3Client(cs3_config(emulator_thread)) as web:  # einstein renames it in the CERNBox web
        await web.move(cm.path_map.to_cs3("decay.ipynb"), cm.path_map.to_cs3("radium-2026.ipynb"))
    assert file_ids.get_path(file_id) == "decay.ipynb"  # asks the storage in the background
    await file_ids.settle()
    assert file_ids.get_path(file_id) == "radium-2026.ipynb"
    await loader.maybe_notify()  # the room's next look: its document now has the new path
    assert renamed == ["radium-2026.ipynb"]
    assert await session(jp_fetch, "radium-2026.ipynb") == file_id
    await loader.clean()


async def test_a_file_not_on_the_storage_yet_gets_its_resource_id_once_it_is(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_config: Any
) -> None:
    emu = emulator_thread
    emu.call(emu.faults.outage)
    try:  # created while the storage is away: journaled, no resource id yet
        await jp_fetch("api", "contents", "draft.ipynb", method="PUT", body=notebook_model(analysis()))
        file_id = await session(jp_fetch, "draft.ipynb")
        assert decode(file_id) is None
    finally:
        emu.call(emu.faults.restart)
    engine = await cm.get_engine()
    engine.wake()
    [entry_id] = [e.id for e in await engine.entries() if e.path.endswith("/draft.ipynb") and e.active]
    assert await engine.wait(entry_id, timeout=60)
    file_ids.get_path(file_id)
    await file_ids.settle()
    async with CS3Client(cs3_config(emu)) as web:
        await web.move(cm.path_map.to_cs3("draft.ipynb"), cm.path_map.to_cs3("final.ipynb"))
    file_ids.get_path(file_id)
    await file_ids.settle()
    assert file_ids.get_path(file_id) == "final.ipynb"


async def test_the_rooms_saves_go_through_the_journal_and_are_never_taken_for_a_foreign_change(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, cs3_root: Any
) -> None:
    base = analysis()
    await created(jp_fetch, cm, "decay.ipynb", base)
    file_id = await session(jp_fetch, "decay.ipynb")
    loader = FileLoader(file_id, file_ids, cm, poll_interval=None)
    notified: list[bool] = []

    async def on_change() -> None:
        notified.append(True)

    loader.observe("room", on_change)
    await loader.load_content("json", "notebook")
    engine = await cm.get_engine()
    before = {e.id for e in await engine.entries()}
    for n in range(3):  # the room saves a second after each burst of typing; each save lands meanwhile
        nb = edited(base, lambda nb, n=n: nb.cells.append(new_code_cell(f"step({n})")))
        saved = await loader.maybe_save_content({"format": "json", "type": "notebook", "content": nb})
        assert saved is not None
        assert await engine.wait_idle(timeout=30)
        await loader.maybe_notify()  # the room's poll: our own landed save is no change
    assert notified == []
    saves = [e for e in await engine.entries() if e.id not in before and e.path.endswith("/decay.ipynb")]
    assert [e.op for e in saves] == ["save"] * 3
    stored = json.loads((cs3_root[1] / "decay.ipynb").read_text())
    assert "".join(stored["cells"][-1]["source"]) == "step(2)"
    await loader.clean()


@pytest.mark.parametrize("stat_cache_ttl", [0.0])  # the room's next poll is after the cached Stat expired
async def test_a_change_on_the_storage_reaches_the_room_and_is_never_overwritten(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_root: Any
) -> None:
    base = analysis()
    await created(jp_fetch, cm, "decay.ipynb", base)
    loader = FileLoader(await session(jp_fetch, "decay.ipynb"), file_ids, cm, poll_interval=None)
    notified: list[bool] = []

    async def on_change() -> None:
        notified.append(True)

    loader.observe("room", on_change)
    await loader.load_content("json", "notebook")
    theirs = edited(base, set_source(0, "# Half-lives (marie's correction)"))
    emulator_thread.storage.external_write(cm.path_map.to_cs3("decay.ipynb"), json.dumps(theirs).encode())
    await loader.maybe_notify()  # the room's poll sees the newer version and reloads it
    assert notified == [True]
    model = await loader.load_content("json", "notebook")
    assert model["content"]["cells"][0]["source"] == "# Half-lives (marie's correction)"

    # Marie changes it again; the room's next save checks first, sees her change and reloads it.
    again = edited(theirs, set_source(1, "import math"))
    emulator_thread.storage.external_write(cm.path_map.to_cs3("decay.ipynb"), json.dumps(again).encode())
    ours = edited(theirs, lambda nb: nb.cells.append(new_code_cell("print(lam)")))
    with pytest.raises(OutOfBandChanges):
        await loader.maybe_save_content({"format": "json", "type": "notebook", "content": ours})
    assert json.loads((cs3_root[1] / "decay.ipynb").read_text()) == json.loads(json.dumps(again))
    await loader.clean()


@pytest.mark.parametrize("stat_cache_ttl", [600.0])  # the room has not noticed Marie's change yet
async def test_a_room_save_made_before_the_room_noticed_a_change_is_merged_with_it(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_root: Any
) -> None:
    base = analysis()
    await created(jp_fetch, cm, "decay.ipynb", base)
    loader = FileLoader(await session(jp_fetch, "decay.ipynb"), file_ids, cm, poll_interval=None)
    notified: list[bool] = []

    async def on_change() -> None:
        notified.append(True)

    loader.observe("room", on_change)
    await loader.load_content("json", "notebook")
    theirs = edited(base, set_source(0, "# Half-lives (marie's correction)"))
    emulator_thread.storage.external_write(cm.path_map.to_cs3("decay.ipynb"), json.dumps(theirs).encode())
    ours = edited(base, lambda nb: nb.cells.append(new_code_cell("print(lam)")))
    # The save is judged by the engine against the version the room loaded: merged, not overwritten.
    assert await loader.maybe_save_content({"format": "json", "type": "notebook", "content": ours})
    assert await (await cm.get_engine()).wait_idle(timeout=30)
    stored = json.loads((cs3_root[1] / "decay.ipynb").read_text())
    assert "".join(stored["cells"][0]["source"]) == "# Half-lives (marie's correction)"
    assert "".join(stored["cells"][-1]["source"]) == "print(lam)"
    await loader.maybe_notify()  # the merge is newer than the room's save: the room reloads it
    assert notified == [True]
    model = await loader.load_content("json", "notebook")
    assert model["content"]["cells"][0]["source"] == "# Half-lives (marie's correction)"
    await loader.clean()


async def test_a_room_save_that_meets_a_change_on_the_storage_is_merged_and_the_room_gets_the_merge(
    jp_fetch: Any, cm: Any, file_ids: CS3FileIdManager, emulator_thread: Any, cs3_root: Any
) -> None:
    emu = emulator_thread
    base = analysis()
    await created(jp_fetch, cm, "train.ipynb", base)
    loader = FileLoader(await session(jp_fetch, "train.ipynb"), file_ids, cm, poll_interval=None)
    notified: list[bool] = []

    async def on_change() -> None:
        notified.append(True)

    loader.observe("room", on_change)
    await loader.load_content("json", "notebook")
    emu.call(emu.faults.outage)
    try:  # the room saves on the train (journaled); marie corrects the title on CERNBox meanwhile
        ours = edited(base, lambda nb: nb.cells.append(new_code_cell("print(lam)")))
        assert await loader.maybe_save_content({"format": "json", "type": "notebook", "content": ours})
        theirs = edited(base, set_source(0, "# Half-lives (corrected)"))
        emu.storage.external_write(cm.path_map.to_cs3("train.ipynb"), json.dumps(theirs).encode())
    finally:
        emu.call(emu.faults.restart)
    engine = await cm.get_engine()
    engine.wake()
    [entry_id] = [e.id for e in await engine.entries() if e.path.endswith("/train.ipynb") and e.active]
    assert await engine.wait(entry_id, timeout=60)

    stored = json.loads((cs3_root[1] / "train.ipynb").read_text())
    assert "".join(stored["cells"][0]["source"]) == "# Half-lives (corrected)"
    assert "".join(stored["cells"][-1]["source"]) == "print(lam)"
    await loader.maybe_notify()  # the merge is newer than the room's own save: the room reloads it
    assert notified == [True]
    model = await loader.load_content("json", "notebook")
    assert model["content"]["cells"][0]["source"] == "# Half-lives (corrected)"
    assert model["content"]["cells"][-1]["source"] == "print(lam)"
    await loader.clean()


@pytest.mark.parametrize("profile", ["cernbox"])
@pytest.mark.parametrize("file_id_manager_class", ["jupyter_server_fileid.manager.ArbitraryFileIdManager"])
def test_a_file_id_manager_chosen_in_the_config_is_kept(jp_serverapp: Any) -> None:
    from jupyter_server_fileid.manager import ArbitraryFileIdManager

    assert isinstance(jp_serverapp.web_app.settings["file_id_manager"], ArbitraryFileIdManager)


@pytest.mark.parametrize("profile", ["cernbox"])
def test_the_rooms_state_is_kept_beside_the_journal(jp_serverapp: Any, tmp_path: Any) -> None:
    """Not jupyter-collaboration's defaults (the working folder, root_dir/.jupyter: the EOS mount in SWAN)."""
    ydoc = jp_serverapp.extension_manager.extension_points["jupyter_server_ydoc"].app
    place = tmp_path / "journal" / "collaboration"
    assert ydoc.config.SQLiteYStore.db_path == str(place / "ystore.db")
    assert jp_serverapp.web_app.settings["collaborative_session_store_path"] == str(place / "sessions.json")
    assert place.stat().st_mode & 0o777 == 0o700
