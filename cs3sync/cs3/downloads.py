"""Download as an async byte stream with length check and resume.

Reva's GET carries no ETag, so we Stat first (the etag of what we serve, and a clean NotFound rather
than a late HTTP 404) and check the byte count against Content-Length. After a drop we resume with
``Range: bytes=N-``; a server that answers 416 (localfs) or ignores the range (200) is read again from
the start with the first N bytes skipped. Before resuming we Stat again: if the etag moved, the bytes
already handed out belong to another version and the download fails instead of splicing two versions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import httpx

from cs3sync.logs import get_logger

from . import convert, errors
from .auth import Secret
from .types import FileId, ResourceInfo

if TYPE_CHECKING:
    from .parts import ClientParts

log = get_logger(__name__)


class DownloadStream:
    """Iterate it for the bytes: ``async for chunk in stream``. ``size`` is the expected length."""

    def __init__(
        self, client: ClientParts, path: str, info: ResourceInfo | None, version_key: str | None
    ) -> None:
        self._client = client
        self.path = path
        self.info = info
        self.version_key = version_key
        self.size: int | None = info.size if info is not None and version_key is None else None
        self._resp: httpx.Response | None = None
        self._endpoint: tuple[str, str] | None = None  # (url, transfer token)
        self._range_ok = True
        self._relogged = False
        self._reinitiated = 0
        self.received = 0

    def __repr__(self) -> str:
        return f"DownloadStream(path={self.path!r}, size={self.size}, received={self.received})"

    async def aclose(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            await resp.aclose()

    def _ref(self) -> sp.InitiateFileDownloadRequest:
        key = self.version_key
        if key is None:
            return sp.InitiateFileDownloadRequest(ref=convert.ref(self.path))
        style = self._client.config.version_ref_style
        if style == "auto":
            style = "resource_id" if ".REV." in key else "opaque"
        if style == "resource_id":
            # oCIS: the revision is addressed as its own resource id (reva edge dfs/decomposedfs.go:1072).
            # Keys that are not revision ids of their own (EOS "<mtime>.<fid>") go as "<fileid>@<key>",
            # the id-based form EOS accepts (eos/file_info.go:76-98).
            fid = self.info.file_id if self.info is not None else FileId()
            target = FileId(fid.storage_id, fid.space_id, key if ".REV." in key else f"{fid.opaque_id}@{key}")
            return sp.InitiateFileDownloadRequest(ref=convert.ref(".", target))
        return sp.InitiateFileDownloadRequest(
            ref=convert.ref(self.path), opaque=convert.opaque({"version_key": key})
        )

    async def _initiate(self) -> None:
        req = self._ref()
        resp = await self._client.gateway.call(
            "InitiateFileDownload", req, op="download", path=self.path, idempotent=True
        )
        by_name = {p.protocol: p for p in resp.protocols}
        proto = by_name.get("simple") or by_name.get("spaces") or next(iter(resp.protocols), None)
        if proto is None:
            raise errors.Unimplemented("no download protocol offered", op="download", path=self.path)
        self._endpoint = (proto.download_endpoint, proto.token)

    async def _open(self) -> httpx.Response:
        """GET from ``self.received`` on (Range when we think it works); handles 401/403/416."""
        while True:
            if self._endpoint is None:
                await self._initiate()
            assert self._endpoint is not None
            url, transfer = self._endpoint
            access = (await self._client.gateway.auth.token()).reveal()
            headers = self._client.data.headers(transfer, access)
            start = self.received if self._range_ok else 0
            resp = await self._client.data.open_get(url, headers, start=start, path=self.path)
            status = resp.status_code
            if status in (200, 206):
                return resp
            await resp.aclose()
            err = errors.from_http(status, op="download", path=self.path)
            if status == 416 and start:
                log.info("cs3.download.range_unsupported", path=self.path)
                self._range_ok = False
                continue
            if status == 401:
                if self._relogged:
                    raise self._client.gateway.auth.blocked_error(err)
                self._relogged = True
                await self._client.gateway.auth.relogin(Secret(access))
                self._endpoint = None
                continue
            if status == 403 and transfer and self._reinitiated < self._client.config.upload_attempts:
                self._reinitiated += 1  # the transfer token expired: ask for a new one
                self._endpoint = None
                continue
            raise err

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stalls = 0
        while True:
            try:
                if self._resp is None:
                    self._resp = await self._open()
                resp = self._resp
                start = self._served_from(resp)
                skip = self.received - start
                announced = _content_length(resp)
                if announced is not None and (self.size is None or start + announced > self.size):
                    # Without a Stat of the target (versions) the reply's length is all we have. A
                    # reply longer than the Stat means the file changed: the length check below
                    # fails and the etag check on resume tells. A shorter one is a short read.
                    self.size = start + announced
                async for chunk in resp.aiter_bytes():
                    if skip > 0:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    self.received += len(chunk)
                    if self.size is not None and self.received > self.size:
                        raise errors.ServerError(
                            "server sent more bytes than announced", op="download", path=self.path
                        )
                    stalls = 0
                    yield chunk
                await self.aclose()
                if self.size is not None and self.received < self.size:
                    raise errors.Transient(
                        f"short read: {self.received} of {self.size} bytes", op="download", path=self.path
                    )
                if self.info is not None and self.version_key is None and self.received != self.info.size:
                    await self._check_unchanged()  # the length moved: was it another version?
                return
            except httpx.HTTPError as exc:
                await self.aclose()
                err: errors.CS3Error = errors.Transient(
                    f"{type(exc).__name__}",
                    op="download",
                    path=self.path,
                    connectivity=isinstance(exc, httpx.ConnectError),
                )
            except errors.Transient as exc:
                await self.aclose()
                err = exc
            stalls += 1
            if getattr(err, "connectivity", False) or stalls > self._client.config.transfer_resumes:
                raise err
            await self._check_unchanged()
            log.info("cs3.download.resume", path=self.path, offset=self.received, reason=err.message)

    def _served_from(self, resp: httpx.Response) -> int:
        if resp.status_code != 206:
            return 0
        content_range = resp.headers.get("Content-Range", "")
        try:
            first = content_range.split(" ", 1)[1].split("-", 1)[0]
            return int(first)
        except (IndexError, ValueError):
            return self.received

    async def _check_unchanged(self) -> None:
        if self.info is None or self.version_key is not None:
            return
        now = await self._client.stat(self.path)
        if now.etag != self.info.etag:
            raise errors.PreconditionFailed("file changed during download", op="download", path=self.path)

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self]
        return b"".join(parts)


def _content_length(resp: httpx.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
