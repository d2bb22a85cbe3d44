"""The ``meta`` table, the ``control`` row (pause/resume, the engine's state and heartbeat, shared with the
CLI) and the bounded ``events`` ring."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cs3sync.journal.types import Control, Event
from cs3sync.journal.unit import UnitOfWork


class _Keep:
    """Sentinel type: leave the field as it is."""


KEEP = _Keep()


class ControlRows:
    """Part of `Journal` (``journal.control_rows``)."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def meta(self) -> dict[str, str]:
        """The ``meta`` table (``schema_version``, ``account``, ...)."""
        return {r[0]: r[1] for r in await self.unit.read("SELECT key, value FROM meta")}

    async def set_meta(self, key: str, value: str) -> None:
        if key == "schema_version":
            raise ValueError("schema_version is managed by migrations")
        async with self.unit.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def control(self) -> Control:
        rows = await self.unit.read("SELECT * FROM control WHERE id = 1")
        r = rows[0]
        return Control(
            paused=bool(r["paused"]),
            engine_state=r["engine_state"],
            last_error=r["last_error"],
            owner_pid=r["owner_pid"],
            heartbeat=r["heartbeat"],
            generation=r["generation"],
            updated_at=r["updated_at"],
        )

    async def set_control(
        self,
        *,
        paused: bool | None = None,
        engine_state: str | None = None,
        last_error: str | _Keep | None = KEEP,
        heartbeat: float | None = None,
    ) -> Control:
        """Update the control row in a short write transaction. Allowed without ownership (the CLI's
        pause/resume); the owner sets engine_state/last_error/heartbeat."""
        sets: dict[str, Any] = {"updated_at": self.unit.now()}
        if paused is not None:
            sets["paused"] = int(paused)
        if engine_state is not None:
            sets["engine_state"] = engine_state
        if not isinstance(last_error, _Keep):
            sets["last_error"] = last_error
        if heartbeat is not None:
            sets["heartbeat"] = heartbeat
        assignments = ", ".join(f"{k} = :{k}" for k in sets)
        async with self.unit.transaction(control=True) as conn:
            await conn.execute(f"UPDATE control SET {assignments} WHERE id = 1", sets)
            if paused is not None:
                await self.unit.event(conn, "paused" if paused else "resumed")
        return await self.control()

    async def append_event(
        self,
        kind: str,
        *,
        entry_id: int | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the bounded `events` ring (transitions are recorded automatically)."""
        async with self.unit.transaction() as conn:
            await self.unit.event(conn, kind, entry_id, message, data)

    async def events(self, *, entry_id: int | None = None, limit: int = 100) -> list[Event]:
        """Newest last."""
        rows = await self.unit.read(
            "SELECT * FROM (SELECT * FROM events WHERE ? IS NULL OR entry_id = ? ORDER BY id DESC LIMIT ?)"
            " ORDER BY id",
            (entry_id, entry_id, limit),
        )
        return [
            Event(
                id=r["id"],
                at=r["at"],
                entry_id=r["entry_id"],
                kind=r["kind"],
                message=r["message"],
                data=json.loads(r["data"]) if r["data"] else {},
            )
            for r in rows
        ]
