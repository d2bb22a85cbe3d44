"""Measuring helpers shared by the suites: RSS sampling of a server process, loop-lag snapshots."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.env import Target
from benchmarks.results import Figure, goal_check

MiB = 1024 * 1024
STALL_GOAL_MS = 20.0


class RssSampler:
    """Peak resident memory of one process while a block runs: sampled every 10 ms from a thread, and
    the kernel's own high-water mark (``VmHWM``, reset through ``clear_refs``) when Linux allows it."""

    def __init__(self, pid: int, interval: float = 0.01):
        self.pid = pid
        self.interval = interval
        self.process = psutil.Process(pid)
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hwm_reset = False

    def _status_kib(self, key: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def start(self) -> None:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self._hwm_reset = True
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        """Stop sampling; returns the peak growth over the baseline in bytes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._hwm_reset:
            hwm = self._status_kib("VmHWM")
            if hwm is not None:
                self.peak = max(self.peak, hwm * 1024)
        return self.peak - self.baseline


async def lag_reset(target: Target) -> None:
    await target.rest.bench(reset=True)


async def lag_read(target: Target) -> dict[str, Any]:
    return await target.rest.bench()


def server_times(summary: dict[str, Any], method: str, path_suffix: str) -> list[float]:
    """Server-side milliseconds of the recorded requests to ``/api/contents/<path_suffix>``."""
    return [ms for (m, p, status, ms) in summary["requests"] if m == method and p.endswith(path_suffix)]


def stall_figures(
    label: str, cs3: dict[str, Any] | None, local: dict[str, Any] | None, peer: dict[str, Any] | None = None
) -> list[Figure]:
    """Max and p99 loop lag for one activity, cs3sync vs local (and cs3-jupyter when measured), and the
    max split in two (`benchmarks/looplag.py`): the part inside jupyter_server's own handler work, the same
    for every manager, and the rest, the manager's, which the 20 ms goal is about."""

    def get(summary: dict[str, Any] | None, key: str) -> float | None:
        return None if summary is None or key not in summary else float(summary[key])

    manager = get(cs3, "manager_max_ms")
    return [
        Figure(
            f"{label}: max loop lag",
            "ms",
            get(cs3, "max_ms"),
            get(local, "max_ms"),
            peer=get(peer, "max_ms"),
            note="everything; split in the next two figures",
        ),
        Figure(
            f"{label}: max loop lag caused by the contents manager",
            "ms",
            manager,
            get(local, "manager_max_ms"),
            peer=get(peer, "manager_max_ms"),
            goal=f"< {STALL_GOAL_MS:.0f} ms",
            met=goal_check(manager, STALL_GOAL_MS),
            note="outside jupyter_server's own handler work: the manager on the loop, its threads' GIL "
            "holds, the garbage collections its allocations set off",
        ),
        Figure(
            f"{label}: max loop lag in jupyter_server's own handler work",
            "ms",
            get(cs3, "server_max_ms"),
            get(local, "server_max_ms"),
            peer=get(peer, "server_max_ms"),
            note="JSON parse of the request body, JSON encoding and ETag of the reply (same code for "
            "every manager; its cost grows with the server's heap through garbage collection)",
        ),
        Figure(f"{label}: p99 loop lag", "ms", get(cs3, "p99_ms"), get(local, "p99_ms")),
    ]


def mib(n: int) -> str:
    if n >= 1024 * MiB:
        return f"{n / (1024 * MiB):g} GiB"
    return f"{n / MiB:.1f} MiB" if n < 10 * MiB and n % MiB else f"{n / MiB:,.0f} MiB"


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
