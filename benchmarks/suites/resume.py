"""5. Resumption: bytes re-sent after a connection drop at 50 %, and the time to completion after
kill -9 of the server in the middle of a push and a restart."""

from __future__ import annotations

import asyncio
import time

from benchmarks.emulator import CallMark, upload_bytes
from benchmarks.env import Bench, Target
from benchmarks.measure import MiB, mib
from benchmarks.results import Figure, Measurement

TUS_CHUNK = 16 * MiB  # c.CS3Sync.upload_chunk_size default: one PATCH per 16 MiB
KILL_PUSH_S = 10  # the throttled push of the kill -9 scenario takes this long...
KILL_AFTER_S = 3.5  # ...and the server is killed this long after the last chunk was sent


def _route(protocol: str) -> str:
    return "PATCH /data/tus/*" if protocol == "tus" else "PUT /data/simple/*"


async def drop_at_half(target: Target, size: int, protocol: str) -> tuple[int | None, float | None]:
    """Upload, with the storage dropping the connection after half the file; returns (bytes re-sent,
    seconds from the last chunk to the file being complete on the storage)."""
    assert target.admin is not None
    half = size // 2
    if protocol == "tus":
        # The drop rule counts body bytes per request: skip the PATCHes wholly before the middle.
        after, into = divmod(half, TUS_CHUNK)
    else:
        after, into = 0, half
    name = f"drop-{protocol}-{size}.bin"
    mark = CallMark(target.admin)
    await mark.start()
    await target.admin.fault("http", _route(protocol), {"type": "drop_after", "bytes": into}, 1, after=after)
    try:
        result = await target.rest.upload(name, size, seed=7)
        seen = await target.visible_at(name, size, timeout=max(120.0, size / (2 * MiB)))
    finally:
        await target.admin.clear_faults()
    await target.settle()  # the file is on the disk a moment before its PUT is answered and logged
    sent = upload_bytes(await mark.new_http())
    await target.rest.delete(name)
    visible = None if seen is None else seen[0] - result.last_chunk_sent
    return (sent - size if visible is not None else None), visible


async def kill_mid_push(bench: Bench, target: Target, size: int, protocol: str) -> dict[str, float | None]:
    """Upload, kill -9 the server while it pushes the file (the data plane is throttled so the push takes
    KILL_PUSH_S; the kill comes KILL_AFTER_S after the last chunk was sent, i.e. after the manager's
    write-through wait), restart it on the same journal and time the completion at full speed."""
    assert target.admin is not None
    name = f"kill-{protocol}-{size}.bin"
    rate = max(1, size // KILL_PUSH_S)
    mark = CallMark(target.admin)
    await mark.start()
    await target.admin.fault("http", _route(protocol), {"type": "throttle", "bytes_per_second": rate}, None)
    try:
        result = await target.rest.upload(name, size, seed=11)
        await asyncio.sleep(max(0.0, result.last_chunk_sent + KILL_AFTER_S - time.perf_counter()))
        on_storage = _size(target, name) == size
        target.server.kill9()
        killed = time.perf_counter()
    finally:
        await target.admin.clear_faults()
    restart_s = await target.restart_server()
    timeout = max(120.0, size / (2 * MiB))
    # First with no user activity at all (the journal should resume on its own after a restart)...
    seen = await target.visible_at(name, size, timeout=bench.sizes.resume_idle_wait_s)
    nudged = None
    if seen is None:
        # ...then after one unrelated small save, which starts the engine if it starts lazily.
        nudged = time.perf_counter()
        await target.rest.put("kill-nudge.txt", {"type": "file", "format": "text", "content": "x"})
        seen = await target.visible_at(name, size, timeout=timeout)
        await target.rest.delete("kill-nudge.txt")
    await target.settle()  # the file is on the disk a moment before its PUT is answered and logged
    sent = upload_bytes(await mark.new_http())
    await target.rest.delete(name)
    return {
        "restart_s": restart_s,
        "kill_to_visible_s": None if seen is None else seen[0] - killed,
        "nudge_to_visible_s": None if seen is None or nudged is None else seen[0] - nudged,
        "resumed_alone": nudged is None and seen is not None,
        "resent": None if seen is None else sent - size,
        "done_before_kill": on_storage,
    }


def _size(target: Target, name: str) -> int:
    try:
        return target.disk(name).stat().st_size
    except OSError:
        return -1


async def run(bench: Bench) -> Measurement:
    size = bench.sizes.resume
    m = Measurement(
        "resume",
        "Resumption",
        "chunk upload of a file, the emulator aborting the transfer after 50 % of the bytes (fault rule "
        "drop_after), bytes counted by the emulator's HTTP log; and kill -9 of the jupyter_server while it "
        "pushes a file (data plane throttled so the push would take 10 s; kill 3.5 s after the last chunk "
        "was sent), then a restart on the same journal and completion at full speed",
        f"{mib(size)} file; profiles cernbox (simple PUT) and ocis (tus, 16 MiB PATCHes)",
    )
    for label, protocol in (("cs3", "simple"), ("cs3-tus", "tus")):
        target = bench.target(label)
        if target is None:
            m.not_available(f"cs3sync ({protocol})", bench.unavailable.get(label, "not started"))
            continue
        try:
            resent, visible = await drop_at_half(target, size, protocol)
            goal = "≈ 0 (tus resumes)" if protocol == "tus" else "≤ file size (simple restarts the PUT)"
            limit = TUS_CHUNK if protocol == "tus" else size
            m.add(
                Figure(
                    f"{protocol}: bytes re-sent after a drop at 50 %",
                    "bytes",
                    resent,
                    goal=goal,
                    met=None if resent is None else resent <= limit,
                )
            )
            m.add(Figure(f"{protocol}: last chunk → complete on the storage, with the drop", "s", visible))
        except Exception as exc:
            m.not_available(f"cs3sync ({protocol}) drop at 50 %", f"{type(exc).__name__}: {exc}")
        if protocol not in bench.sizes.kill_protocols:
            continue
        try:
            killed = await kill_mid_push(bench, target, size, protocol)
            m.add(
                Figure(
                    f"{protocol}: kill -9 mid-push → complete on the storage",
                    "s",
                    killed["kill_to_visible_s"],
                    headline=True,
                )
            )
            m.add(Figure(f"{protocol}: of which server restart", "s", killed["restart_s"]))
            resumed = killed["resumed_alone"]
            m.add(
                Figure(
                    f"{protocol}: resumed after the restart without any user action",
                    "count",
                    1 if resumed else 0,
                    goal="1 (yes)",
                    met=bool(resumed),
                    note=f"waited {bench.sizes.resume_idle_wait_s:.0f} s",
                )
            )
            if not resumed and killed["nudge_to_visible_s"] is not None:
                m.add(
                    Figure(
                        f"{protocol}: unrelated small save after the restart → complete",
                        "s",
                        killed["nudge_to_visible_s"],
                    )
                )
            m.add(Figure(f"{protocol}: bytes re-sent after kill -9", "bytes", killed["resent"]))
            if killed["done_before_kill"]:
                m.notes.append(f"{protocol}: the push had already finished when the server was killed")
        except Exception as exc:
            m.not_available(f"cs3sync ({protocol}) kill -9", f"{type(exc).__name__}: {exc}")
    return m
