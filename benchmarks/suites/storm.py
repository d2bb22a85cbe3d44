"""8. Offline storm: N saves of one notebook with the storage down, then reconnect: how many uploads
reach the storage (goal: 1, thanks to coalescing) and how long the journal takes to drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from benchmarks.env import Bench, Target
from benchmarks.rest import RestError, make_notebook
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

NAME = "storm.ipynb"
SIZE = 20_000


async def saves(target: Target, count: int, budget_s: float = float("inf")) -> tuple[list[float], int, int]:
    """Up to ``count`` saves with changing content, stopping after ``budget_s``: seconds per successful
    save, failures, and the index of the last save made."""
    notebook = make_notebook(SIZE, "storm")
    times: list[float] = []
    failures = 0
    started = time.perf_counter()
    last = -1
    for i in range(count):
        if time.perf_counter() - started > budget_s:
            break
        last = i
        notebook["cells"][0]["source"][0] = f"# storm save {i}\n"
        t0 = time.perf_counter()
        try:
            await target.rest.save_notebook(NAME, notebook)
            times.append(time.perf_counter() - t0)
        except RestError:
            failures += 1
    return times, failures, last


def _final_on_disk(target: Target, marker: str) -> bool:
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        data = json.loads(target.disk(NAME).read_text())
        return data["cells"][0]["source"][0].startswith(marker) or marker in "".join(
            data["cells"][0]["source"]
        )
    return False


async def run(bench: Bench) -> Measurement:
    n = bench.sizes.storm
    m = Measurement(
        "storm",
        "Offline storm",
        f"{n:,} sequential `PUT /api/contents/{NAME}` with changing content while the emulator process is "
        "stopped, then the emulator is started again (same ports, same data)",
        f"{n:,} saves of a {SIZE // 1000} KB notebook",
    )
    local = bench.target("local")
    cs3 = bench.target("cs3")
    if cs3 is None or cs3.emulator is None or cs3.admin is None:
        m.not_available("cs3sync", bench.unavailable.get("cs3", "not started"))
        return m
    listed_after: float | None = None
    try:
        await saves(cs3, 1)  # the notebook exists on the storage before the outage
        for _ in range(200):
            if _final_on_disk(cs3, "# storm save 0"):
                break
            await asyncio.sleep(0.05)
        cs3.emulator.stop()
        offline_times, failures, last = await saves(cs3, n, bench.sizes.storm_budget_s)
        made = last + 1
        marker = f"# storm save {last}\n"
        await cs3.emulator.start()
        reconnected = time.perf_counter()
        drained = None
        # What JupyterLab does meanwhile: its file browser lists the open folder (here every 0.5 s until
        # one listing succeeds); a successful request tells the engine the storage is back.
        while time.perf_counter() - reconnected < bench.sizes.drain_timeout:
            try:
                await cs3.rest.get("")
                listed_after = time.perf_counter() - reconnected
                break
            except Exception:
                await asyncio.sleep(0.5)
        while time.perf_counter() - reconnected < bench.sizes.drain_timeout:
            if _final_on_disk(cs3, marker):
                drained = time.perf_counter() - reconnected
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # anything still in flight shows up in the call log
        calls = await cs3.admin.calls()
        uploads = sum(
            1 for c in calls if c.get("method") == "InitiateFileUpload" and NAME in json.dumps(c, default=str)
        )
    except Exception as exc:
        m.not_available("cs3sync", f"{type(exc).__name__}: {exc}")
        return m
    local_times: list[float] = []
    if local is not None:
        local_times, _, _ = await saves(local, made)
    if made < n:
        m.notes.append(
            f"Only {made:,} of {n:,} offline saves were made: the run stops the storm after "
            f"{bench.sizes.storm_budget_s:.0f} s of saving (see the offline save latency)."
        )
    m.add(
        Figure(
            "save p50 with the storage down",
            "ms",
            (median(offline_times) or 0) * 1000 if offline_times else None,
            (median(local_times) or 0) * 1000 if local_times else None,
            headline=True,
        )
    )
    m.add(
        Figure(
            "save p99 with the storage down",
            "ms",
            (p99(offline_times) or 0) * 1000 if offline_times else None,
            (p99(local_times) or 0) * 1000 if local_times else None,
        )
    )
    m.add(Figure("offline saves made", "count", made, baseline=n, baseline_label="planned"))
    m.add(Figure("saves refused while offline", "count", failures, goal="0", met=failures == 0))
    m.add(Figure("uploads performed after reconnect", "count", uploads, goal="1", met=uploads == 1))
    probe = bench.sizes.offline_probe_s
    m.add(
        Figure(
            "reconnect → last save on the storage (drain)",
            "s",
            drained,
            headline=True,
            goal="≤ 2 s",
            met=None if drained is None else drained <= 2.0,
            note="a folder listing is requested at once, as JupyterLab's file browser does; offline probe "
            + ("every 15 s (default)" if probe is None else f"every {probe:g} s"),
        )
    )
    if listed_after is not None:
        m.add(Figure("reconnect → first listing answered", "s", listed_after))
    if drained is None:
        m.notes.append(
            f"The last save had not reached the storage {bench.sizes.drain_timeout:.0f} s after reconnect."
        )
    return m
