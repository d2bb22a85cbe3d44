"""The REST side: what JupyterLab sends to ``/api/contents``, timed from the client."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

CHUNK_SIZE = 1024 * 1024  # JupyterLab's CHUNK_SIZE (filebrowser/src/model.ts)


class RestError(RuntimeError):
    def __init__(self, response: httpx.Response):
        self.status = response.status_code
        try:
            message = response.json().get("message")
        except ValueError:
            message = response.text[:200]
        super().__init__(
            f"HTTP {response.status_code} {response.request.method} {response.request.url.path}: {message}"
        )


def make_notebook(size: int, tag: str = "") -> dict[str, Any]:
    """A valid nbformat 4 notebook whose JSON is about ``size`` bytes (code cells of ~1 KB lines)."""
    line = ("x = " + "1234567890" * 100)[:1000] + "\n"
    cells: list[dict[str, Any]] = []
    budget = max(0, size - 400)
    index = 0
    while budget > 0:
        lines = min(50, max(1, budget // len(line)))
        source = [f"# {tag} cell {index}\n", *([line] * lines)]
        cells.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{index:06d}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        )
        budget -= lines * len(line) + 150
        index += 1
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    }


def payload_chunks(size: int, seed: int = 0) -> Iterator[bytes]:
    """Deterministic incompressible-looking bytes, 1 MiB at a time, distinct per chunk."""
    block = hashlib.shake_256(f"cs3sync-bench-{seed}".encode()).digest(CHUNK_SIZE)
    sent = 0
    index = 0
    while sent < size:
        n = min(CHUNK_SIZE, size - sent)
        yield index.to_bytes(8, "big") + block[8:n] if n >= 8 else block[:n]
        sent += n
        index += 1


def payload_sha256(size: int, seed: int = 0) -> str:
    digest = hashlib.sha256()
    for chunk in payload_chunks(size, seed):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class UploadResult:
    size: int
    chunk_ms: list[float] = field(default_factory=list)  # client-observed round trip of each chunk PUT
    total_s: float = 0.0
    last_chunk_sent: float = 0.0  # perf_counter() just before the -1 chunk was sent
    last_chunk_done: float = 0.0  # perf_counter() when the -1 chunk's reply arrived


class Contents:
    """A token-authenticated client of one server's ``/api/contents``."""

    def __init__(self, base_url: str, token: str, timeout: float = 120.0):
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    @staticmethod
    def _url(path: str) -> str:
        return "/api/contents/" + path.lstrip("/")

    async def get(self, path: str, content: bool = True) -> dict[str, Any]:
        response = await self.client.get(self._url(path), params={"content": "1" if content else "0"})
        if response.status_code != 200:
            raise RestError(response)
        return response.json()

    async def put(self, path: str, model: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.put(self._url(path), content=json.dumps(model))
        if response.status_code not in (200, 201):
            raise RestError(response)
        return response.json()

    async def mkdir(self, path: str) -> dict[str, Any]:
        return await self.put(path, {"type": "directory"})

    async def save_notebook(self, path: str, notebook: dict[str, Any]) -> dict[str, Any]:
        return await self.put(path, {"type": "notebook", "format": "json", "content": notebook})

    async def delete(self, path: str) -> None:
        response = await self.client.delete(self._url(path))
        if response.status_code not in (204, 404):
            raise RestError(response)

    async def journal(self) -> dict[str, Any]:
        """cs3sync's journal summary (``GET /api/cs3sync/journal``): state, counts, pending."""
        response = await self.client.get("/api/cs3sync/journal")
        if response.status_code != 200:
            raise RestError(response)
        return response.json()

    async def bench(self, reset: bool = False) -> dict[str, Any]:
        """The loop-lag extension: reset (POST) or read (GET) the recorders in the server process."""
        if reset:
            response = await self.client.post("/api/bench/looplag")
        else:
            response = await self.client.get("/api/bench/looplag")
        if response.status_code != 200:
            raise RestError(response)
        return response.json()

    async def upload(
        self,
        path: str,
        size: int,
        seed: int = 0,
        before_last: Callable[[], Awaitable[Any]] | None = None,
    ) -> UploadResult:
        """Upload like JupyterLab's file browser: sequential 1 MiB base64 chunks numbered 1, 2, ..., -1."""
        result = UploadResult(size=size)
        name = path.rsplit("/", 1)[-1]
        started = time.perf_counter()
        offset = 0
        for data in payload_chunks(size, seed):
            end = offset + len(data)
            number = -1 if end >= size else end // CHUNK_SIZE
            model = {
                "type": "file",
                "format": "base64",
                "name": name,
                "chunk": number,
                "content": base64.b64encode(data).decode("ascii"),
            }
            body = json.dumps(model)
            if number == -1:
                if before_last is not None:
                    await before_last()
                result.last_chunk_sent = time.perf_counter()
            t0 = time.perf_counter()
            response = await self.client.put(self._url(path), content=body)
            t1 = time.perf_counter()
            if response.status_code not in (200, 201):
                raise RestError(response)
            result.chunk_ms.append((t1 - t0) * 1000)
            offset = end
        result.last_chunk_done = time.perf_counter()
        result.total_s = result.last_chunk_done - started
        return result
