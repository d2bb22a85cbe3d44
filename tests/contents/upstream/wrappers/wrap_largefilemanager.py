"""Upstream test_largefilemanager.py against CS3ContentsManager (chunked saves)."""

import pytest
from tests.services.contents.test_largefilemanager import *  # noqa: F403


@pytest.fixture
def jp_large_contents_manager(make_cm):
    return make_cm()
