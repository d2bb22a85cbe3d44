"""A save's sliced check_and_sign + nbformat.writes (contents/notebook_slices.py) against the whole-notebook
path it replaces: the same bytes, the same trust verdict, the same signature, the request's model left as
it was, and never a copy of more than one slice of cells."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
import weakref
from typing import Any

import nbformat
import nbformat.v4
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.sign import NotebookNotary

from contents import notebook_slices

NOTARY = NotebookNotary(db_file=":memory:", secret=b"slices-test-secret")

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
multiline = st.one_of(text, st.lists(text, max_size=3))
mimebundle = st.fixed_dictionaries(
    {"text/plain": multiline}, optional={"text/html": multiline, "application/json": st.just({"a": [1, 2]})}
)
outputs = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"output_type": st.just("stream"), "name": st.just("stdout"), "text": multiline}
        ),
        st.fixed_dictionaries(
            {"output_type": st.just("display_data"), "data": mimebundle, "metadata": st.just({})}
        ),
        st.fixed_dictionaries(
            {
                "output_type": st.just("execute_result"),
                "data": mimebundle,
                "metadata": st.just({}),
                "execution_count": st.integers(1, 99),
            }
        ),
        st.fixed_dictionaries(
            {
                "output_type": st.just("error"),
                "ename": text,
                "evalue": text,
                "traceback": st.lists(text, max_size=2),
            }
        ),
    ),
    max_size=3,
)
code_metadata = st.fixed_dictionaries(
    {},
    optional={
        "trusted": st.booleans(),
        "tags": st.lists(st.sampled_from(["a", "é"]), unique=True),
        "collapsed": st.booleans(),
    },
)
cells = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "cell_type": st.just("code"),
                "execution_count": st.one_of(st.none(), st.integers(1, 99)),
                "metadata": code_metadata,
                "outputs": outputs,
                "source": multiline,
            }
        ),
        st.fixed_dictionaries(
            {"cell_type": st.just("markdown"), "metadata": st.just({}), "source": multiline},
            optional={"attachments": st.just({"a.png": {"image/png": "iVBORw0KGgo="}})},
        ),
        st.fixed_dictionaries({"cell_type": st.just("raw"), "metadata": st.just({}), "source": multiline}),
    ),
    max_size=9,
)
top_metadata = st.fixed_dictionaries(
    {},
    optional={
        "kernelspec": st.just({"name": "python3", "display_name": "Python 3", "language": "python"}),
        "signature": st.just("sha256:" + "0" * 64),
        "orig_nbformat": st.just(3),
        "title": text,
    },
)


@st.composite
def notebooks(draw: st.DrawFn) -> dict[str, Any]:
    minor = draw(st.sampled_from([4, 5]))
    drawn = draw(cells)
    if minor >= 5:  # cell ids from 4.5 on, unique
        for i, cell in enumerate(drawn):
            cell["id"] = f"cell-{i}"
    return {"cells": drawn, "metadata": draw(top_metadata), "nbformat": 4, "nbformat_minor": minor}


def whole_notebook(content: dict[str, Any]) -> tuple[bytes, bool, str | None]:
    """What the save did before: copy, check_and_sign, nbformat.writes (contents/notebooks.py)."""
    nb = nbformat.from_dict(copy.deepcopy(content))
    trusted = bool(NOTARY.check_cells(nb))
    signature = NOTARY.compute_signature(nb) if trusted else None
    data = nbformat.writes(nb, version=nbformat.NO_CONVERT).encode("utf-8")
    return data, trusted, signature


@settings(max_examples=300, deadline=None)
@given(content=notebooks(), slice_cells=st.integers(1, 4))
def test_sliced_write_is_the_whole_notebook_write(content: dict[str, Any], slice_cells: int) -> None:
    before = copy.deepcopy(content)
    sliced = notebook_slices.write_v4(content, NOTARY, slice_cells=slice_cells)
    assert content == before, "the request's model was altered"
    assert sliced is not None, "a valid v4 notebook takes the sliced path"
    assert sliced == whole_notebook(content)


def test_a_big_notebook_is_never_copied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on the whole-notebook path: from_dict and the writer's deep copy took all 1,000 cells."""
    content = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {"trusted": True},
                "outputs": [],
                "source": f"x = {i}\n",
            }
            for i in range(1000)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    largest: list[int] = []
    real_from_dict, real_writes_json = nbformat.from_dict, nbformat.v4.writes_json

    def from_dict(d: Any) -> Any:
        largest.append(len(d.get("cells", ())) if isinstance(d, dict) else 0)
        return real_from_dict(d)

    def writes_json(nb: Any, **kwargs: Any) -> str:
        largest.append(len(nb["cells"]))
        return real_writes_json(nb, **kwargs)

    monkeypatch.setattr(nbformat, "from_dict", from_dict)
    monkeypatch.setattr(nbformat.v4, "writes_json", writes_json)
    from contents.notebooks import NotebookCodec

    codec = NotebookCodec(NOTARY, logging.getLogger("test"))
    try:
        data, validation_error, trusted, signature = codec._serialize(content)
    finally:
        codec.close()
    assert largest and max(largest) <= notebook_slices.SLICE_CELLS, max(largest)
    monkeypatch.undo()
    assert (data, trusted, signature) == whole_notebook(content) and validation_error == {}


