"""6. Journal: enqueue latency (synchronous=FULL), claim latency with many pending entries, and the
time of ``python -m cs3sync status`` on a big journal. In-process, on a journal in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.env import Bench
from benchmarks.procs import REPO, base_env
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

BLOB_SAMPLES = 20


def _ms(values: list[float], q: str) -> float | None:
    if not values:
        return None
    value = median(values) if q == "p50" else p99(values)
    return None if value is None else value * 1000


async def run(bench: Bench) -> Measurement:
    sizes = bench.sizes
    pending = sizes.journal_pending
    m = Measurement(
        "journal",
        "Journal",
        "`Journal.enqueue(save, …)` of distinct paths (each one fsync'd manifest line + one committed "
        f"transaction, WAL, synchronous=FULL), `Journal.claim()` x {sizes.claims} with N entries pending, "
        "`python -m cs3sync status` on the resulting journal (a fresh process)",
        f"{sizes.journal_enqueue_n} timed enqueues; pending N = "
        + ", ".join(f"{n:,}" for n in pending)
        + f"; 100 KB blob store x {BLOB_SAMPLES}",
    )
    try:
        from cs3sync.journal import Journal, Op
    except ImportError as exc:
        m.not_available("cs3sync", f"cs3sync.journal: {exc}")
        return m
    directory = bench.workdir / "journal-bench"
    enqueue_s: list[float] = []
    blob_s: list[float] = []
    claims: dict[int, list[float]] = {}
    try:
        journal = await Journal.open(directory, owner=True)
        try:
            for _ in range(BLOB_SAMPLES):
                data = os.urandom(100_000)
                t0 = time.perf_counter()
                await journal.store_blob(data)
                blob_s.append(time.perf_counter() - t0)
            blob = await journal.store_blob(b'{"cells": []}')
            next_index = 0
            pending_now = 0
            for target_pending in sorted(pending):
                while pending_now < target_pending:
                    path = f"/bench/dir{next_index % 100}/nb-{next_index:06d}.ipynb"
                    t0 = time.perf_counter()
                    await journal.enqueue(Op.SAVE, path, blob=blob)
                    if len(enqueue_s) < sizes.journal_enqueue_n:
                        enqueue_s.append(time.perf_counter() - t0)
                    next_index += 1
                    pending_now += 1
                times = []
                claim_started = time.perf_counter()
                for _ in range(sizes.claims):
                    if times and time.perf_counter() - claim_started > sizes.claim_budget_s:
                        break
                    t0 = time.perf_counter()
                    entry = await journal.claim("bench", lease_seconds=600)
                    times.append(time.perf_counter() - t0)
                    if entry is not None:
                        await journal.mark_done(entry.id)
                        pending_now -= 1
                claims[target_pending] = times
        finally:
            await journal.close()
    except Exception as exc:
        m.not_available("cs3sync", f"journal: {type(exc).__name__}: {exc}")
    if enqueue_s:
        for q in ("p50", "p99"):
            m.add(Figure(f"enqueue {q}", "ms", _ms(enqueue_s, q), headline=q == "p50"))
        m.add(Figure("store a 100 KB blob (tmp, fsync, rename, fsync dir) p50", "ms", _ms(blob_s, "p50")))
    for n, times in claims.items():
        if len(times) < sizes.claims:
            m.notes.append(
                f"{n:,} pending: {len(times)} of {sizes.claims} claims timed (cut after "
                f"{sizes.claim_budget_s:.0f} s)"
            )
        m.add(Figure(f"claim with {n:,} pending: p50", "ms", _ms(times, "p50"), headline=True))
        m.add(Figure(f"claim with {n:,} pending: p99", "ms", _ms(times, "p99")))
    if claims:
        for flags, what in (((), "default view: counts + at most 50 rows"), (("--json",), "every entry")):
            status_s, baseline_s, error = status_time(bench, directory, flags)
            command = " ".join(("`python -m cs3sync status", *flags)) + "`"
            if error:
                m.not_available(command, error)
                continue
            m.add(
                Figure(
                    f"{command} on {max(claims):,} pending entries",
                    "ms",
                    status_s * 1000 if status_s is not None else None,
                    baseline_s * 1000 if baseline_s is not None else None,
                    baseline_label="`python -c pass`",
                    headline=not flags,
                    note=what,
                )
            )
    return m


def status_time(
    bench: Bench, directory: object, flags: tuple[str, ...] = ()
) -> tuple[float | None, float | None, str | None]:
    env = base_env(bench.workdir / "cli")
    argv = [sys.executable, "-m", "cs3sync", "status", "--journal-dir", str(directory), *flags]
    times = []
    for _ in range(bench.sizes.status_runs):
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=120)
        times.append(time.perf_counter() - t0)
        if done.returncode not in (0, 1):
            return None, None, (done.stderr or done.stdout).decode(errors="replace")[-300:]
    baseline = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, timeout=60)
        baseline.append(time.perf_counter() - t0)
    return median(times), median(baseline), None
