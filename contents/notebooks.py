"""Notebook JSON in and out, off the event loop.

Parsing, validating and writing a notebook is pure CPU: for a 50,000-cell notebook, seconds during which
the server answered nothing. `NotebookCodec` runs it in one worker thread, as jupyter_server's own
``AsyncFileContentsManager`` runs ``nbformat.read``/``write``. Trust (``check_and_sign`` on save,
``mark_trusted_cells`` on read) stays with the manager on the loop, like upstream: nbformat's signature
store is a SQLite connection owned by the thread that opened it, and jupyter_server's trust endpoint uses
the same notary on the loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nbformat


class NotebookCodec:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cs3sync-notebooks")

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def from_dict(self, content: dict[str, Any]) -> Any:
        """A model's content -> a NotebookNode."""
        return await self._run(nbformat.from_dict, content)

    async def dumps(self, nb: Any) -> tuple[bytes, dict[str, Any]]:
        """NotebookNode -> (UTF-8 JSON, validation error dict)."""
        return await self._run(_dumps, nb)

    async def loads(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        """UTF-8 JSON -> (NotebookNode in version 4, validation error dict)."""
        return await self._run(_loads, data)


def _dumps(nb: Any) -> tuple[bytes, dict[str, Any]]:
    validation_error: dict[str, Any] = {}
    text = nbformat.writes(nb, version=nbformat.NO_CONVERT, capture_validation_error=validation_error)
    return text.encode("utf-8"), validation_error


def _loads(data: bytes) -> tuple[Any, dict[str, Any]]:
    validation_error: dict[str, Any] = {}
    nb = nbformat.reads(data.decode("utf-8"), as_version=4, capture_validation_error=validation_error)
    return nb, validation_error
