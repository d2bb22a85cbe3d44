"""Upstream test_api.py against CS3ContentsManager (REST through jp_fetch)."""

import json
import pathlib

import pytest
import tornado
from tests.services.contents.test_api import *  # noqa: F403


@pytest.fixture
def jp_argv():
    return ["--ServerApp.contents_manager_class=contents.manager.CS3ContentsManager"]


@pytest.fixture
def _check_created(jp_base_url):
    def _inner(r, contents_dir, path, name, type="notebook"):
        fpath = path + "/" + name
        assert r.code == 201
        location = jp_base_url + "api/contents/" + tornado.escape.url_escape(fpath, plus=False)
        assert r.headers["Location"] == location
        model = json.loads(r.body.decode())
        assert model["name"] == name
        assert model["path"] == fpath
        assert model["type"] == type
        on_disk = pathlib.Path(contents_dir) / fpath
        assert on_disk.is_dir() if type == "directory" else on_disk.is_file()

    return _inner
