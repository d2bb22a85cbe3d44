"""3b. Writes, three ways: local disk, cs3-jupyter 0.2.0 and cs3sync side by side. Creating many small
files with 8 requests in flight (a folder uploaded from the file browser, a script writing results through
the API), reading a file's metadata right after saving it (what JupyterLab does around every save), a
chunked upload of 32 MiB (cs3-jupyter re-sends the whole file with every chunk, so no bigger), and the
event-loop stall of saving and opening a 50,000-cell notebook."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.emulator import CallMark
from benchmarks.env import Bench, Target
from benchmarks.measure import lag_read, lag_reset, mib, stall_figures
from benchmarks.rest import make_notebook
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

PEER = "cs3-jupyter"
CREATE_GOAL = 2.0  # x local
GET_MARGIN_MS = 1.0  # ms over local
CHUNK_GOAL = 1.1  # x local


def ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def big_notebook(cells: int) -> dict[str, Any]:
    """A notebook of ``cells`` one-line code cells (50,000 cells is ~5.7 MB of JSON)."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i:06d}",
                "metadata": {},
                "outputs": [],
                "source": [f"value_{i} = {i} * 2  # computed\n"],
            }
            for i in range(cells)
        ],
    }


async def bulk_create(target: Target, folder: str, count: int, in_flight: int) -> tuple[float, int]:
    """``count`` new 100 B files in a new folder, ``in_flight`` PUTs at a time: (wall seconds, failures)."""
    await target.rest.mkdir(folder)
    queue = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in queue:
            try:
                await target.rest.put(
                    f"{folder}/file-{i:05d}.txt", {"type": "file", "format": "text", "content": "x" * 100}
                )
            except Exception:
                failures += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - t0, failures


async def get_after_save(target: Target, path: str, count: int) -> list[float]:
    """Save a 100 KB notebook, then time ``GET ?content=0`` of it, ``count`` times: seconds per GET."""
    notebook = make_notebook(100_000, "get-after-save")
    times = []
    for i in range(count):
        notebook["cells"][0]["source"][0] = f"# save {i}\n"
        await target.rest.save_notebook(path, notebook)
        t0 = time.perf_counter()
        await target.rest.get(path, content=False)
        times.append(time.perf_counter() - t0)
    return times


