"""Upstream test_checkpoints.py against CS3ContentsManager with its journaled checkpoints."""

import pytest
from tests.services.contents.test_checkpoints import *  # noqa: F403


@pytest.fixture
def contents_manager(make_cm, contents):
    return make_cm()
