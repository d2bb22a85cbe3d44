"""Which client sent the current request, so that chunked uploads of one path from two clients keep
their chunks apart (JupyterLab sends no upload id: only the client tells two uploads apart).

A tornado output transform is created for every request before its handler runs; it records the
client's key in a context variable that the handler's task inherits. The key is a hash of what the
client presents (credentials, cookies, user agent, address), never the values themselves.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.web import OutputTransform

CLIENT: ContextVar[str] = ContextVar("cs3sync_client", default="")


def client_key(request: HTTPServerRequest) -> str:
    digest = hashlib.sha256()
    for name in ("Authorization", "Cookie", "User-Agent"):
        digest.update(request.headers.get(name, "").encode("utf-8", "surrogateescape") + b"\0")
    digest.update((request.remote_ip or "").encode())
    return digest.hexdigest()[:16]


class ClientTransform(OutputTransform):
    """Records the request's client key (and changes nothing in the output)."""

    def __init__(self, request: HTTPServerRequest) -> None:
        super().__init__(request)
        CLIENT.set(client_key(request))


def setup_client_transform(web_app: Any) -> None:
    if ClientTransform not in web_app.transforms:
        web_app.add_transform(ClientTransform)
