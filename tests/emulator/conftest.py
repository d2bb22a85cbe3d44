from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cs3sync.emulator import Emulator

from .helpers import Gateway


@pytest.fixture
async def gw(emulator: Emulator) -> AsyncIterator[Gateway]:
    """einstein, logged in."""
    g = await Gateway(emulator).login()
    yield g
    await g.close()


@pytest.fixture
async def marie(emulator: Emulator) -> AsyncIterator[Gateway]:
    g = await Gateway(emulator, "marie").login()
    yield g
    await g.close()
