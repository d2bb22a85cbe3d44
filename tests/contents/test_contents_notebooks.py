"""Notebooks through REST: parsed, validated and written in a worker thread (contents/notebooks.py), signed
and trust-marked by Jupyter's own notary as before."""

from __future__ import annotations

import json
import threading
from typing import Any

import nbformat
import nbformat.sign
import nbformat.v4
from contents_helpers import body


def _notebook(cells: int = 3) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"print({i})") for i in range(cells)]
    for i, cell in enumerate(nb.cells):
        cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": f"<b>{i}</b>"})]
    return json.loads(nbformat.writes(nb))


async def _put(jp_fetch: Any, path: str, nb: dict[str, Any]) -> dict[str, Any]:
    model = {"type": "notebook", "format": "json", "content": nb}
    return body(await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model)))


async def test_saved_notebook_is_signed_for_jupyters_own_notary(jp_fetch: Any, cm: Any) -> None:
    nb = _notebook()
    for cell in nb["cells"]:
        cell["metadata"]["trusted"] = True  # what JupyterLab sends for outputs the user produced
    await _put(jp_fetch, "signed.ipynb", nb)
    got = body(await jp_fetch("api", "contents", "signed.ipynb"))
    assert all(cell["metadata"].get("trusted") for cell in got["content"]["cells"]), "our own save is trusted"
    for cell in got["content"]["cells"]:
        del cell["metadata"]["trusted"]  # added by the read (mark_cells), not part of what was signed
    assert cm.notary.check_signature(nbformat.from_dict(got["content"])), "the server's notary sees it too"


async def test_untrusted_outputs_stay_untrusted(jp_fetch: Any, cm: Any) -> None:
    nb = _notebook()
    content = nbformat.writes(nbformat.from_dict(nb)).encode()
    # Written by someone else (not signed here): its HTML outputs must not be trusted.
    engine = await cm.get_engine()
    await _put(jp_fetch, "theirs.ipynb", {**nb, "cells": []})
    cs3_path = (await cm.locate("theirs.ipynb"))[1]
    client = await cm.get_client()
    await client.upload(cs3_path, content)
    cm.invalidate(cs3_path)
    assert await engine.wait_idle(timeout=30)
    got = body(await jp_fetch("api", "contents", "theirs.ipynb"))
    assert len(got["content"]["cells"]) == 3
    assert not any(cell["metadata"].get("trusted") for cell in got["content"]["cells"])


async def test_nbformat_and_hashing_run_off_the_loop(jp_fetch: Any, cm: Any, monkeypatch: Any) -> None:
    """nbformat's parsing and writing and the notary's hashing (seconds for a 50,000-cell notebook) never
    run on the loop's thread, whole or a slice of cells at a time (contents/notebook_slices.py)."""
    loop_thread = threading.get_ident()
    nb = _notebook(200)
    seen: dict[str, set[int]] = {"to_notebook_json": set(), "writes_json": set(), "yield_everything": set()}
    modules = {"to_notebook_json": nbformat.v4, "writes_json": nbformat.v4, "yield_everything": nbformat.sign}
    real = {name: getattr(modules[name], name) for name in seen}

    def spy(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen[name].add(threading.get_ident())
            return real[name](*args, **kwargs)

        return call

    # nbformat's v4 reader and writer and the notary's hashing: whole notebooks and slices go through them.
    for name in seen:
        monkeypatch.setattr(modules[name], name, spy(name))
    await _put(jp_fetch, "big.ipynb", nb)
    assert seen["writes_json"], seen
    got = body(await jp_fetch("api", "contents", "big.ipynb"))
    assert len(got["content"]["cells"]) == 200
    assert all(seen.values()), seen
    used = set().union(*seen.values())
    assert loop_thread not in used, f"nbformat or the notary's hashing ran on the event loop's thread: {seen}"


async def test_signature_store_runs_off_the_loop(jp_fetch: Any, cm: Any, monkeypatch: Any) -> None:
    """The signature store commits (SQLite, with fsyncs) on every save of a trusted notebook: never on the
    loop's thread, for saves, reads and "Trust" alike; what it records is what Jupyter's notary reads."""
    from nbformat.sign import MemorySignatureStore, SQLiteSignatureStore

    loop_thread = threading.get_ident()
    used: set[int] = set()
    for store_class in (SQLiteSignatureStore, MemorySignatureStore):  # the tests' notary keeps it in memory
        for name in ("store_signature", "check_signature"):
            real = getattr(store_class, name)

            def spy(self: Any, *args: Any, _real: Any = real) -> Any:
                used.add(threading.get_ident())
                return _real(self, *args)

            monkeypatch.setattr(store_class, name, spy)
    nb = _notebook()
    await _put(jp_fetch, "store.ipynb", nb)  # untrusted outputs: not signed by the save
    got = body(await jp_fetch("api", "contents", "store.ipynb"))
    assert not any(cell["metadata"].get("trusted") for cell in got["content"]["cells"])
    await jp_fetch("api", "contents", "store.ipynb", "trust", method="POST", body="")
    got = body(await jp_fetch("api", "contents", "store.ipynb"))
    assert all(cell["metadata"].get("trusted") for cell in got["content"]["cells"]), "trusted after Trust"
    for cell in got["content"]["cells"]:
        del cell["metadata"]["trusted"]
    await _put(jp_fetch, "store.ipynb", got["content"])  # saved again: signed again
    assert used and loop_thread not in used, "the signature store ran on the event loop's thread"
    assert cm.notary.check_signature(nbformat.from_dict(got["content"])), "the server's notary sees it too"
