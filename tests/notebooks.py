"""Real notebooks for merge tests: what JupyterLab writes (nbformat 4.5 with cell ids, code cells with
outputs and execution counts, kernel metadata), serialised by nbformat as the contents manager does."""

from __future__ import annotations

import copy
from collections.abc import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

Notebook = nbformat.NotebookNode


def analysis() -> Notebook:
    """A small analysis notebook: a title, imports, a computation with output, a plot-like cell."""
    cells = [
        new_markdown_cell("# Half-lives\nMeasurements of the radium samples."),
        new_code_cell("import math\nimport statistics", execution_count=1),
        new_code_cell(
            "samples = [1600, 1590, 1610]\nmean = statistics.mean(samples)\nprint(mean)",
            execution_count=2,
            outputs=[new_output("stream", name="stdout", text="1600\n")],
        ),
        new_markdown_cell("## Decay\nThe decay constant follows from the half-life."),
        new_code_cell(
            "lam = math.log(2) / mean\nlam",
            execution_count=3,
            outputs=[new_output("execute_result", data={"text/plain": "0.000433"}, execution_count=3)],
        ),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.12.1"}
    return nb


def edited(nb: Notebook, change: Callable[[Notebook], object]) -> Notebook:
    copy_ = copy.deepcopy(nb)
    change(copy_)
    return copy_


def data(nb: Notebook) -> bytes:
    return nbformat.writes(nb).encode()


def load(raw: bytes | None) -> Notebook:
    assert raw is not None
    return nbformat.reads(raw.decode(), as_version=4)


def set_source(index: int, text: str) -> Callable[[Notebook], None]:
    return lambda nb: nb.cells[index].__setitem__("source", text)


def sources(nb: Notebook) -> list[str]:
    return [c.source for c in nb.cells]
