"""A save's ``check_and_sign`` and ``nbformat.writes`` of a v4 notebook, and a read's ``nbformat.reads``,
a slice of cells at a time.

The save path used to copy the model's content into a ``NotebookNode`` (``nbformat.from_dict``, so Jupyter's
trust checks do not alter the request's model) and ``nbformat.writes`` deep-copied that copy again before
encoding it. For a 50,000-cell notebook those are two more object graphs of ~150,000 containers each, on
top of the one jupyter_server parsed from the request, and growing the heap that much makes CPython run
full garbage collections of the whole server's heap, each holding the GIL (so the event loop) for 100 ms
and more on a 2-core machine: three of them in the worker thread per such save, measured with the
benchmark's loop-lag extension. Here the cells are copied, checked, hashed and encoded `SLICE_CELLS` at a
time and each slice's copies are dropped before the next, so nothing notebook-sized is built (one full
collection is left in that save: the one the request's own graph makes due). The only whole-notebook steps
left are nbformat's validation (Python, which lets the loop run) and joining the bytes.

The result is the same as the whole-notebook path, byte for byte (tests/contents/test_notebook_slices.py
holds them equal on generated notebooks): every slice goes through nbformat's own writer
(``nbformat.v4.writes_json``: deep copy, ``split_lines``, ``strip_transient``, ``json.dumps`` with indent 1
and sorted keys) inside a notebook of the same nesting, and the signature feeds the same HMAC the same bytes
in the same order as ``NotebookNotary.compute_signature`` (``yield_everything`` over the sorted keys, the
stored signature left out). Notebooks this cannot reproduce exactly return None, and the caller takes the
whole-notebook path: other versions than 4, top-level keys sorting before "cells" (invalid anyway), cells
that are not objects, a "trusted" mark that is not a boolean, and any notebook that fails validation (so
the error, which quotes the offending part, is the one nbformat reports on the checked copy).

A read parsed the whole file with one ``json.loads``: a single C call that holds the GIL for the whole
parse and for every garbage collection its allocations set off inside it (200-650 ms for the 50,000-cell
notebook under load), then converted that graph into a second one (``from_dict``). `read_v4` walks the
top-level object itself and parses the cells one ``raw_decode`` each (the same C scanner ``json.loads``
uses, so the same values, errors aside), converting `SLICE_CELLS` at a time with nbformat's own v4 reader
(``to_notebook``: ``from_dict``, ``rejoin_lines``, ``strip_transient``): the loop gets the GIL between
cells, and only one graph of the notebook is built. Anything but a well-formed v4 notebook returns None
and the caller reads it with ``nbformat.reads``, which reports what is wrong as it always has.
"""

from __future__ import annotations

import json
import re
from hmac import HMAC
from typing import Any

import nbformat
import nbformat.sign
import nbformat.v4
from nbformat.sign import NotebookNotary

# Cells copied, checked, hashed and encoded (or parsed and converted) at a time. What of a slice is alive
# when a young collection runs is promoted towards the old generation, and enough of that sets off a full
# collection: for 50,000 cells, 64 at a time set off 0-1 in a save and 2-3 in a read, 256 set off 2-3 and
# 4-5 (counted in-process, the startup objects frozen as in the server).
SLICE_CELLS = 64
_CELLS_OPEN = '{\n "cells": [\n'  # how nbformat's writer starts a notebook whose first key is "cells"
_CELLS_CLOSE = b"\n ]"  # ... and closes that list
_NO_CELLS_OPEN = '{\n "cells": []'  # ... or starts one whose "cells" list is empty
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder skips it
_DECODER = json.JSONDecoder()


class _Malformed(ValueError):
    """Not a JSON object this reader walks: nbformat.reads says what is wrong."""


def write_v4(
    content: dict[str, Any], notary: NotebookNotary, slice_cells: int = SLICE_CELLS
) -> tuple[bytes, bool, str | None] | None:
    """(UTF-8 JSON as ``nbformat.writes`` writes it, all code cells trusted (``check_cells``), the
    signature when they are) of a model's notebook content, without altering ``content``; None when the
    notebook is one the whole-notebook path must write (see the module's docstring)."""
    cells = content.get("cells")
    if not isinstance(cells, list) or not _sliceable(content, cells):
        return None
    try:
        return _write(content, cells, notary, slice_cells)
    except Exception:  # whatever nbformat objects to, the whole-notebook path reports it as it always has
        return None


