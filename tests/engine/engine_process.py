"""A `SyncEngine` in a process of its own, driven over stdin/stdout, one JSON object per line, so that a
test can kill it with SIGKILL at any moment (tests/engine/test_stateful.py).

    python engine_process.py '<settings json>'

prints ``{"ready": pid}`` once the engine runs, then answers each request line with ``{"result": ...}``
or ``{"error": "..."}``. A request is answered only after the engine acknowledged it (a submit returns
once the command is durable in the journal), so a reply is the acknowledgement the contract speaks of.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any

import anyio

from cs3sync.cs3 import CS3Client, CS3Config
from cs3sync.engine import SyncEngine
from cs3sync.journal import State
from cs3sync.journal.crash import ENV as CRASH_ENV


async def no_sleep(_: float) -> None:
    """The client's own in-call retries never wait (the engine's backoff does)."""


def entry_json(engine: SyncEngine, e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "op": e.op,
        "path": e.path,
        "src_path": e.src_path,
        "state": e.state,
        "claims": e.claims,
        "conflict_path": e.conflict_path,
        "blob_path": str(engine.blob_path(e.blob)) if e.blob else None,
        "last_error": e.last_error,
    }


async def settle(engine: SyncEngine, timeout: float) -> bool:  # noqa: ASYNC109
    """Until nothing is queued, running, retrying or blocked and the engine is online."""
    with anyio.move_on_after(timeout):
        while True:
            since = engine.changed.generation
            busy = [e for e in engine.active_entries() if e.state in State.ACTIVE]
            if not busy and engine.state == "online":
                return True
            engine.wake()
            await engine.changed.wait(since, timeout=0.5)
    return False


async def handle(engine: SyncEngine, request: dict[str, Any]) -> Any:
    op = request.pop("op")
    if op == "save":
        data = base64.b64decode(request["data"])
        return await engine.submit_save(request["path"], data, request.get("base"))
    if op == "delete":
        return await engine.submit_delete(request["path"], request.get("base"), None)
    if op == "rename":
        return await engine.submit_rename(request["src"], request["dst"], None)
    if op == "copy":
        return await engine.submit_copy(request["src"], request["dst"])
    if op == "mkdir":
        return await engine.submit_mkdir(request["path"])
    if op == "checkpoint":
        data = base64.b64decode(request["data"])
        return await engine.submit_checkpoint(request["path"], request["checkpoint_path"], data)
    if op == "pause":  # hold the queue (as `python -m cs3sync pause` would, without the poll delay)
        await engine.journal.set_control(paused=bool(request["paused"]))
        engine._paused = bool(request["paused"])
        engine.wake()
        return True
    if op == "arm":  # die like kill -9 at a named crash point (cs3sync.journal.crash)
        if request["at"]:
            os.environ[CRASH_ENV] = request["at"]
        else:
            os.environ.pop(CRASH_ENV, None)
        return True
    if op == "settle":
        return await settle(engine, float(request.get("timeout", 60)))
    if op == "entries":
        states = request.get("states")
        return [entry_json(engine, e) for e in await engine.entries(states)]
    if op == "resolve":
        await engine.resolve(int(request["id"]))
        return True
    raise ValueError(f"unknown request {op!r}")


async def main(settings: dict[str, Any]) -> None:
    config = CS3Config(**settings["client"])
    async with CS3Client(config, sleep=no_sleep) as client:
        engine = SyncEngine(client, journal_dir=settings["journal_dir"], **settings["engine"])
        async with engine:
            print(json.dumps({"ready": os.getpid()}), flush=True)
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    return
                try:
                    reply: dict[str, Any] = {"result": await handle(engine, json.loads(line))}
                except Exception as exc:
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
