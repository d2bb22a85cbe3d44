"""What the figures were measured on: cores, memory, CPU, OS, Python and package versions."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "cs3sync",
    "jupyter_server",
    "tornado",
    "httpx",
    "grpcio",
    "protobuf",
    "cs3apis",
    "aiosqlite",
    "aiohttp",
    "anyio",
    "psutil",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def source_revision() -> dict[str, Any]:
    """The commit measured, and whether the work tree had uncommitted changes to the code under test."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    snapshot = os.environ.get("CS3SYNC_BENCH_COMMIT")
    if snapshot:  # python -m benchmarks --snapshot: a clean export of that commit
        return {"commit": snapshot, "uncommitted_changes": False}
    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "cs3sync", "contents")
    return {"commit": commit or None, "uncommitted_changes": bool(dirty) if commit else None}


def describe() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": _memory_bytes(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **source_revision(),
    }
