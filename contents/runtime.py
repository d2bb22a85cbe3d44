"""`Runtime`: the CS3 client of each event loop and the one `SyncEngine` of the server.

A grpc.aio channel is bound to the loop that made it, so each loop gets its own `CS3Client`. The
engine runs on the loop of the first request that needs it; it is hosted by a task that restarts it
when it dies (a bug it could not survive: its journal recovers the work) after a pause that grows
with each death, and stops it at server shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tornado.web import HTTPError

if TYPE_CHECKING:
    from cs3sync.cs3 import CS3Client, CS3Config
    from cs3sync.cs3.types import ResourceInfo
    from cs3sync.engine import SyncEngine
    from cs3sync.journal import Entry

#: Longest pause (s) before a dead engine is restarted (at once, then 1, 2, 4 ... s after more deaths).
ENGINE_RESTART_MAX = 60.0
#: Longest time (s) a request waits for the restart of a dead engine.
ENGINE_RESTART_WAIT = 10.0


class Runtime:
    """Owns the clients (one per event loop) and the engine's lifecycle: start at first use, restart
    after a death, stop at shutdown. ``engine_kwargs`` gives SyncEngine's arguments when one starts;
    ``on_finished`` hears every run of an entry the engine ends."""

    def __init__(
        self,
        client_config: Callable[[], CS3Config],
        engine_kwargs: Callable[[], dict[str, Any]],
        on_finished: Callable[[Entry, ResourceInfo | None], None],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._client_config = client_config
        self._engine_kwargs = engine_kwargs
        self._on_finished = on_finished
        self.log = log
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CS3Client] = (
            weakref.WeakKeyDictionary()
        )
        self._engine: SyncEngine | None = None
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self._engine_stop: asyncio.Event | None = None
        self._engine_lock: asyncio.Lock | None = None
        self._engine_replaced = asyncio.Event()  # set when a new engine replaces the current one

    # ------------------------------------------------------------------ client
    async def get_client(self) -> CS3Client:
        """The CS3 client of the running event loop (a grpc.aio channel is bound to its loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from cs3sync.cs3 import CS3Client

            client = CS3Client(self._client_config())
            self._clients[loop] = client
        return client

    @property
    def client(self) -> CS3Client | None:
        """The running loop's client if one was made, else None."""
        try:
            return self._clients.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    # ------------------------------------------------------------------ engine
    @property
    def engine(self) -> SyncEngine | None:
        """The engine if it has started (None before the first request that needed it)."""
        return self._engine

    def local_engine(self) -> SyncEngine | None:
        """The engine if it runs on the running loop: only that loop may use its journal."""
        engine = self._engine
        if engine is None or self._engine_loop is not asyncio.get_running_loop():
            return None
        return engine

    def owns_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """The engine has started and runs on ``loop``."""
        return self._engine is not None and self._engine_loop is loop

    async def wait_started(self) -> None:
        """If the engine is starting on this loop, wait for it (so that reads see pending entries)."""
        lock = self._engine_lock
        starting = self._engine is None and lock is not None and lock.locked()
        if lock is not None and starting and self._engine_loop is asyncio.get_running_loop():
            async with lock:
                pass

    async def get_engine(self) -> SyncEngine:
        """The one `SyncEngine` of this server, started on the server's loop at first use."""
        loop = asyncio.get_running_loop()
        if self._engine is not None:
            if self._engine_loop is not loop:
                raise HTTPError(503, "Storage engine runs on another event loop")
            if self._engine.health == "dead":  # its host is restarting it: wait for the new one
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._engine_replaced.wait(), ENGINE_RESTART_WAIT)
            return self._engine
        if self._engine_lock is None or self._engine_loop is not loop:
            self._engine_lock = asyncio.Lock()
            self._engine_loop = loop
        async with self._engine_lock:
            if self._engine is None:
                await self._start_engine()
        assert self._engine is not None, "_start_engine raises when the engine cannot start"
        return self._engine

    async def _start_engine(self) -> None:
        from cs3sync.engine import SyncEngine  # the engine's imports load when the server first needs it

        client = await self.get_client()
        ready = asyncio.Event()
        stop = asyncio.Event()
        failure: list[BaseException] = []

        async def run() -> None:
            """Host the engine until shutdown; an engine that dies (a bug it could not survive) is
            restarted, after a pause that grows with each death (its journal recovers the work)."""
            deaths = 0
            while not stop.is_set():
                engine = SyncEngine(client, **self._engine_kwargs())
                try:
                    async with engine:
                        engine.on_finished(self._on_finished)
                        self._engine = engine
                        replaced, self._engine_replaced = self._engine_replaced, asyncio.Event()
                        replaced.set()
                        ready.set()
                        await _first_of(stop.wait(), engine.wait_ended())
                except BaseException as exc:
                    if ready.is_set() and isinstance(exc, Exception):
                        self.log.error("cs3sync: the sync engine failed to restart: %s", exc)
                    else:
                        failure.append(exc)
                        ready.set()
                        if not isinstance(exc, Exception):
                            raise
                        return
                if stop.is_set():
                    return
                self.log.error("cs3sync: the sync engine stopped unexpectedly; restarting it")
                if deaths:  # again: a pause growing with each death (a bug that strikes at once)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), min(ENGINE_RESTART_MAX, 2.0 ** (deaths - 1)))
                deaths += 1

        self._engine_task = asyncio.create_task(run(), name="cs3sync-engine")
        await ready.wait()
        if failure:
            self.log.error("cs3sync: the journal could not be opened: %s", failure[0])
            raise HTTPError(503, f"Local journal unavailable: {failure[0]}")
        self._engine_stop = stop

    async def aclose(self) -> None:
        """Stop the engine and close this loop's client (server shutdown)."""
        if self._engine_stop is not None and self._engine_task is not None:
            self._engine_stop.set()
            with contextlib.suppress(Exception):
                await self._engine_task
        self._engine = None
        self._engine_task = None
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


async def _first_of(*waits: Awaitable[Any]) -> None:
    """Wait until the first of these awaitables returns; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
