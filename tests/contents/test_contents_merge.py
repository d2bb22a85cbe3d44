"""Saves that meet someone else's change, through Jupyter's REST API: merged where nothing overlaps
(notebooks by cell, text by line), a conflicted copy where it does or for binary files; the merge is
visible to the editor (GET) and listed by the journal endpoint the Sync panel polls."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from contents_helpers import body, status_of
from nbformat.v4 import new_code_cell, new_markdown_cell
from notebooks import analysis, edited, set_source, sources
from tornado.httpclient import HTTPClientError


@pytest.fixture
def merge_setting() -> bool:
    return True


@pytest.fixture
def cs3_settings(cs3_settings: dict, merge_setting: bool) -> dict:
    cs3_settings["CS3Sync"]["merge_conflicts"] = merge_setting
    return cs3_settings


def model(nb: Any) -> str:
    return json.dumps({"type": "notebook", "content": nb})


def stored(cs3_root: Any, name: str) -> Any:
    return json.loads((cs3_root[1] / name).read_text())


def copies(cs3_root: Any, stem: str) -> list[bytes]:
    return [p.read_bytes() for p in cs3_root[1].iterdir() if p.name.startswith(f"{stem} (conflicted copy")]


async def opened(jp_fetch: Any, cm: Any, name: str, nb: Any) -> dict[str, Any]:
    """einstein creates the notebook and has it open: what the editor holds."""
    await jp_fetch("api", "contents", name, method="PUT", body=model(nb))
    await (await cm.get_engine()).wait_idle(timeout=30)
    return body(await jp_fetch("api", "contents", name, params={"content": "0", "hash": "1"}))


def marie_writes(emulator_thread: Any, cm: Any, name: str, data: bytes) -> None:
    emulator_thread.storage.external_write(cm.path_map.to_cs3(name), data)


async def journal(jp_fetch: Any) -> dict[str, Any]:
    return body(await jp_fetch("api", "cs3sync", "journal"))


async def test_notebook_edits_in_different_cells_merge_and_the_editor_sees_the_merge(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    base = analysis()
    before = await opened(jp_fetch, cm, "decay.ipynb", base)
    theirs = edited(base, set_source(0, "# Half-lives\nMeasurements of the radium samples (corrected)."))
    marie_writes(emulator_thread, cm, "decay.ipynb", json.dumps(theirs).encode())
    ours = edited(
        base, lambda nb: nb.cells.extend([new_markdown_cell("## Conclusion"), new_code_cell("lam * 2")])
    )
    saved = body(await jp_fetch("api", "contents", "decay.ipynb", method="PUT", body=model(ours)))
    await (await cm.get_engine()).wait_idle(timeout=30)

    on_storage = stored(cs3_root, "decay.ipynb")
    assert "".join(on_storage["cells"][0]["source"]).endswith("(corrected).")
    assert ["".join(c["source"]) for c in on_storage["cells"][-2:]] == ["## Conclusion", "lam * 2"]
    assert copies(cs3_root, "decay") == []
    # The editor's next look: the merged content, with a last_modified newer than its own save, so
    # JupyterLab knows the file changed (the extension reloads it; otherwise Lab asks on the next save).
    got = body(await jp_fetch("api", "contents", "decay.ipynb"))
    assert sources(_nb(got["content"]))[-2:] == ["## Conclusion", "lam * 2"]
    assert got["content"]["cells"][0]["source"].endswith("(corrected).")
    assert got["last_modified"] > saved["last_modified"] >= before["last_modified"]
    # The Sync panel's data: the merged save, in the user's terms.
    merged = (await journal(jp_fetch))["merged"]
    assert [(m["api_path"], m["merge"]["message"]) for m in merged] == [
        ("decay.ipynb", "merged with a change on the storage, 1 cell")
    ]


def _nb(content: dict[str, Any]) -> Any:
    import nbformat

    return nbformat.from_dict(content)


async def test_the_same_cell_edited_on_both_sides_keeps_the_conflict_copy(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    base = analysis()
    await opened(jp_fetch, cm, "same.ipynb", base)
    theirs = json.dumps(edited(base, set_source(3, "## Decay\nλ = ln 2 / T½."))).encode()
    marie_writes(emulator_thread, cm, "same.ipynb", theirs)
    ours = edited(base, set_source(3, "## Decay\nThe decay constant is ln 2 over the half-life."))
    code = await status_of(jp_fetch, "api", "contents", "same.ipynb", method="PUT", body=model(ours))
    assert code in (200, 409)
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "same.ipynb").read_bytes() == theirs  # hers, untouched
    [copy] = copies(cs3_root, "same")
    assert "".join(json.loads(copy)["cells"][3]["source"]).startswith("## Decay\nThe decay constant")
    [entry] = [e for e in (await journal(jp_fetch))["entries"] if e["state"] == "conflict"]
    assert entry["merge"]["collisions"] == [4]
    assert "both changed cell 4" in entry["last_error"]
    assert (await journal(jp_fetch))["merged"] == []
    # "Compare": nbdime's diff from her version to the conflicted copy, in nbdime's API shape.
    compared = body(await jp_fetch("api", "cs3sync", "journal", str(entry["id"]), "compare"))
    assert (
        compared["api_path"] == "same.ipynb" and compared["conflict_api_path"] == entry["conflict_api_path"]
    )
    assert compared["base"]["cells"][3]["source"] == "## Decay\nλ = ln 2 / T½."
    [cells] = [d for d in compared["diff"] if d["key"] == "cells"]
    assert [d["key"] for d in cells["diff"]] == [3]  # only the colliding cell differs
    assert await status_of(jp_fetch, "api", "cs3sync", "journal", "99999", "compare") == 404


async def test_text_edits_on_different_lines_merge(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    text = "name,half_life\nradium,1600\npolonium,138\n"
    await jp_fetch(
        "api", "contents", "data.csv", method="PUT",
        body=json.dumps({"type": "file", "format": "text", "content": text}),
    )  # fmt: skip
    await (await cm.get_engine()).wait_idle(timeout=30)
    await jp_fetch("api", "contents", "data.csv", params={"content": "0"})
    marie_writes(emulator_thread, cm, "data.csv", (text + "thorium,1.4e10\n").encode())
    mine = text.replace("1600", "1602")
    await jp_fetch(
        "api", "contents", "data.csv", method="PUT",
        body=json.dumps({"type": "file", "format": "text", "content": mine}),
    )  # fmt: skip
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (
        cs3_root[1] / "data.csv"
    ).read_text() == "name,half_life\nradium,1602\npolonium,138\nthorium,1.4e10\n"
    assert copies(cs3_root, "data") == []
    [m] = (await journal(jp_fetch))["merged"]
    assert m["merge"]["message"] == "merged with a change on the storage, 1 line"


async def test_binary_files_still_conflict(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    png = b"\x89PNG\r\n\x1a\n\0\0" + bytes(range(200))

    def upload(data: bytes) -> str:
        return json.dumps({"type": "file", "format": "base64", "content": base64.b64encode(data).decode()})

    await jp_fetch("api", "contents", "plot.png", method="PUT", body=upload(png))
    await (await cm.get_engine()).wait_idle(timeout=30)
    await jp_fetch("api", "contents", "plot.png", params={"content": "0"})
    marie_writes(emulator_thread, cm, "plot.png", png + b"\x01")
    code = await status_of(jp_fetch, "api", "contents", "plot.png", method="PUT", body=upload(png + b"\x02"))
    assert code in (200, 409)
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "plot.png").read_bytes() == png + b"\x01"
    assert copies(cs3_root, "plot") == [png + b"\x02"]
    [entry] = [e for e in (await journal(jp_fetch))["entries"] if e["state"] == "conflict"]
    assert "binary files cannot be merged" in entry["last_error"]
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "cs3sync", "journal", str(entry["id"]), "compare")
    assert (
        refused.value.code == 400 and "plot.png is not a notebook" in body(refused.value.response)["message"]
    )


async def test_an_offline_edit_is_merged_after_reconnect(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    emu = emulator_thread
    base = analysis()
    await opened(jp_fetch, cm, "train.ipynb", base)
    emu.call(emu.faults.outage)
    try:
        ours = edited(base, lambda nb: nb.cells.append(new_code_cell("print(lam)")))
        await jp_fetch("api", "contents", "train.ipynb", method="PUT", body=model(ours))  # journaled
        theirs = edited(base, set_source(0, "# Half-lives (corrected)"))
        marie_writes(emu, cm, "train.ipynb", json.dumps(theirs).encode())
    finally:
        emu.call(emu.faults.restart)
    engine = await cm.get_engine()
    engine.wake()
    [entry_id] = [e.id for e in await engine.entries() if e.path.endswith("/train.ipynb") and e.active]
    assert await engine.wait(entry_id, timeout=60)
    on_storage = stored(cs3_root, "train.ipynb")
    assert "".join(on_storage["cells"][0]["source"]) == "# Half-lives (corrected)"
    assert "".join(on_storage["cells"][-1]["source"]) == "print(lam)"
    assert copies(cs3_root, "train") == []


@pytest.mark.parametrize("merge_setting", [False])
async def test_c_cs3sync_merge_conflicts_false_always_makes_a_conflict_copy(
    jp_fetch: Any, cm: Any, emulator_thread: Any, cs3_root: Any
) -> None:
    base = analysis()
    await opened(jp_fetch, cm, "off.ipynb", base)
    theirs = json.dumps(edited(base, set_source(0, "# Half-lives (corrected)"))).encode()
    marie_writes(emulator_thread, cm, "off.ipynb", theirs)
    ours = edited(base, lambda nb: nb.cells.append(new_code_cell("print(lam)")))
    assert await status_of(jp_fetch, "api", "contents", "off.ipynb", method="PUT", body=model(ours)) in (
        200,
        409,
    )
    await (await cm.get_engine()).wait_idle(timeout=30)
    assert (cs3_root[1] / "off.ipynb").read_bytes() == theirs
    assert len(copies(cs3_root, "off")) == 1
