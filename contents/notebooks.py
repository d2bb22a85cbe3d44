"""Notebook JSON in and out, off the event loop.

Parsing, validating and writing a notebook is pure CPU: for a 50,000-cell notebook, seconds during which
the server answered nothing. `NotebookCodec` runs it in one worker thread, as jupyter_server's own
``AsyncFileContentsManager`` runs ``nbformat.read``/``write``, and with it the CPU half of Jupyter's trust
checks (``check_cells``, the HMAC of every cell in ``compute_signature``, ``mark_cells``). The other half,
the notary's signature store, stays on the loop: it is a SQLite connection owned by the thread that opened
it, and jupyter_server's trust endpoint uses the same notary there. Together this is what
``check_and_sign`` (save) and ``mark_trusted_cells`` (read) do.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nbformat
from nbformat.sign import NotebookNotary


class NotebookCodec:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cs3sync-notebooks")

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def serialize(
        self, content: dict[str, Any], notary: NotebookNotary
    ) -> tuple[bytes, dict[str, Any], bool, str | None]:
        """A model's content -> (UTF-8 JSON, validation error dict, all its code cells trusted, its
        signature if they are), in one trip to the worker thread (a save)."""
        return await self._run(_serialize, content, notary)

    async def mark_cells(self, nb: Any, trusted: bool, notary: NotebookNotary) -> None:
        await self._run(notary.mark_cells, nb, trusted)

    async def loads(self, data: bytes, notary: NotebookNotary) -> tuple[Any, dict[str, Any], str | None]:
        """UTF-8 JSON -> (NotebookNode in version 4, validation error dict, its signature)."""
        return await self._run(_loads, data, notary)


def _signature(nb: Any, notary: NotebookNotary) -> str | None:
    return str(notary.compute_signature(nb)) if nb.nbformat >= 3 else None  # as NotebookNotary.sign


def _from_dict(content: dict[str, Any], notary: NotebookNotary) -> tuple[Any, bool, str | None]:
    nb = nbformat.from_dict(content)
    trusted = bool(notary.check_cells(nb))
    return nb, trusted, _signature(nb, notary) if trusted else None


def _serialize(
    content: dict[str, Any], notary: NotebookNotary
) -> tuple[bytes, dict[str, Any], bool, str | None]:
    nb, trusted, signature = _from_dict(content, notary)
    data, validation_error = _dumps(nb)
    return data, validation_error, trusted, signature


def _dumps(nb: Any) -> tuple[bytes, dict[str, Any]]:
    validation_error: dict[str, Any] = {}
    text = nbformat.writes(nb, version=nbformat.NO_CONVERT, capture_validation_error=validation_error)
    return text.encode("utf-8"), validation_error


def _loads(data: bytes, notary: NotebookNotary) -> tuple[Any, dict[str, Any], str | None]:
    validation_error: dict[str, Any] = {}
    nb = nbformat.reads(data.decode("utf-8"), as_version=4, capture_validation_error=validation_error)
    return nb, validation_error, _signature(nb, notary)