@pytest.mark.parametrize(
    "change",
    [
        lambda nb: nb.update(nbformat=3),
        lambda nb: nb.update(aaa=1),  # a key sorting before "cells" (invalid anyway)
        lambda nb: nb["cells"][0]["metadata"].update(trusted="yes"),
        lambda nb: nb["cells"][1].update(id=nb["cells"][0]["id"]),  # validation would renumber it
        lambda nb: nb["cells"][1].pop("id"),  # ... or number it
        lambda nb: nb["cells"][0].pop("outputs"),  # invalid: nbformat reports it
    ],
)
def test_what_the_sliced_path_cannot_reproduce_goes_the_whole_way(change: Any) -> None:
    content = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": "",
            }
            for i in range(3)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    change(content)
    before = copy.deepcopy(content)
    assert notebook_slices.write_v4(content, NOTARY) is None
    assert content == before


def renderings(content: dict[str, Any]) -> list[str]:
    """The notebook as nbformat writes it, and as other writers may: compact, keys in another order."""
    written = nbformat.writes(nbformat.from_dict(copy.deepcopy(content)))
    reordered = dict(reversed(list(content.items())))
    return [written, json.dumps(content), json.dumps(reordered, indent=3) + "\n\t "]


@settings(max_examples=200, deadline=None)
@given(content=notebooks(), slice_cells=st.integers(1, 4))
def test_sliced_read_is_nbformat_reads(content: dict[str, Any], slice_cells: int) -> None:
    for text in renderings(content):
        got = notebook_slices.read_v4(text, slice_cells=slice_cells)
        assert got is not None, "a well-formed v4 notebook takes the sliced path"
        nbformat.validate(got)  # what the caller does (nbformat.reads validates what it read)
        expected = nbformat.reads(text, as_version=4)
        assert json.dumps(got) == json.dumps(expected), "the same content, keys in the same order"
        assert isinstance(got, nbformat.NotebookNode) and all(
            isinstance(cell, nbformat.NotebookNode) for cell in got.cells
        )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5} x',  # extra data
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5',  # cut short
        '{"cells": [{"cell_type": "raw", "metadata": {}, "source": ""},], "nbformat": 4}',  # trailing comma
        '{"cells": [1], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',  # a cell that is no object
        '{"cells": 1, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        '{"cells": [], "metadata": {}, "nbformat": 4.0, "nbformat_minor": 5}',
        '{"worksheets": [], "metadata": {}, "nbformat": 3, "nbformat_minor": 0}',
        '{"cells": [], "metadata": {}, "nbformat_minor": 5}',  # no version: nbformat takes it for v1
    ],
)
def test_what_the_sliced_reader_does_not_read_is_left_to_nbformat(text: str) -> None:
    assert notebook_slices.read_v4(text) is None


def test_a_big_notebook_is_never_parsed_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on nbformat.reads: one json.loads of the whole file (one C call holding the GIL throughout)."""
    content = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": "x",
            }
            for i in range(1000)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    data = nbformat.writes(nbformat.from_dict(content)).encode()
    parsed: list[int] = []
    real_loads, real_raw_decode = json.loads, json.JSONDecoder.raw_decode

    def loads(s: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(len(s))
        return real_loads(s, *args, **kwargs)

    def raw_decode(self: json.JSONDecoder, s: str, idx: int = 0) -> Any:
        value, end = real_raw_decode(self, s, idx)
        parsed.append(end - idx)
        return value, end

    monkeypatch.setattr(json, "loads", loads)
    monkeypatch.setattr(json.JSONDecoder, "raw_decode", raw_decode)
    from contents.notebooks import NotebookCodec

    codec = NotebookCodec(NOTARY, logging.getLogger("test"))
    try:
        nb, validation_error, trusted = codec._read(data, "big.ipynb")
    finally:
        codec.close()
    assert parsed and max(parsed) < len(data) / 100, max(parsed)
    monkeypatch.undo()
    expected = nbformat.reads(data.decode(), as_version=4)
    NOTARY.mark_cells(expected, trusted)
    assert json.dumps(nb) == json.dumps(expected) and validation_error == {}


async def test_a_big_notebook_read_is_freed_off_the_thread_that_drops_it() -> None:
    """Fails without NotebookCodec._free_here_later: the thread that drops the model (the loop's, in
    jupyter_server's handler) freed all 1,000 cells in one go."""
    from contents.notebooks import NotebookCodec

    content = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": "x",
            }
            for i in range(1000)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    data = nbformat.writes(nbformat.from_dict(content)).encode()
    codec = NotebookCodec(NOTARY, logging.getLogger("test"))
    try:
        nb, _, _ = await codec.read(data, "big.ipynb")
        await codec._run(lambda: None)  # the worker has let go of the read's work item and its result
        freed: list[int] = []
        all_freed = threading.Event()

        def on_free() -> None:
            freed.append(threading.get_ident())
            if len(freed) == 19:  # all but the one kept below
                all_freed.set()

        for i in range(0, 1000, 50):
            weakref.finalize(nb.cells[i], on_free)
        kept = nb.cells[500]  # someone else's reference to one cell
        del nb  # the model is dropped on this thread
        assert await asyncio.to_thread(all_freed.wait, 30)
    finally:
        codec.close()
    assert len(freed) == 19 and threading.get_ident() not in freed, "freed by the thread that dropped it"
    assert kept["source"] == "x" and kept["id"] == "c500", "a cell someone holds is left alone"
