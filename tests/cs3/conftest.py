"""Fixtures for the CS3 client tests (the emulator fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
