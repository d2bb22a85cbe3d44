"""2. Listing: folders of 1,000 / 10,000 / 50,000 entries, time per listing and RPCs per listing."""

from __future__ import annotations

import time

from benchmarks.emulator import CallMark
from benchmarks.env import Bench, Target
from benchmarks.measure import lag_read, lag_reset
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

#: Issue 14: as fast as local up to 10,000 entries; 50,000 (where the emulator's own cost shows) ≤ 1.5x.
LISTING_GOAL = 1.0
LISTING_GOAL_HUGE = 1.5
HUGE = 50_000


def listing_goal(count: int) -> float:
    return LISTING_GOAL_HUGE if count >= HUGE else LISTING_GOAL


def populate(target: Target, folder: str, count: int) -> None:
    """Create ``count`` small files directly on the storage's disk (for CS3: files the emulator has not
    seen yet, like files written by EOS clients)."""
    directory = target.disk(folder)
    directory.mkdir(parents=True, exist_ok=True)
    body = b"x" * 100
    for i in range(count):
        (directory / f"file-{i:06d}.txt").write_bytes(body)


async def list_once(target: Target, folder: str) -> float:
    t0 = time.perf_counter()
    model = await target.rest.get(folder)
    seconds = time.perf_counter() - t0
    if not isinstance(model.get("content"), list):
        raise RuntimeError(f"{folder} did not list as a directory")
    return seconds


async def cold_listing(target: Target, folder: str, count: int, m: Measurement) -> float:
    """The first listing of a folder the storage has not listed before. A failure (e.g. a deadline on
    a huge folder) is noted and the listing retried (up to 3 times) so the warm figures still come."""
    for attempt in range(1, 4):
        t0 = time.perf_counter()
        try:
            await list_once(target, folder)
            return time.perf_counter() - t0
        except Exception as exc:
            m.notes.append(
                f"{target.label}, {count:,} entries: cold listing attempt {attempt} failed after "
                f"{time.perf_counter() - t0:.1f} s: {type(exc).__name__}: {exc}"
            )
    raise RuntimeError(f"{folder} could not be listed in 3 attempts")


async def run(bench: Bench) -> Measurement:
    sizes = bench.sizes
    m = Measurement(
        "listing",
        "Listing big folders",
        "`GET /api/contents/<folder>?content=1`: one cold listing, then "
        "timed repeats: "
        + ", ".join(f"{sizes.repeats_for(n)} for {n:,}" for n in sizes.listing)
        + " (the files were created directly on the storage's disk)",
        "folders of " + ", ".join(f"{n:,}" for n in sizes.listing) + " files of 100 B",
    )
    local = bench.target("local")
    cs3 = bench.target("cs3")
    if cs3 is None:
        m.not_available("cs3sync", bench.unavailable.get("cs3", "not started"))
    for count in sizes.listing:
        folder = f"list{count}"
        repeats = sizes.repeats_for(count)
        stall = count == sizes.stall_listing
        results: dict[str, tuple[float, list[float]]] = {}
        rpcs: float | None = None
        for target in (t for t in (local, cs3) if t is not None):
            try:
                populate(target, folder, count)
                first = await cold_listing(target, folder, count, m)
                mark = CallMark(target.admin) if target.admin else None
                if mark:
                    await mark.start()
                if stall:
                    await lag_reset(target)
                times = [await list_once(target, folder) for _ in range(repeats)]
                if mark:
                    calls = await mark.new_calls()
                    rpcs = len(calls) / repeats
                    names = sorted({str(c.get("method", "?")) for c in calls})
                    m.notes.append(
                        f"{count:,} entries: RPCs during the warm listings: {', '.join(names) or 'none'}"
                    )
                if stall:
                    bench.shared[f"stall.listing.{target.label}"] = await lag_read(target)
                results[target.label] = (first, times)
            except Exception as exc:
                m.not_available(target.label, f"{count:,} entries: {type(exc).__name__}: {exc}")
        cs3_r = results.get("cs3")
        local_r = results.get("local")
        cs3_med = median(cs3_r[1]) if cs3_r else None
        local_med = median(local_r[1]) if local_r else None
        ratio = cs3_med / local_med if cs3_med is not None and local_med else None
        goal = listing_goal(count)
        m.add(
            Figure(
                f"{count:,} entries: time per listing",
                "ms",
                cs3_med * 1000 if cs3_med is not None else None,
                local_med * 1000 if local_med is not None else None,
                goal=f"≤ {goal}x local",
                met=None if ratio is None else ratio <= goal,
            )
        )
        m.add(
            Figure(
                f"{count:,} entries: p99 listing",
                "ms",
                p99(cs3_r[1]) * 1000 if cs3_r else None,
                p99(local_r[1]) * 1000 if local_r else None,
            )
        )
        m.add(
            Figure(
                f"{count:,} entries: first (cold) listing",
                "ms",
                cs3_r[0] * 1000 if cs3_r else None,
                local_r[0] * 1000 if local_r else None,
            )
        )
        m.add(
            Figure(
                f"{count:,} entries: RPCs per listing",
                "count",
                rpcs,
                goal="1 RPC",
                met=None if rpcs is None else rpcs <= 1,
            )
        )
    return m
