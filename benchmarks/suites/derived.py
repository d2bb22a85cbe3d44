"""1. Event-loop stall and 7. Memory: assembled from what the listing, save and upload suites recorded."""

from __future__ import annotations

from typing import Any

from benchmarks.env import Bench
from benchmarks.measure import MiB, mib, stall_figures
from benchmarks.results import Figure, Measurement, goal_check

MEMORY_GOAL_MIB = 64


def stall(bench: Bench) -> Measurement:
    sizes = bench.sizes
    m = Measurement(
        "stall",
        "Event-loop stall",
        "a ticker inside each jupyter_server process (`benchmarks/looplag.py`, loaded as a server extension) "
        "sleeps 5 ms and records how late it wakes; read over `/api/bench/looplag` around each activity",
        f"push of a {mib(sizes.stall_upload)} file (after its chunk upload), the chunk upload itself, "
        f"{sizes.repeats_for(sizes.stall_listing)} listings of a {sizes.stall_listing:,}-entry folder, "
        f"{sizes.concurrent_saves} concurrent 100 KB saves",
    )

    def get(key: str) -> dict[str, Any] | None:
        value = bench.shared.get(key)
        return value if isinstance(value, dict) else None

    activities = (
        (f"pushing {mib(sizes.stall_upload)} to the storage", "push"),
        (f"chunk upload of {mib(sizes.stall_upload)}", "upload"),
        (f"listing {sizes.stall_listing:,} entries", "listing"),
        (f"{sizes.concurrent_saves} concurrent saves", "saves"),
    )
    for label, key in activities:
        cs3, local = get(f"stall.{key}.cs3"), get(f"stall.{key}.local")
        if cs3 is None and local is None:
            m.notes.append(f"{label}: not recorded (see the suite that runs it)")
            continue
        figures = stall_figures(label, cs3, local)
        if key == "push":
            for f in figures:
                f.note = (
                    "from sending the -1 chunk to the file complete on the storage; local: the -1 chunk only"
                )
        for f in figures:
            m.add(f)
    tus = get("stall.push.cs3-tus")
    if tus is not None:
        for f in stall_figures(f"pushing {mib(sizes.stall_upload)} over tus", tus, None):
            m.add(f)
    if "cs3" in bench.unavailable:
        m.not_available("cs3sync", bench.unavailable["cs3"])
    return m


def memory(bench: Bench) -> Measurement:
    size = bench.sizes.stall_upload
    m = Measurement(
        "memory",
        "Memory",
        "peak RSS of the jupyter_server process (psutil every 10 ms and the kernel's VmHWM) minus its RSS "
        "before the upload, from the first chunk until the file is on the storage",
        f"{mib(size)} upload through the chunk protocol and its push",
    )

    def growth(label: str) -> float | None:
        value = bench.shared.get(f"memory.{label}")
        return None if not isinstance(value, int | float) else float(value)

    for label, protocol in (("cs3", "simple"), ("cs3-tus", "tus")):
        value = growth(label)
        if value is None and label in bench.unavailable:
            m.not_available(f"cs3sync ({protocol})", bench.unavailable[label])
            continue
        m.add(
            Figure(
                f"peak RSS growth, {mib(size)} upload + push ({protocol})",
                "MiB",
                None if value is None else value / MiB,
                None if growth("local") is None else growth("local") / MiB,  # type: ignore[operator]
                goal=f"< {MEMORY_GOAL_MIB} MiB",
                met=goal_check(None if value is None else value / MiB, MEMORY_GOAL_MIB),
            )
        )
    return m
