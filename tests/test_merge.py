"""The three-way merge itself (cs3sync/merge.py): pure functions on real notebooks and texts.

The notebooks are what JupyterLab writes (nbformat 4.5 with cell ids, code cells with outputs and
execution counts, kernel metadata), serialised by nbformat as the contents manager does.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from notebooks import Notebook, analysis, data, edited, load, set_source, sources

import cs3sync.merge
from cs3sync.merge import MergeResult, describe, merge3, merge3_in_thread

# ---------------------------------------------------------------------------------------------- notebooks


def test_edits_in_different_cells_merge_with_both_present() -> None:
    base = analysis()
    ours = edited(
        base, lambda nb: nb.cells.extend([new_markdown_cell("## Conclusion"), new_code_cell("lam * 2")])
    )
    theirs = edited(base, set_source(0, "# Half-lives\nMeasurements of the radium samples (corrected)."))
    result = merge3("/eos/user/e/einstein/decay.ipynb", data(base), data(ours), data(theirs), ours_newer=True)
    assert result.clean and result.kind == "notebook"
    merged = load(result.merged)
    nbformat.validate(merged)
    assert merged.cells[0].source.endswith("(corrected).")  # theirs
    assert sources(merged)[-2:] == ["## Conclusion", "lam * 2"]  # ours
    assert sources(merged)[1:5] == sources(base)[1:5]
    assert result.theirs_changes == 1
    assert describe(result, "marie") == "merged with marie's change, 1 cell"


def test_different_lines_of_one_cell_merge() -> None:
    base = analysis()
    ours = edited(
        base,
        set_source(2, "samples = [1600, 1590, 1610, 1605]\nmean = statistics.mean(samples)\nprint(mean)"),
    )
    theirs = edited(
        base,
        set_source(2, "samples = [1600, 1590, 1610]\nmean = statistics.mean(samples)\nprint(round(mean))"),
    )
    result = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=False)
    assert result.clean
    assert load(result.merged).cells[2].source == (
        "samples = [1600, 1590, 1610, 1605]\nmean = statistics.mean(samples)\nprint(round(mean))"
    )


def test_same_cell_changed_on_both_sides_collides_and_names_the_cell() -> None:
    base = analysis()
    ours = edited(base, set_source(3, "## Decay\nThe decay constant is ln 2 over the half-life."))
    theirs = edited(base, set_source(3, "## Decay\nλ = ln 2 / T½."))
    result = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True)
    assert not result.clean and result.merged is None
    assert result.collisions == (4,)  # the fourth cell of the common base
    assert describe(result, "marie") == "not merged with marie's change: both changed cell 4"


def test_cell_edited_on_one_side_and_deleted_on_the_other_collides() -> None:
    base = analysis()
    ours = edited(base, set_source(1, "import math\nimport statistics\nimport numpy"))
    theirs = edited(base, lambda nb: nb.cells.pop(1))
    result = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True)
    assert not result.clean
    assert result.collisions == (2,)


def test_cells_added_at_the_same_place_are_all_kept_older_side_first() -> None:
    base = analysis()
    ours = edited(base, lambda nb: nb.cells.append(new_markdown_cell("einstein's note")))
    theirs = edited(base, lambda nb: nb.cells.append(new_markdown_cell("marie's note")))
    newer_ours = load(merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True).merged)
    assert sources(newer_ours)[-2:] == ["marie's note", "einstein's note"]
    newer_theirs = load(merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=False).merged)
    assert sources(newer_theirs)[-2:] == ["einstein's note", "marie's note"]


def run_cell(nb: Notebook, count: int, text: str) -> None:
    nb.cells[2].execution_count = count
    nb.cells[2].outputs = [new_output("stream", name="stdout", text=text)]


@pytest.mark.parametrize("ours_newer", [True, False])
def test_outputs_and_execution_counts_never_block_and_the_newer_side_wins(ours_newer: bool) -> None:
    base = analysis()
    ours = edited(base, lambda nb: run_cell(nb, 7, "1601\n"))
    theirs = edited(base, lambda nb: run_cell(nb, 12, "1599\n"))
    result = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=ours_newer)
    assert result.clean
    cell = load(result.merged).cells[2]
    assert (cell.execution_count, cell.outputs[0].text) == ((7, "1601\n") if ours_newer else (12, "1599\n"))
    assert cell.source == base.cells[2].source


def test_metadata_only_differences_merge() -> None:
    base = analysis()
    ours = edited(base, lambda nb: nb.metadata["language_info"].__setitem__("version", "3.12.4"))
    theirs = edited(base, lambda nb: nb.metadata["language_info"].__setitem__("version", "3.11.0"))
    theirs.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    theirs.cells[4].metadata["tags"] = ["result"]
    result = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=False)
    assert result.clean
    merged = load(result.merged)
    assert merged.metadata["language_info"]["version"] == "3.11.0"  # both changed: the newer (theirs)
    assert merged.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert merged.cells[4].metadata["tags"] == ["result"]


def test_a_source_edit_and_a_rerun_of_the_same_cell_merge() -> None:
    base = analysis()
    ours = edited(
        base, set_source(2, "samples = [1600, 1590, 1610]\nmean = statistics.mean(samples)\nprint(mean, 's')")
    )
    theirs = edited(base, lambda nb: run_cell(nb, 4, "1600.0\n"))
    merged = load(merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True).merged)
    assert merged.cells[2].source.endswith("print(mean, 's')")
    assert merged.cells[2].outputs[0].text == "1600.0\n"


def test_the_merge_is_written_as_jupyter_writes_notebooks() -> None:
    base = analysis()
    ours = edited(base, set_source(0, "# Half-lives (draft)\nMeasurements of the radium samples."))
    theirs = edited(base, set_source(4, "lam = math.log(2) / mean\nprint(lam)"))
    raw = merge3("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True).merged
    assert raw is not None
    assert raw.decode() == nbformat.writes(load(raw))  # indent 1, sorted keys, trailing newline
    # Merging again with the merge as theirs changes nothing: a retried merge is stable.
    again = merge3("x.ipynb", data(base), data(ours), raw, ours_newer=True)
    assert again.merged == raw


def test_an_unreadable_notebook_is_not_merged() -> None:
    base = data(analysis())
    result = merge3("x.ipynb", base, b'{"cells": [', base, ours_newer=True)
    assert not result.clean and "not a readable notebook" in result.reason


# ---------------------------------------------------------------------------------------------- text


BASE_TEXT = b"name,half_life\nradium,1600\npolonium,138\nuranium,4.5e9\n"


def test_text_edits_on_different_lines_merge() -> None:
    ours = b"name,half_life\nradium,1600\npolonium,138.4\nuranium,4.5e9\n"
    theirs = b"name,half_life\nradium,1600\npolonium,138\nuranium,4.5e9\nthorium,1.4e10\n"
    result = merge3("/eos/user/e/einstein/data.csv", BASE_TEXT, ours, theirs, ours_newer=True)
    assert result.clean and result.kind == "text"
    assert result.merged == b"name,half_life\nradium,1600\npolonium,138.4\nuranium,4.5e9\nthorium,1.4e10\n"
    assert describe(result, "marie") == "merged with marie's change, 1 line"


def test_text_edits_of_the_same_line_collide() -> None:
    ours = BASE_TEXT.replace(b"radium,1600", b"radium,1601")
    theirs = BASE_TEXT.replace(b"radium,1600", b"radium,1599")
    result = merge3("data.csv", BASE_TEXT, ours, theirs, ours_newer=True)
    assert not result.clean and result.collisions == (2,)
    assert describe(result) == "not merged with a change on the storage: both changed line 2"


def test_the_same_change_on_both_sides_is_no_collision() -> None:
    both = BASE_TEXT.replace(b"uranium", b"U-238")
    result = merge3("data.csv", BASE_TEXT, both, both, ours_newer=True)
    assert result.merged == both


def test_binary_files_are_never_merged() -> None:
    png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256))
    result = merge3("plot.png", png, png + b"\x01", png + b"\x02", ours_newer=True)
    assert not result.clean and result.kind == "binary"
    assert describe(result) == "not merged with a change on the storage: binary files cannot be merged"
    latin1 = "Curie, café\n".encode("latin-1")
    assert merge3("notes.txt", latin1, latin1 + b"a\n", latin1 + b"b\n", ours_newer=True).kind == "binary"


# ---------------------------------------------------------------------------------------------- threading


async def test_the_merge_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    base = analysis()
    ours = edited(base, set_source(0, "# Half-lives (draft)"))
    theirs = edited(base, set_source(4, "lam"))
    threads: list[int] = []
    real = cs3sync.merge.merge3

    def spy(*args: Any, **kw: Any) -> MergeResult:
        threads.append(threading.get_ident())
        return real(*args, **kw)

    monkeypatch.setattr(cs3sync.merge, "merge3", spy)
    result = await merge3_in_thread("x.ipynb", data(base), data(ours), data(theirs), ours_newer=True)
    assert result.clean
    assert threads and threads[0] != threading.get_ident()  # not the event loop's thread
    assert json.loads(result.merged or b"")["nbformat"] == 4
