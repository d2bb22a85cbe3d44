"""Jupyter integration of cs3sync: the contents manager, checkpoints, locks and REST handlers."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from contents.extension import CS3SyncExtension

    return [{"module": "contents.extension", "app": CS3SyncExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "@cs3sync/labextension"}]
