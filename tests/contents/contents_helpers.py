"""Helpers shared by the contents tests (a module of its own: every test folder has a ``conftest``)."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import HTTPClientError


def rpc_names(emu: Any, since: int) -> list[str]:
    """RPC method names the emulator recorded since ``since``, without (re-)authentication."""
    return [call.method for call in emu.calls[since:] if call.method != "Authenticate"]


def body(response: Any) -> dict[str, Any]:
    return json.loads(response.body.decode())


async def put_text(jp_fetch: Any, path: str, text: str) -> dict[str, Any]:
    model = {"type": "file", "format": "text", "content": text}
    return body(await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model)))


async def status_of(jp_fetch: Any, *parts: str, **kw: Any) -> int:
    try:
        return (await jp_fetch(*parts, **kw)).code
    except HTTPClientError as e:
        return e.code
