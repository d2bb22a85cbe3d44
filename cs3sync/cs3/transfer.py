"""The HTTP data plane (httpx): simple PUT, tus HEAD/PATCH and ranged GET against the data gateway.

Only the wire is here; `uploads.py` and `downloads.py` decide when to resume, re-initiate or give up.
Bodies are streamed from the source in pieces read in a worker thread, so a 64 MiB upload never holds
the event loop or the whole file in memory. Transfer tokens go in ``X-Reva-Transfer`` and are never
logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

from cs3sync.logs import get_logger

from . import errors
from .channel import http_verify
from .config import CS3Config

log = get_logger(__name__)

PIECE = 1024 * 1024  # read and send granularity; small enough to keep the loop responsive
TUS_VERSION = "1.0.0"


class Source:
    """Bytes to upload: a file (read off the loop) or an in-memory blob."""

    def __init__(self, data: Path | bytes | bytearray | memoryview) -> None:
        if isinstance(data, str):
            # Ambiguous (content or file name?); cs3client's str handling is how text got latin-1'd.
            raise TypeError("upload source must be a pathlib.Path or bytes, not str")
        self._path = data if isinstance(data, Path) else None
        self._blob = None if self._path is not None else bytes(data)

    def __repr__(self) -> str:
        return f"Source(path={self._path!s})" if self._path else f"Source(<{len(self._blob or b'')} bytes>)"

    async def size(self) -> int:
        if self._path is not None:
            st = await anyio.Path(self._path).stat()
            return st.st_size
        return len(self._blob or b"")

    async def pieces(
        self, start: int, length: int, on_piece: Callable[[bytes], None] | None = None
    ) -> AsyncIterator[bytes]:
        """Yield ``length`` bytes from ``start`` in pieces of at most `PIECE` bytes."""
        if self._blob is not None:
            end = start + length
            for off in range(start, end, PIECE):
                piece = self._blob[off : min(off + PIECE, end)]
                if on_piece:
                    on_piece(piece)
                yield piece
                await (
                    anyio.lowlevel.checkpoint()
                )  # a checkpoint per piece keeps big in-memory sends cooperative
            return
        assert self._path is not None
        f = await anyio.open_file(self._path, "rb")
        try:
            await f.seek(start)
            remaining = length
            while remaining > 0:
                piece = await f.read(min(PIECE, remaining))
                if not piece:
                    raise errors.InvalidArgument(
                        "source file is shorter than the announced size", op="upload"
                    )
                remaining -= len(piece)
                if on_piece:
                    on_piece(piece)
                yield piece
        finally:
            with anyio.CancelScope(shield=True):
                await f.aclose()


def transport_error(exc: httpx.HTTPError, *, op: str, path: str | None) -> errors.CS3Error:
    """A connection-level failure. Only failing to connect at all counts as 'offline'."""
    connectivity = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    return errors.Transient(
        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        connectivity=connectivity,
        op=op,
        path=path,
    )


class DataPlane:
    def __init__(self, config: CS3Config) -> None:
        self._config = config
        self._client: httpx.AsyncClient | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"DataPlane(open={self._client is not None})"

    async def client(self) -> httpx.AsyncClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await anyio.to_thread.run_sync(self._new_client)
        return self._client

    def _new_client(self) -> httpx.AsyncClient:
        """Blocking: reads certificate files and builds the SSL context, which with the default CA
        bundle is 20-40 ms of CPU (even for plain http: httpx builds it up front). In a worker thread,
        so the first transfer does not hold the event loop for it."""
        cfg = self._config
        return httpx.AsyncClient(
            verify=http_verify(cfg),
            # The idle deadline applies per read/write: a slow but moving transfer never times out, a
            # stalled one does.
            timeout=httpx.Timeout(cfg.transfer_deadline, connect=cfg.connect_timeout),
            follow_redirects=False,
            headers={"Accept-Encoding": "identity"},
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @staticmethod
    def headers(
        transfer_token: str, access_token: str | None = None, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        h: dict[str, str] = {}
        if transfer_token:
            h["X-Reva-Transfer"] = transfer_token
        if access_token:
            # /data/simple and /data/spaces want it when the data server is exposed directly.
            h["x-access-token"] = access_token
        if extra:
            h.update(extra)
        return h

    async def put(
        self,
        url: str,
        headers: dict[str, str],
        source: Source,
        size: int,
        *,
        path: str | None,
        on_piece: Callable[[bytes], None] | None = None,
    ) -> httpx.Response:
        client = await self.client()
        hdrs = dict(headers)
        # EOS needs a length; never fall back to chunked encoding without Upload-Length.
        hdrs["Upload-Length"] = str(size)
        hdrs["Content-Length"] = str(size)
        try:
            return await client.put(url, headers=hdrs, content=source.pieces(0, size, on_piece))
        except httpx.HTTPError as exc:
            raise transport_error(exc, op="upload", path=path) from None

    async def tus_head(self, url: str, headers: dict[str, str], *, path: str | None) -> httpx.Response:
        client = await self.client()
        try:
            return await client.head(url, headers={**headers, "Tus-Resumable": TUS_VERSION})
        except httpx.HTTPError as exc:
            raise transport_error(exc, op="upload", path=path) from None

    async def tus_patch(
        self,
        url: str,
        headers: dict[str, str],
        source: Source,
        offset: int,
        length: int,
        *,
        path: str | None,
        on_piece: Callable[[bytes], None] | None = None,
    ) -> httpx.Response:
        client = await self.client()
        hdrs = {
            **headers,
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(length),
        }
        try:
            return await client.patch(url, headers=hdrs, content=source.pieces(offset, length, on_piece))
        except httpx.HTTPError as exc:
            raise transport_error(exc, op="upload", path=path) from None

    async def open_get(
        self, url: str, headers: dict[str, str], *, start: int = 0, path: str | None
    ) -> httpx.Response:
        """Send a GET and return the streaming response (the caller closes it)."""
        client = await self.client()
        hdrs = dict(headers)
        if start:
            hdrs["Range"] = f"bytes={start}-"
        request = client.build_request("GET", url, headers=hdrs)
        try:
            return await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, op="download", path=path) from None
