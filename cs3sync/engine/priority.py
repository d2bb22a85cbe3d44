"""Requests first: while a request is saving (from its first step to its journaled entry), the workers
hold back their next step (a claim, a command's next call to the storage, the bookkeeping of a result)
until no request is, for at most `RequestPriority.limit` seconds each time.

The workers share the server's event loop, the journal's writer and the machine's cores with the
requests: applying the previous save while the next one was journaled made that save take twice as long
(100 KB notebook, sequential saves: 5-8 ms in the manager with the engine paused, 10-14 ms with the engine
applying each save meanwhile; issue 14). Nothing waits for the engine's step but the storage, and the limit
keeps a stream of requests from starving it. A request that waits for its entry to be applied
(``write_through_timeout``) gives up its priority meanwhile (`RequestPriority.waiting`)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from cs3sync.clock import Signal

#: The longest a worker's step waits for the requests in flight (seconds).
DEFAULT_YIELD_LIMIT = 0.05

#: How many `RequestPriority.request` scopes the current task is in (their count is the task's share).
_held: contextvars.ContextVar[int] = contextvars.ContextVar("cs3sync_request_priority", default=0)


class RequestPriority:
    def __init__(self, limit: float = DEFAULT_YIELD_LIMIT) -> None:
        self.limit = limit
        self._requests = 0
        self._done = Signal()

    @property
    def requests(self) -> int:
        """Request scopes open now."""
        return self._requests

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around a request's work up to its journaled entry (scopes may nest)."""
        token = _held.set(_held.get() + 1)
        self._acquire(1)
        try:
            yield
        finally:
            self._release(1)
            _held.reset(token)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """The current request waits for the engine: its priority is given up meanwhile."""
        share = _held.get()
        token = _held.set(0)
        self._release(share)
        try:
            yield
        finally:
            self._acquire(share)
            _held.reset(token)

    async def turn(self) -> None:
        """A worker's next step: once no request is in a scope, or after `limit` seconds."""
        if self._requests:
            await self._done.wait(self._done.generation, timeout=self.limit)

    def _acquire(self, n: int) -> None:
        self._requests += n

    def _release(self, n: int) -> None:
        self._requests -= n
        if n and not self._requests:
            self._done.set()
