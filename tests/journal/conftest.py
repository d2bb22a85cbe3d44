"""Fixtures for journal tests: a controllable clock and an owned journal in a temporary directory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cs3sync.journal import Journal


class Clock:
    """Injectable time: tests move it explicitly instead of sleeping. It starts at the real time because
    gc compares it with file modification times."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local_mounts(tmp_path: Path) -> Path:
    """A mount table saying everything is on a local disk (the real one may say otherwise in CI)."""
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw,relatime 0 0\n")
    return mounts


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
async def journal(journal_dir: Path, clock: Clock, local_mounts: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(journal_dir, owner=True, now=clock, mounts_file=local_mounts)
    try:
        yield j
    finally:
        await j.close()
