"""3. Save latency: 100 KB and 5 MB notebooks, online; 50 concurrent saves (also the stall figure);
and 100 KB saves while four big uploads are being pushed to the storage."""

from __future__ import annotations

import asyncio
import time

from benchmarks.emulator import CallMark
from benchmarks.env import Bench, Target
from benchmarks.measure import lag_read, lag_reset, mib
from benchmarks.rest import make_notebook
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

PEER = "cs3-jupyter"  # the target label of the package cs3sync replaces (benchmarks/peer.py)
SAVE_MARGIN_MS = 5.0  # a 100 KB save may take this much longer than on the local disk
CONCURRENT_GOAL = 1.5


def _kb(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size / 1000:g} KB"


async def timed_saves(target: Target, path: str, size: int, count: int) -> list[float]:
    """``count`` sequential saves of one notebook, each with different content; seconds per save."""
    base = make_notebook(size, "v0")
    times = []
    for i in range(count):
        base["cells"][0]["source"][0] = f"# save {i} of {path}\n"
        t0 = time.perf_counter()
        await target.rest.save_notebook(path, base)
        times.append(time.perf_counter() - t0)
    return times


async def concurrent_saves(target: Target, count: int, size: int) -> tuple[float, list[float], list[str]]:
    """``count`` saves of distinct notebooks at once, in a folder created just before: wall seconds,
    seconds of each successful save, and the errors of the others."""
    notebook = make_notebook(size, "concurrent")

    async def one(i: int) -> float:
        t0 = time.perf_counter()
        await target.rest.save_notebook(f"concurrent/nb-{i:03d}.ipynb", notebook)
        return time.perf_counter() - t0

    await target.rest.mkdir("concurrent")
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    wall = time.perf_counter() - t0
    times = [o for o in outcomes if isinstance(o, float)]
    errors = [str(o) for o in outcomes if isinstance(o, BaseException)]
    return wall, times, errors


def ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