async def run(bench: Bench) -> Measurement:
    sizes = bench.sizes
    n, flight = sizes.bulk_files, sizes.bulk_in_flight
    m = Measurement(
        "writes",
        "Writes: local disk, cs3-jupyter and cs3sync",
        f"{n:,} `PUT`s of new 100 B text files into a new folder, {flight} in flight; then, once cs3sync's "
        f"journal has nothing pending, `GET ?content=0` right after each of {sizes.get_after_save_n} saves "
        f"of a 100 KB notebook; sequential 1 MiB chunks of a {mib(sizes.peer_upload)} upload (once the "
        "journal has nothing pending again); loop lag while "
        "saving (`PUT`) and opening (`GET`) a "
        f"{sizes.big_notebook_cells:,}-cell notebook",
        f"{n:,} files; {sizes.get_after_save_n} saves; {mib(sizes.peer_upload)}; "
        f"{sizes.big_notebook_cells:,} cells",
    )
    targets = [t for t in (bench.target(label) for label in ("local", PEER, "cs3")) if t is not None]
    for label in ("cs3", PEER):
        if bench.target(label) is None:
            m.not_available(label, bench.unavailable.get(label, "not started"))

    walls: dict[str, float] = {}
    rpcs: dict[str, float] = {}
    gets: dict[str, list[float]] = {}
    chunks: dict[str, list[float]] = {}
    stall_save: dict[str, dict[str, Any]] = {}
    stall_open: dict[str, dict[str, Any]] = {}
    notebook = big_notebook(sizes.big_notebook_cells)
    for target in targets:
        label = target.label
        try:
            mark = CallMark(target.admin) if target.admin else None
            if mark:
                await mark.start()
            walls[label], failed = await bulk_create(target, "bulk", n, flight)
            if failed:
                m.notes.append(f"{label}: {failed} of {n:,} creates failed")
            if mark:
                rpcs[label] = len(await mark.new_calls()) / n
        except Exception as exc:
            m.not_available(label, f"bulk create: {type(exc).__name__}: {exc}")
        try:
            # Once the creates above are on the storage: else each GET shares the loop and the cores
            # with cs3sync's engine still applying them (the figure is a GET right after a save).
            if not await target.settle():
                m.notes.append(
                    f"{label}: the journal still had writes pending when the GETs after saves began"
                )
            gets[label] = await get_after_save(target, "get-after-save.ipynb", sizes.get_after_save_n)
        except Exception as exc:
            m.not_available(label, f"GET after save: {type(exc).__name__}: {exc}")
        try:
            # After the saves above are on the storage, as between suites: else cs3sync's chunks share
            # the loop and the cores with its engine still applying them.
            if not await target.settle():
                m.notes.append(f"{label}: the journal still had writes pending when the chunked upload began")
            chunks[label] = (await target.rest.upload("chunked.bin", sizes.peer_upload, seed=7)).chunk_ms
        except Exception as exc:
            m.not_available(label, f"chunked upload: {type(exc).__name__}: {exc}")
        try:
            await lag_reset(target)
            await target.rest.save_notebook("big.ipynb", notebook)
            stall_save[label] = await lag_read(target)
            await lag_reset(target)
            await target.rest.get("big.ipynb")
            stall_open[label] = await lag_read(target)
        except Exception as exc:
            m.not_available(label, f"{sizes.big_notebook_cells:,}-cell notebook: {type(exc).__name__}: {exc}")

    wall, wall_local = ms(walls.get("cs3")), ms(walls.get("local"))
    m.add(
        Figure(
            f"create {n:,} small files, {flight} in flight: wall time",
            "ms",
            wall,
            wall_local,
            peer=ms(walls.get(PEER)),
            goal=f"≤ {CREATE_GOAL:g}x local",
            met=None if wall is None or wall_local is None else wall <= CREATE_GOAL * wall_local,
            headline=True,
        )
    )
    m.add(Figure(f"create {n:,} small files: RPCs per file", "count", rpcs.get("cs3"), peer=rpcs.get(PEER)))
    get50, get50_local = ms(median(gets.get("cs3") or [])), ms(median(gets.get("local") or []))
    m.add(
        Figure(
            "`GET ?content=0` right after a save: p50",
            "ms",
            get50,
            get50_local,
            peer=ms(median(gets.get(PEER) or [])),
            goal=f"≤ local + {GET_MARGIN_MS:g} ms",
            met=None if get50 is None or get50_local is None else get50 <= get50_local + GET_MARGIN_MS,
        )
    )
    m.add(
        Figure(
            "`GET ?content=0` right after a save: p99",
            "ms",
            ms(p99(gets.get("cs3") or [])),
            ms(p99(gets.get("local") or [])),
            peer=ms(p99(gets.get(PEER) or [])),
        )
    )
    chunk50, chunk50_local = median(chunks.get("cs3") or []), median(chunks.get("local") or [])
    m.add(
        Figure(
            f"chunked upload of {mib(sizes.peer_upload)}: chunk p50 (client)",
            "ms",
            chunk50,
            chunk50_local,
            peer=median(chunks.get(PEER) or []),
            goal=f"≤ {CHUNK_GOAL:g}x local",
            met=None if chunk50 is None or chunk50_local is None else chunk50 <= CHUNK_GOAL * chunk50_local,
        )
    )
    for what, stalls in (("saving", stall_save), ("opening", stall_open)):
        label = f"{what} a {sizes.big_notebook_cells:,}-cell notebook"
        for figure in stall_figures(label, stalls.get("cs3"), stalls.get("local"), stalls.get(PEER)):
            m.add(figure)

        def full_gcs(side: str, stalls: dict[str, dict[str, Any]] = stalls) -> float | None:
            value = stalls.get(side, {}).get("full_gcs")
            return None if value is None else float(value)

        m.add(
            Figure(
                f"{label}: full garbage collections in the server",
                "count",
                full_gcs("cs3"),
                full_gcs("local"),
                peer=full_gcs(PEER),
                note="each walks the whole heap holding the GIL (100 ms and more here): the stall's "
                "main cause, a count independent of the load",
            )
        )
    return m
