"""``/files/<path>``: raw file bytes streamed from CS3 (or from the spool for a pending save).

The default FilesHandler reads the whole file into a model, base64 and all. This one streams chunk by
chunk with flushes, and answers single ``Range: bytes=a-b`` requests with 206.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import iostream, web

from contents import paths as P
from contents.manager import CS3ContentsManager
from contents.models import NOT_FOUND, KnownInfo, Stat

AUTH_RESOURCE = "contents"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
FILE_CHUNK = 1024 * 1024


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single byte range; None for the whole file; ValueError if unsatisfiable."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise ValueError("unsatisfiable range")
    return start, end


class CS3FilesHandler(JupyterHandler):
    """Stream a file's bytes; ``?download=1`` adds the attachment header."""

    auth_resource = AUTH_RESOURCE

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; sandbox allow-scripts"

    @web.authenticated
    @authorized
    async def head(self, path: str) -> None:
        await self._serve(path, include_body=False)

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._serve(path, include_body=True)

    async def _serve(self, path: str, include_body: bool) -> None:
        self.check_xsrf_cookie()
        cm = self.contents_manager
        if not isinstance(cm, CS3ContentsManager):
            raise web.HTTPError(503, "The cs3sync contents manager is not active on this server")
        api_path, cs3_path = await cm.locate(path)
        if not cm.allow_hidden and P.is_hidden_api_path(api_path):
            raise web.HTTPError(404)
        pending, info = await cm.lookup(api_path, cs3_path)
        if pending is not None and pending.kind == "directory":
            raise web.HTTPError(400, f"{api_path} is a directory")
        if pending is None and info is not NOT_FOUND and info.type == "directory":
            raise web.HTTPError(400, f"{api_path} is a directory")
        # While the storage cannot be asked, the bytes come from what we know (the read cache, our own
        # last write's spool blob), else a 503 before any header is sent.
        known: bytes | None = None
        from_spool = pending is not None and pending.blob_path is not None
        if not from_spool and (isinstance(info, KnownInfo) or cm.remote.storage_unreachable()):
            known = await cm.read_content(api_path, cs3_path, pending, info)
        if known is not None:
            size = len(known)
        elif pending is not None and pending.size is not None:
            size = pending.size
        else:
            size = info.size if info is not NOT_FOUND and info.size is not None else 0
        name = P.api_name(api_path)
        self._set_type(name)
        if self.get_argument("download", None):
            self.set_attachment_header(name)
        self.set_header("Accept-Ranges", "bytes")
        try:
            window = parse_range(self.request.headers.get("Range"), size)
        except ValueError:
            self.set_status(416)
            self.set_header("Content-Range", f"bytes */{size}")
            return
        start, end = window if window else (0, size)
        if window:
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.set_header("Content-Length", str(end - start))
        if not include_body:
            return
        try:
            if pending is not None and pending.blob_path is not None:
                await self._send_file(pending.blob_path, start, end)
            elif known is not None:
                self.write(known[start:end])
                await self.flush()
            else:
                await self._send_remote(cm, api_path, cs3_path, info, start, end)
        except iostream.StreamClosedError:
            return

    def _set_type(self, name: str) -> None:
        if name.lower().endswith(".ipynb"):
            self.set_header("Content-Type", "application/x-ipynb+json")
            return
        mime, encoding = mimetypes.guess_type(name)
        if encoding == "gzip":
            mime = "application/gzip"
        elif encoding is not None:
            mime = "application/octet-stream"
        if mime == "text/plain" or mime is None:
            mime = "text/plain; charset=UTF-8" if mime else "application/octet-stream"
        self.set_header("Content-Type", mime)

    async def _send_file(self, file: Path, start: int, end: int) -> None:
        import anyio

        async with await anyio.open_file(file, "rb") as f:
            await f.seek(start)
            remaining = end - start
            while remaining > 0:
                data = await f.read(min(FILE_CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                self.write(data)
                await self.flush()

    async def _send_remote(
        self, cm: CS3ContentsManager, api_path: str, cs3_path: str, info: Stat, start: int, end: int
    ) -> None:
        position = 0
        async with cm.open_download(cs3_path, info) as stream:
            async for chunk in stream:
                chunk_end = position + len(chunk)
                if chunk_end > start and position < end:
                    self.write(chunk[max(0, start - position) : end - position])
                    await self.flush()
                position = chunk_end
                if position >= end:
                    break