async def run(bench: Bench) -> Measurement:
    sizes = bench.sizes
    m = Measurement(
        "save",
        "Save latency",
        "`PUT /api/contents/<nb>.ipynb` with a notebook model, sequential saves of one notebook with "
        f"changing content; {sizes.concurrent_saves} concurrent saves of distinct notebooks; then 100 KB "
        f"saves while {sizes.busy_uploads} files uploaded through the chunk protocol are pushed",
        f"{_kb(sizes.save_small)} notebook x {sizes.save_small_n}, {_kb(sizes.save_large)} notebook x "
        f"{sizes.save_large_n}; {sizes.concurrent_saves} x {_kb(sizes.save_small)}; "
        f"{sizes.busy_uploads} x {mib(sizes.busy_upload)} uploads",
    )
    local = bench.target("local")
    cs3 = bench.target("cs3")
    if cs3 is None:
        m.not_available("cs3sync", bench.unavailable.get("cs3", "not started"))
    if bench.target(PEER) is None:
        m.not_available(PEER, bench.unavailable.get(PEER, "not started"))
    targets = [t for t in (local, cs3, bench.target(PEER)) if t is not None]

    for size, count in ((sizes.save_small, sizes.save_small_n), (sizes.save_large, sizes.save_large_n)):
        label = _kb(size)
        times: dict[str, list[float]] = {}
        rpcs: dict[str, float] = {}
        for target in targets:
            try:
                path = f"save-{label.replace(' ', '')}.ipynb"
                await timed_saves(target, path, size, 1)  # create it first: later saves are overwrites
                mark = CallMark(target.admin) if target.admin else None
                if mark:
                    await mark.start()
                times[target.label] = await timed_saves(target, path, size, count)
                if mark:
                    calls = await mark.new_calls()
                    rpcs[target.label] = len(calls) / count
                    names = sorted({str(c.get("method", "?")) for c in calls})
                    m.notes.append(f"{target.label}, {label} save: RPCs seen: {', '.join(names) or 'none'}")
            except Exception as exc:
                m.not_available(target.label, f"{label} saves: {type(exc).__name__}: {exc}")
        cs3_t, local_t, peer_t = times.get("cs3"), times.get("local"), times.get(PEER)
        p50, p50_local = ms(median(cs3_t or [])), ms(median(local_t or []))
        p50_peer = ms(median(peer_t or []))
        small = size == sizes.save_small
        m.add(
            Figure(
                f"{label} notebook: save p50",
                "ms",
                p50,
                p50_local,
                headline=True,
                peer=p50_peer,
                goal=f"≤ local + {SAVE_MARGIN_MS:g} ms and < {PEER}" if small else None,
                met=(
                    None
                    if not small or p50 is None or p50_local is None
                    else p50 <= p50_local + SAVE_MARGIN_MS and (p50_peer is None or p50 < p50_peer)
                ),
            )
        )
        p99_cs3 = ms(p99(cs3_t or []))
        m.add(
            Figure(
                f"{label} notebook: save p99",
                "ms",
                p99_cs3,
                ms(p99(local_t or [])),
                peer=ms(p99(peer_t or [])),
                goal="≤ 2x our p50" if small else None,
                met=None if not small or p99_cs3 is None or p50 is None else p99_cs3 <= 2 * p50,
            )
        )
        m.add(Figure(f"{label} notebook: RPCs per save", "count", rpcs.get("cs3"), peer=rpcs.get(PEER)))
        bench.shared[f"save.idle.{size}"] = {"cs3": cs3_t, "local": local_t}

    # 50 concurrent saves (the stall figure of measurement 1 comes from here).
    walls: dict[str, float] = {}
    each: dict[str, list[float]] = {}
    failed: dict[str, float] = {}
    for target in targets:
        try:
            await lag_reset(target)
            walls[target.label], each[target.label], errors = await concurrent_saves(
                target, sizes.concurrent_saves, sizes.save_small
            )
            bench.shared[f"stall.saves.{target.label}"] = await lag_read(target)
            failed[target.label] = len(errors)
            if errors:
                m.notes.append(f"{target.label}: {len(errors)} concurrent saves failed, e.g. {errors[0]}")
        except Exception as exc:
            m.not_available(target.label, f"concurrent saves: {type(exc).__name__}: {exc}")
    n = sizes.concurrent_saves
    m.add(
        Figure(
            f"{n} concurrent saves: failed",
            "count",
            failed.get("cs3"),
            failed.get("local"),
            peer=failed.get(PEER),
            goal="0",
            met=None if "cs3" not in failed else failed["cs3"] == 0,
        )
    )
    wall, wall_local = ms(walls.get("cs3")), ms(walls.get("local"))
    m.add(
        Figure(
            f"{n} concurrent saves: wall time",
            "ms",
            wall,
            wall_local,
            peer=ms(walls.get(PEER)),
            goal=f"≤ {CONCURRENT_GOAL:g}x local",
            met=None if wall is None or wall_local is None else wall <= CONCURRENT_GOAL * wall_local,
        )
    )
    m.add(
        Figure(
            f"{n} concurrent saves: p99 per save",
            "ms",
            ms(p99(each.get("cs3", []))),
            ms(p99(each.get("local", []))),
            peer=ms(p99(each.get(PEER, []))),
        )
    )

    # Small saves while big uploads are pushed (cs3sync only: the local manager has nothing to push).
    if cs3 is not None:
        try:
            busy = await saves_while_pushing(bench, cs3)
            idle = bench.shared.get(f"save.idle.{sizes.save_small}", {})
            idle_cs3 = median(idle.get("cs3") or []) if isinstance(idle, dict) else None
            times = busy["times"]
            label = f"100 KB save while {sizes.busy_uploads} x {mib(sizes.busy_upload)} push"
            m.add(
                Figure(
                    f"{label}: p50",
                    "ms",
                    ms(median(times)),
                    ms(idle_cs3),
                    baseline_label="cs3sync idle",
                    headline=True,
                )
            )
            m.add(
                Figure(
                    f"{label}: p99",
                    "ms",
                    ms(p99(times)),
                    ms(p99(idle.get("cs3") or [])) if isinstance(idle, dict) else None,
                    baseline_label="cs3sync idle",
                )
            )
            slowest = max(times) if times else None
            m.add(
                Figure(
                    f"{label}: slowest",
                    "ms",
                    ms(slowest),
                    sizes.busy_push_s * 1000,
                    baseline_label="one push",
                    goal="well under one push (no save waits behind a big transfer)",
                    met=None if slowest is None else slowest < sizes.busy_push_s / 2,
                )
            )
            m.notes.append(
                f"Saves during the push window ({busy['window']:.1f} s; the emulator's data plane "
                f"throttled to {mib(sizes.busy_upload // sizes.busy_push_s)}/s per transfer so each push "
                f"takes {sizes.busy_push_s} s): "
                f"{len(busy['times'])} saves were made; {busy['pushed']} of {sizes.busy_uploads} uploads had "
                "reached the storage when the saves stopped."
            )
        except Exception as exc:
            m.not_available("cs3sync", f"saves while pushing: {type(exc).__name__}: {exc}")
    return m


async def saves_while_pushing(bench: Bench, cs3: Target) -> dict[str, object]:
    sizes = bench.sizes
    assert cs3.admin is not None
    protocol_route = "PATCH /data/tus/*" if cs3.tus else "PUT /data/simple/*"
    rate = sizes.busy_upload // sizes.busy_push_s
    await cs3.admin.fault("http", protocol_route, {"type": "throttle", "bytes_per_second": rate}, None)
    try:
        await cs3.rest.mkdir("busy")
        names = [f"busy/big-{i}.bin" for i in range(sizes.busy_uploads)]
        # All at once, so their last chunks (and pushes) start together.
        await asyncio.gather(
            *(cs3.rest.upload(n, sizes.busy_upload, seed=100 + i) for i, n in enumerate(names))
        )
        window_start = time.perf_counter()
        notebook = make_notebook(sizes.save_small, "busy")
        times: list[float] = []
        deadline = window_start + sizes.busy_save_budget_s
        pushed = 0
        while time.perf_counter() < deadline and len(times) < 200:
            notebook["cells"][0]["source"][0] = f"# busy save {len(times)}\n"
            t0 = time.perf_counter()
            await cs3.rest.save_notebook("busy/small.ipynb", notebook)
            times.append(time.perf_counter() - t0)
            pushed = sum(1 for name in names if _size(cs3, name) == sizes.busy_upload)
            if pushed == len(names):
                break
        window = time.perf_counter() - window_start
    finally:
        await cs3.admin.clear_faults()
    # Let the remaining pushes finish (at full speed now) so they do not count in the next figures.
    for name in names:
        await cs3.wait_visible(name, sizes.busy_upload, timeout=60.0)
        await cs3.rest.delete(name)
    return {"times": times, "window": window, "pushed": pushed}


def _size(target: Target, name: str) -> int:
    try:
        return target.disk(name).stat().st_size
    except OSError:
        return -1
