"""What the engine's parts (workers, outcomes, connectivity, control watch, progress, executor context)
use of the engine that composes them: a `typing.Protocol`, so the parts do not import `SyncEngine`
(no import circle) and a test could host them on a double."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal, Protocol

from cs3sync.clock import Clock, Signal
from cs3sync.cs3 import CS3Client
from cs3sync.journal import Entry, Journal

EngineState = Literal["online", "offline", "auth"]


class EngineHost(Protocol):
    # The settings (read live: tests and hosts change them on a running engine).
    client: CS3Client
    clock: Clock
    name: str
    lease_seconds: float
    fresh_base_seconds: float
    max_attempts: int
    merge_conflicts: bool
    backoff_base: float
    backoff_max: float
    backoff_jitter: float
    offline_threshold: int
    offline_probe_interval: float
    offline_probe_max: float
    probe_nudge_min: float
    control_poll_interval: float
    lock_provider: Callable[[str], Any] | None
    #: UIs: anything visible changed (entries, state, progress).
    changed: Signal

    @property
    def journal(self) -> Journal: ...

    @property
    def paused(self) -> bool: ...

    def set_paused(self, paused: bool) -> None:
        """The journal's control row says so (`cs3sync pause`/`resume`)."""
        ...

    def spawn(self, task: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> bool:
        """Start ``task(*args)`` in the engine's task group; False when the engine is not running."""
        ...

    async def after_change(
        self, *, refresh: bool = True, transition: bool = True, full: bool = False
    ) -> None:
        """Something changed in the journal (``full``: written by another process too): refresh the
        overlay, wake workers and waiters."""
        ...

    async def requests_first(self) -> None:
        """Before a worker's next step: wait (briefly) while a request journals a change."""
        ...

    def log_entry(self, entry: Entry, event: str, **kw: Any) -> None: ...