def _write(
    content: dict[str, Any], cells: list[dict[str, Any]], notary: NotebookNotary, slice_cells: int
) -> tuple[bytes, bool, str | None] | None:
    try:
        nbformat.validate(content)  # what writes() validates; the marks check_cells removes are booleans
    except nbformat.ValidationError:
        return None
    minor = content.get("nbformat_minor", 0)
    top = nbformat.from_dict({key: value for key, value in content.items() if key != "cells"} | {"cells": []})
    signer = HMAC(notary.secret, digestmod=notary.digestmod)  # NotebookNotary.compute_signature, streamed
    signer.update(b"cells")  # sorted(top) starts with "cells" (_sliceable)
    trusted = True
    encoded: list[bytes] = []
    for start in range(0, len(cells), slice_cells):
        part = nbformat.from_dict(
            {
                "cells": cells[start : start + slice_cells],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": minor,
            }
        )
        if not notary.check_cells(part):  # takes the "trusted" marks off this slice's copies
            trusted = False
        if trusted:  # an untrusted notebook is not signed (check_and_sign)
            for cell in part.cells:
                for chunk in nbformat.sign.yield_everything(cell):
                    signer.update(chunk)
        text = nbformat.v4.writes_json(part)
        if not text.startswith(_CELLS_OPEN):
            return None
        # Inside the list every line is indented by two spaces or more: the first "\n ]," closes it.
        encoded.append(text[len(_CELLS_OPEN) : text.index("\n ],\n")].encode("utf-8"))
    with nbformat.sign.signature_removed(top):
        for key in sorted(top) if trusted else ():
            if key != "cells":
                signer.update(key.encode())
                for chunk in nbformat.sign.yield_everything(top[key]):
                    signer.update(chunk)
    text = nbformat.v4.writes_json(top)
    if not text.startswith(_NO_CELLS_OPEN):
        return None
    if encoded:  # the slices' cells between the brackets of the empty list
        opening = len(_NO_CELLS_OPEN) - 1  # up to and with "["
        head, tail = text[:opening].encode("utf-8"), text[opening + 1 :].encode("utf-8")
        data = b"".join((head, b"\n", b",\n".join(encoded), _CELLS_CLOSE, tail))
    else:
        data = text.encode("utf-8")
    return data, trusted, signer.hexdigest() if trusted else None


def _sliceable(content: dict[str, Any], cells: list[Any]) -> bool:
    minor = content.get("nbformat_minor", 0)
    if content.get("nbformat") != 4 or not isinstance(minor, int):
        return False
    if any(not isinstance(key, str) or key < "cells" for key in content):
        return False
    for cell in cells:
        if not isinstance(cell, dict) or not isinstance(cell.get("metadata"), dict):
            return False
        if cell.get("cell_type") == "code" and not isinstance(cell["metadata"].get("trusted", False), bool):
            return False
    if minor >= 5:
        # nbformat's validation gives cells missing or repeating an id a new one, in the notebook it
        # validates: that must be a copy, not the request's model.
        ids = [cell.get("id") for cell in cells]
        if not all(isinstance(cell_id, str) for cell_id in ids) or len(set(ids)) != len(ids):
            return False
    return True


def read_v4(text: str, slice_cells: int = SLICE_CELLS) -> Any:
    """``nbformat.reads(text, as_version=4)`` of a v4 notebook before its validation (the caller
    validates, as reads does), or None when ``text`` is not a well-formed v4 notebook."""
    try:
        return _read(text, slice_cells)
    except Exception:  # malformed JSON, cells nbformat cannot convert: nbformat.reads reports it
        return None


def _read(text: str, slice_cells: int) -> Any:
    top: dict[str, Any] = {}
    cells: list[Any] | None = None
    at = _expect(text, _skip(text, 0), "{")
    if text.startswith("}", at):
        return None
    while True:
        if not text.startswith('"', at):
            raise _Malformed(at)
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        at = _expect(text, at, ":")
        if key == "cells" and text.startswith("[", at):
            top[key] = []  # its place among the keys, as json.loads keeps it
            cells, at = _read_cells(text, at, slice_cells)
        else:
            top[key], at = _DECODER.raw_decode(text, at)
            if key == "cells":
                cells = None
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
            continue
        at = _expect(text, at, "}")
        break
    if at != len(text) or type(top.get("nbformat")) is not int or top["nbformat"] != 4 or cells is None:
        return None  # trailing data (json.loads: "Extra data"), another version, cells not a list
    nb = nbformat.v4.to_notebook_json(top)  # the top level: metadata, versions (its cells are [])
    nb["cells"] = cells
    return nb


def _read_cells(text: str, at: int, slice_cells: int) -> tuple[list[Any], int]:
    """The cells of the array at ``text[at] == "["``, converted a slice at a time; the index after it."""
    cells: list[Any] = []
    raw: list[Any] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return cells, at + 1
    while True:
        cell, at = _DECODER.raw_decode(text, at)
        raw.append(cell)
        if len(raw) == slice_cells:
            cells += _cells_v4(raw)
            raw = []
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
            continue
        at = _expect(text, at, "]")
        cells += _cells_v4(raw)
        return cells, at


def _cells_v4(raw: list[Any]) -> list[Any]:
    """nbformat's v4 reader (from_dict, rejoin_lines, strip_transient) on a slice of parsed cells."""
    cells: list[Any] = nbformat.v4.to_notebook_json({"cells": raw, "metadata": {}}).cells
    return cells


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return at if match is None else match.end()


def _expect(text: str, at: int, token: str) -> int:
    """The index after ``token`` (and the whitespace after it) at ``text[at:]``."""
    at = _skip(text, at)
    if not text.startswith(token, at):
        raise _Malformed(at)
    return _skip(text, at + 1)
