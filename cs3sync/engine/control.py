"""What other processes changed (`cs3sync pause/resume/retry/discard`): they bump the journal's control
row generation. A cross-process change has no event we could wait on, so this is the engine's one
polling loop; it also keeps the heartbeat that `status` shows fresh."""

from __future__ import annotations

import anyio

from cs3sync.engine.host import EngineHost
from cs3sync.engine.journal_health import JournalHealth
from cs3sync.logs import get_logger

log = get_logger("cs3sync.engine")


class ControlWatch:
    def __init__(self, host: EngineHost, health: JournalHealth) -> None:
        self._host = host
        self._health = health
        self._generation: int | None = None

    async def load(self) -> None:
        """At start: the control row as it is now (paused by the CLI before we started?)."""
        control = await self._host.journal.control()
        self._generation = control.generation
        self._host.set_paused(control.paused)

    async def run(self) -> None:
        host = self._host
        while True:
            await anyio.sleep(host.control_poll_interval)
            try:
                control = await host.journal.control()
                if control.generation != self._generation or control.paused != host.paused:
                    self._generation = control.generation
                    host.set_paused(control.paused)
                    log.info("engine.control_changed", paused=control.paused)
                    await host.after_change(full=True)  # its writes are not in take_changes
                await host.journal.set_control(heartbeat=host.clock.now())
            except Exception as exc:
                self._health.trouble("control poll", exc)
            else:
                self._health.ok()
