"""Notebook JSON in and out, off the event loop.

Parsing, validating and writing a notebook is pure CPU: for a 50,000-cell notebook, seconds during which
the server answered nothing. `NotebookCodec` runs it in one worker thread, as jupyter_server's own
``AsyncFileContentsManager`` runs ``nbformat.read``/``write``, and with it all of Jupyter's trust checks:
``check_cells``, the HMAC of every cell in ``compute_signature``, ``mark_cells``, and the signature store.
The store is a SQLite database whose every ``store_signature`` commits (with its fsyncs): on the loop's
thread that stalled every other request during each save. The worker thread opens its own store with the
notary's ``store_factory`` (a connection belongs to the thread that opened it) and the manager sends
"Trust" through it too, so one store answers everything. Together this is what ``check_and_sign``
(save), ``mark_trusted_cells`` (read) and ``trust_notebook`` do, in one trip to the thread each. A v4
notebook is checked, signed and written, or parsed, a slice of cells at a time (contents/notebook_slices.py):
no copy of a big notebook makes the garbage collector stop every thread, and no single C call holds the
GIL for a whole notebook.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import nbformat
from nbformat.sign import MemorySignatureStore, NotebookNotary, SignatureStore
from tornado.web import HTTPError
from traitlets.log import get_logger

from contents import notebook_slices

T = TypeVar("T")


class Notebooks:
    """A notebook's bytes <-> its model content, with Jupyter's trust checks, for the contents manager:
    the codec's worker thread starts at first use with the manager's notary (``notary()``); a notebook
    that cannot be read or written is a 400 in the user's terms."""

    def __init__(
        self,
        notary: Callable[[], NotebookNotary],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.notary = notary
        self.log = log
        self._codec: NotebookCodec | None = None

    @property
    def codec(self) -> NotebookCodec:
        if self._codec is None:
            notary = self.notary()
            _ = notary.secret  # read (or created) here, not first by the worker thread
            self._codec = NotebookCodec(notary, self.log)
        return self._codec

    def close(self) -> None:
        if self._codec is not None:
            self._codec.close()
            self._codec = None

    async def read(self, data: bytes, api_path: str) -> tuple[Any, dict[str, Any]]:
        """A notebook's bytes -> (its content with trusted cells marked, validation error dict)."""
        try:
            nb, validation_error, trusted = await self.codec.read(data, api_path)  # mark_trusted_cells
        except Exception as e:
            raise HTTPError(400, f"Unreadable Notebook: {api_path} is not valid notebook JSON") from e
        if not trusted:
            self.log.warning("Notebook %s is not trusted", api_path)
        return nb, validation_error

    async def write(
        self, content: dict[str, Any], api_path: str
    ) -> tuple[bytes, dict[str, Any], asyncio.Future[None] | None]:
        """A model's notebook content -> (its bytes, validation error dict, the recording of its
        signature when trusted: await it before replying, `NotebookCodec.serialize`)."""
        try:
            # check_and_sign: hashing and the signature store in the notebook worker thread.
            data, validation_error, trusted, signing = await self.codec.serialize(content, api_path)
        except HTTPError:
            raise
        except Exception as e:
            raise HTTPError(400, f"Unreadable Notebook: {api_path} is not a valid notebook") from e
        if not trusted:
            self.log.warning("Notebook %s is not trusted", api_path)
        return data, validation_error, signing

    async def trust(self, nb: Any, api_path: str) -> None:
        """Mark every cell trusted and record the signature (the "Trust" command)."""
        await self.codec.trust(nb, api_path)


class NotebookCodec:
    """nbformat's parsing, validation, signing and writing, and the signature store, in one worker thread."""

    def __init__(self, notary: NotebookNotary, log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self.notary = notary
        self.log = log
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cs3sync-notebooks")
        self._releaser = _Releaser()
        self._store: SignatureStore | None = None  # opened, used and closed in the worker thread only
        if notary.db_file == ":memory:":
            # An in-memory SQLite database exists per connection: the worker thread's own one would not
            # be the notary's. Both share nbformat's pure-Python memory store instead.
            notary.store = MemorySignatureStore()

    def close(self) -> None:
        self._executor.submit(self._close_store)
        self._executor.shutdown(wait=False)
        self._releaser.close()

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def serialize(
        self, content: dict[str, Any], api_path: str
    ) -> tuple[bytes, dict[str, Any], bool, asyncio.Future[None] | None]:
        """A model's content -> (UTF-8 JSON, validation error dict, all its code cells trusted, the
        recording of a trusted notebook's signature in the store) (a save: ``check_and_sign``). The
        recording (a SQLite commit with its fsyncs) is queued in the worker thread right behind the
        serialisation: the caller stores and journals the bytes meanwhile and awaits it before replying."""
        data, validation_error, trusted, signature = await self._run(self._serialize, content)
        if signature is None:
            return data, validation_error, trusted, None
        return data, validation_error, trusted, self._record(signature, api_path)

    def _record(self, signature: str, api_path: str) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(
            self._executor, self._store_signature, signature, api_path
        )

    async def read(self, data: bytes, api_path: str) -> tuple[Any, dict[str, Any], bool]:
        """UTF-8 JSON -> (NotebookNode in version 4 with its cells marked, validation error dict,
        trusted) (a read: ``mark_trusted_cells``)."""
        nb, validation_error, trusted = await self._run(self._read, data, api_path)
        self._free_here_later(nb)
        return nb, validation_error, trusted

    def _free_here_later(self, nb: Any) -> None:
        """Whoever drops the last reference to a notebook frees all its objects in one C call chain:
        jupyter_server does, on the loop, once it has sent the reply (~30 ms for 50,000 cells). The
        cells of a big notebook are held here as well until the notebook itself is gone, then let go
        by `_Releaser`'s thread a slice at a time. Only this private list of references is emptied: a
        cell someone else still holds lives on."""
        cells = nb.get("cells")
        if not isinstance(cells, list) or len(cells) <= notebook_slices.SLICE_CELLS:
            return
        weakref.finalize(nb, self._releaser.release, list(cells)).atexit = False

    async def trust(self, nb: Any, api_path: str) -> None:
        """Mark every cell trusted and record the signature (the "Trust" command)."""
        await self._run(self._trust, nb, api_path)

    # ------------------------------------------------------------------ in the worker thread
    def _serialize(self, content: dict[str, Any]) -> tuple[bytes, dict[str, Any], bool, str | None]:
        sliced = notebook_slices.write_v4(content, self.notary)  # no copy of the whole notebook
        if sliced is not None:
            data, trusted, signature = sliced
            return data, {}, trusted, signature
        nb = nbformat.from_dict(content)
        trusted = bool(self.notary.check_cells(nb))
        signature = _signature(nb, self.notary) if trusted else None
        validation_error: dict[str, Any] = {}
        text = nbformat.writes(nb, version=nbformat.NO_CONVERT, capture_validation_error=validation_error)
        return text.encode("utf-8"), validation_error, trusted, signature

    def _store_signature(self, signature: str, api_path: str) -> None:
        try:
            self._with_store(lambda store: store.store_signature(signature, self.notary.algorithm), api_path)
        except Exception:  # the notebook is saved all the same; it opens as not trusted
            self.log.warning("Could not record the signature of notebook %s", api_path, exc_info=True)

    def _read(self, data: bytes, api_path: str) -> tuple[Any, dict[str, Any], bool]:
        validation_error: dict[str, Any] = {}
        text = data.decode("utf-8")
        nb = notebook_slices.read_v4(text)  # a v4 notebook a slice of cells at a time, not yet validated
        if nb is None:
            nb = nbformat.reads(text, as_version=4, capture_validation_error=validation_error)
        else:
            try:  # as nbformat.reads validates what it read
                nbformat.validate(nb)
            except nbformat.ValidationError as e:
                get_logger().error("Notebook JSON is invalid: %s", e)
                validation_error["ValidationError"] = e
        signature = _signature(nb, self.notary)
        trusted = signature is not None and bool(
            self._with_store(lambda store: store.check_signature(signature, self.notary.algorithm), api_path)
        )
        self.notary.mark_cells(nb, trusted)
        return nb, validation_error, trusted

    def _trust(self, nb: Any, api_path: str) -> None:
        self.notary.mark_cells(nb, True)
        # As check_and_sign: check_cells takes the marks off again, so they are not part of what is signed.
        signature = _signature(nb, self.notary) if self.notary.check_cells(nb) else None
        if signature is not None:
            self._with_store(lambda store: store.store_signature(signature, self.notary.algorithm), api_path)

    def _with_store(self, action: Any, api_path: str) -> Any:
        """``action(store)``; a corrupted or unavailable store is recreated once, as jupyter_server's
        ``check_and_sign`` does."""
        if self._store is None:
            self._store = self._open_store()
        try:
            return action(self._store)
        except Exception:
            self.log.warning(
                "Signature store for notebook %s is corrupted or unavailable; recreating the store.",
                api_path,
                exc_info=True,
            )
            self._close_store()
            self._store = self._open_store()
            return action(self._store)

    def _open_store(self) -> SignatureStore:
        shared = self.notary.store
        if isinstance(shared, MemorySignatureStore):
            return shared
        opened: SignatureStore = self.notary.store_factory()
        return opened

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None and store is not self.notary.store:
            store.close()


class _Releaser:
    """A thread that lets go of lists of references a slice at a time (`NotebookCodec._free_here_later`).
    ``release`` runs in weakref callbacks, on whichever thread dropped a notebook, even inside a garbage
    collection: it only puts the list on a ``SimpleQueue``, whose ``put`` is safe there (reentrant)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="cs3sync-notebooks-release", daemon=True)
        self._thread.start()

    def release(self, held: list[Any]) -> None:
        self._queue.put(held)

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (held := self._queue.get()) is not None:
            while held:
                del held[-notebook_slices.SLICE_CELLS :]
            del held


def _signature(nb: Any, notary: NotebookNotary) -> str | None:
    return str(notary.compute_signature(nb)) if nb.nbformat >= 3 else None  # as NotebookNotary.sign
