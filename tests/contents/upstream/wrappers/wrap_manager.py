"""Upstream test_manager.py against CS3ContentsManager (the contents-manager API)."""

import pytest
from tests.services.contents.test_manager import *  # noqa: F403


@pytest.fixture
def jp_contents_manager(make_cm):
    return make_cm()
