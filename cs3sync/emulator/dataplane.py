"""The HTTP data plane (aiohttp): datagateway, simple PUT/GET, tus HEAD/PATCH.

Request bodies are streamed to the session's file chunk by chunk (the writes run in a worker thread),
never buffered whole. Fault rules are consulted on the *internal* data path (``/data/...``), whether
the request came in directly or through ``/datagateway``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import re
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from multidict import CIMultiDict

from .config import UserSpec
from .errors import CS3Error, HTTPError
from .faults import Delay, DropAfter, DropReply, Hang, StallAfter, Status, Throttle, WrongLength
from .host import EmulatorHost, HttpRecord
from .storage import Node, Session, Storage, WriteContext, parse_mtime_ns

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK = 256 * 1024
TUS_VERSION = "1.0.0"


class _Dropped(Exception):
    """The transport was aborted on purpose; there is nobody to answer."""


class _Counters:
    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.path = ""


COUNTERS = web.RequestKey("counters", _Counters)
DROP_REPLY = web.RequestKey("drop_reply", bool)  # a DropReply fired: do the work, send nothing


def _abort_transport(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _abort(request: web.Request) -> None:
    _abort_transport(request)
    raise _Dropped()


class DataPlane:
    def __init__(self, emulator: EmulatorHost) -> None:
        self.emu = emulator
        self.config = emulator.config
        self.storage: Storage = emulator.storage
        self._patching: set[str] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Until no data-plane request is being handled (e.g. after a client saw its connection drop, the
        server may still be cleaning up)."""
        await self._idle.wait()

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._record)
        for method in ("HEAD", "GET", "PUT", "PATCH"):
            app.router.add_route(method, "/datagateway", self.datagateway)
            app.router.add_route(method, "/datagateway/{token}", self.datagateway)
        app.router.add_route("PUT", "/data/simple/{upload_id}", self.direct_simple_put)
        for method in ("GET", "HEAD"):
            app.router.add_route(method, "/data/simple/{tail:.*}", self.direct_download)
            app.router.add_route(method, "/data/spaces/{tail:.*}", self.direct_download)
        for method in ("HEAD", "PATCH", "DELETE"):
            app.router.add_route(method, "/data/tus/{upload_id}", self.direct_tus)
        app.router.add_route("GET", "/s/{token}", self.public_link)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    # ------------------------------------------------------------------ logging middleware
    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_admin"):
            return await handler(request)
        counters = _Counters()
        counters.path = request.path
        request[COUNTERS] = counters
        status = 0
        self._in_flight += 1
        self._idle.clear()
        try:
            response = await handler(request)
            if request.get(DROP_REPLY, False) and not response.prepared:
                # The request was processed fully (committed, bytes kept, or refused); its reply is lost.
                _abort_transport(request)
                return web.Response(status=499)  # never reaches the client; recorded as status 0
            status = response.status
            return response
        except _Dropped:
            return web.Response(status=499)  # never reaches the client: the transport is gone
        except web.HTTPException as e:
            status = e.status
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            # A bug, not bad input (bad input is a 4xx above): an empty 500 like Reva's, the traceback
            # only in the emulator's own log.
            log.exception("emulator data plane: unhandled error on %s %s", request.method, counters.path)
            status = 500
            return web.Response(status=500)
        finally:
            self.emu.http_log.append(
                HttpRecord(
                    request.method,
                    counters.path,
                    CIMultiDict(request.headers),
                    status,
                    counters.bytes_in,
                    counters.bytes_out,
                )
            )
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    # ------------------------------------------------------------------ datagateway
    async def datagateway(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info.get("token") or request.headers.get("X-Reva-Transfer", "")
        claims = self.emu.transfers.verify(token) if token else None
        if claims is None:
            return web.Response(status=403)
        target = urllib.parse.urlsplit(claims["target"])
        path = urllib.parse.unquote(target.path)
        request[COUNTERS].path = path
        version_key = claims.get("version_key", "")
        response = await self._dispatch(request, path, version_key)
        if request.method == "HEAD" and response.status == 200:
            response.headers["Upload-Expires"] = email.utils.formatdate(claims["exp"], usegmt=True)
        return response

    async def _dispatch(self, request: web.Request, path: str, version_key: str) -> web.StreamResponse:
        method = request.method
        simple_upload = re.fullmatch(r"/data/simple/([0-9a-f]{32})", path)
        if simple_upload and method == "PUT":
            return await self.simple_put(request, simple_upload.group(1), path)
        if path.startswith("/data/tus/"):
            return await self.tus(request, path.rsplit("/", 1)[-1], path)
        if path.startswith(("/data/simple/", "/data/spaces/")) and method in ("GET", "HEAD"):
            return await self.download(request, path, version_key)
        return web.Response(status=405)

    async def public_link(self, request: web.Request) -> web.StreamResponse:
        """``GET /s/<token>[?password=]``: what a public link's address opens, so the demo's "Copy link"
        (``c.CS3SyncAPI.public_link_url``) gives an address that works. Not a storage behaviour: CERNBox and
        oCIS serve this page from their web front end, not from Reva; this stand-in answers the file's bytes
        or a plain list of a folder's names. 404 for an unknown or expired link, 401 for a missing or wrong
        password (the same check as GetPublicShareByToken)."""
        from .share_store import ShareStore

        store = ShareStore(self.storage)
        try:
            share = await self._run(
                store.get_link_by_token, request.match_info["token"], request.query.get("password", "")
            )
        except CS3Error as exc:
            denied = exc.code == code_pb2.CODE_PERMISSION_DENIED
            return web.Response(status=401 if denied else 404, text="password required" if denied else "")
        disk = self.storage.disk_for_id(share.resource_id.opaque_id)
        if disk is None or not disk.exists():
            return web.Response(status=404)
        if disk.is_dir():
            names = sorted(p.name for p in disk.iterdir() if not p.name.startswith("."))
            return web.Response(text="\n".join([disk.name + "/", *names]) + "\n")
        return web.Response(
            body=await asyncio.to_thread(disk.read_bytes),
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'inline; filename="{disk.name}"'},
        )

    async def direct_simple_put(self, request: web.Request) -> web.StreamResponse:
        return await self.simple_put(request, request.match_info["upload_id"], request.path)

    async def direct_download(self, request: web.Request) -> web.StreamResponse:
        return await self.download(request, request.path, request.query.get("version_key", ""))

    async def direct_tus(self, request: web.Request) -> web.StreamResponse:
        return await self.tus(request, request.match_info["upload_id"], request.path)

    # ------------------------------------------------------------------ shared pieces
    def _access_user(self, request: web.Request) -> UserSpec:
        token = request.headers.get("x-access-token", "")
        user = self.emu.auth.verify(token) if token else None
        if user is None:
            raise HTTPError(401, "unauthorized")
        return user

    async def _pre_faults(self, request: web.Request, path: str) -> Any:
        """Status and Delay/Hang act before any work; DropReply marks the request for the middleware,
        which drops whatever reply the handler produces; transfer faults are returned for the body loop."""
        action = self.emu.faults.take_http(request.method, path)
        if isinstance(action, DropReply):
            request[DROP_REPLY] = True
            return None
        if isinstance(action, Status):
            raise HTTPError(action.code, action.message)
        if isinstance(action, Delay):
            await asyncio.sleep(action.seconds)
            return None
        if isinstance(action, Hang):
            await self.emu.faults.wait_released()
            return None
        return action

    async def _pace(self, request: web.Request, action: Any, moved: int, chunk_len: int) -> int:
        """Apply a transfer fault before moving ``chunk_len`` more bytes; returns how many may move."""
        if isinstance(action, DropAfter) and moved + chunk_len >= action.bytes:
            return action.bytes - moved
        if isinstance(action, StallAfter) and moved + chunk_len >= action.bytes:
            return action.bytes - moved
        if isinstance(action, Throttle) and action.bytes_per_second > 0:
            await asyncio.sleep(chunk_len / action.bytes_per_second)
        return chunk_len

    async def _after_limit(self, request: web.Request, action: Any) -> None:
        if isinstance(action, DropAfter):
            _abort(request)
        if isinstance(action, StallAfter):
            await self.emu.faults.wait_released()
            _abort(request)

    @staticmethod
    def _error(e: HTTPError) -> web.Response:
        return web.Response(status=e.status)

    # ------------------------------------------------------------------ simple PUT
    async def simple_put(self, request: web.Request, upload_id: str, path: str) -> web.StreamResponse:
        try:
            user = self._access_user(request)
            action = await self._pre_faults(request, path)
            replayable = bool(self.config.replayable_upload_tokens)
            claim = self.storage.session if replayable else self.storage.claim_session
            session = await self._run(claim, upload_id)
            if session is None:
                raise HTTPError(404, "upload session not found")
            if self.config.put_needs_upload_length and not _is_uint(request.headers.get("Upload-Length", "")):
                raise HTTPError(500, "no content length specified in EOS upload")
            length = self._declared_length(request, session)
            # EOS: the token names the path, so it stays valid for another PUT (replayable_upload_tokens).
            done = self.storage.reopen_session if replayable else self.storage.finish_session
            target = self.storage.upload_file(session.id)
            try:
                received, adler = await self._receive(request, target, 0, 1, length, action, session, False)
            except BaseException:
                await self._run(done, session.id)
                raise
            if received != length:
                await self._run(done, session.id)
                raise HTTPError(400, "short body")
            ctx = self._write_context(request, user, session)
            try:
                await self._run(self.storage.commit, target, session, ctx, adler)
            finally:
                await self._run(done, session.id)
            return web.Response(status=200)
        except HTTPError as e:
            return self._error(e)

    @staticmethod
    def _declared_length(request: web.Request, session: Session) -> int:
        header = request.headers.get("Upload-Length") or ""
        if _is_uint(header):
            return int(header)
        if session.length >= 0:
            return session.length
        if request.content_length is not None:
            return request.content_length
        raise HTTPError(400, "no content length")

    def _write_context(self, request: web.Request, user: UserSpec, session: Session) -> WriteContext:
        header_mtime = request.headers.get("X-OC-Mtime", "")
        if header_mtime and self.config.honour_oc_mtime and not session.mtime:
            try:
                parse_mtime_ns(header_mtime)
            except ValueError:
                raise HTTPError(400, "invalid X-OC-Mtime") from None
        return WriteContext(
            user=user,
            lock_holder=request.headers.get("X-Lock-Holder"),
            lock_id=request.headers.get("X-Lock-Id") or session.lock_id or None,
            disable_versioning=request.headers.get("X-Disable-Versioning", "").lower() == "true",
            mtime=session.mtime or request.headers.get("X-OC-Mtime", ""),
            if_match=session.if_match,
            if_not_exist=session.if_not_exist,
        )

    async def _receive(
        self,
        request: web.Request,
        target: Path,
        offset: int,
        adler: int,
        limit: int,
        action: Any,
        session: Session,
        keep_partial: bool,
    ) -> tuple[int, int]:
        """Append the request body to ``target`` from ``offset``; returns (new offset, adler32).
        With ``keep_partial`` (tus) progress is persisted as it arrives, so an interrupted PATCH keeps
        the bytes that made it."""
        counters: _Counters = request[COUNTERS]
        f = await self._run(open, target, "r+b")
        moved = 0
        try:
            await self._run(f.seek, offset)
            await self._run(f.truncate)
            while True:
                try:
                    chunk = await request.content.read(CHUNK)
                except Exception:
                    raise _Dropped() from None  # the client went away mid-body
                if not chunk:
                    break
                allowed = await self._pace(request, action, moved, len(chunk))
                chunk = chunk[: max(allowed, 0)]
                if offset + len(chunk) > limit >= 0:
                    raise HTTPError(413, "body exceeds upload length")
                if chunk:
                    await self._run(f.write, chunk)
                    adler = zlib.adler32(chunk, adler)
                    offset += len(chunk)
                    moved += len(chunk)
                    counters.bytes_in += len(chunk)
                    if keep_partial:
                        await self._run(f.flush)
                        await self._run(self.storage.record_progress, session.id, offset, adler)
                if isinstance(action, (DropAfter, StallAfter)) and moved >= action.bytes:
                    await self._after_limit(request, action)
        finally:
            await self._run(f.close)
        return offset, adler

    # ------------------------------------------------------------------ tus
    async def tus(self, request: web.Request, upload_id: str, path: str) -> web.StreamResponse:
        try:
            action = await self._pre_faults(request, path)
            session = await self._run(self.storage.session, upload_id)
            if session is None:
                raise HTTPError(404, "upload not found")
            if request.method == "HEAD":
                return web.Response(
                    status=200,
                    headers={
                        "Upload-Offset": str(session.offset),
                        "Upload-Length": str(session.length),
                        "Tus-Resumable": TUS_VERSION,
                        "Cache-Control": "no-store",
                    },
                )
            if request.method == "DELETE":
                await self._run(self.storage.finish_session, session.id)
                return web.Response(status=204, headers={"Tus-Resumable": TUS_VERSION})
            return await self._tus_patch(request, session, action)
        except HTTPError as e:
            return self._error(e)

    async def _tus_patch(self, request: web.Request, session: Session, action: Any) -> web.StreamResponse:
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise HTTPError(412, "unsupported tus version")
        if request.headers.get("Content-Type") != "application/offset+octet-stream":
            raise HTTPError(400, "missing or invalid Content-Type header")
        offset_header = request.headers.get("Upload-Offset", "")
        if not _is_uint(offset_header):
            raise HTTPError(400, "missing or invalid Upload-Offset header")  # tusd ErrInvalidOffset
        if int(offset_header) != session.offset:
            raise HTTPError(409, "mismatched offset")
        if session.length < 0:
            header = request.headers.get("Upload-Length", "")
            if not _is_uint(header):
                raise HTTPError(400, "upload length unknown")
            session.length = int(header)
        if request.content_length is not None and session.offset + request.content_length > session.length:
            raise HTTPError(413, "body exceeds upload length")
        if session.id in self._patching:
            raise HTTPError(423, "upload is locked by another PATCH")
        self._patching.add(session.id)
        try:
            target = self.storage.upload_file(session.id)
            offset, adler = await self._receive(
                request, target, session.offset, session.adler, session.length, action, session, True
            )
            await self._run(self.storage.record_progress, session.id, offset, adler)
            if offset == session.length:
                user = self.config.user(session.username)
                assert user is not None
                ctx = self._write_context(request, user, session)
                try:
                    await self._run(self.storage.commit, target, session, ctx, adler)
                finally:
                    await self._run(self.storage.finish_session, session.id)
            return web.Response(
                status=204, headers={"Upload-Offset": str(offset), "Tus-Resumable": TUS_VERSION}
            )
        finally:
            self._patching.discard(session.id)

    # ------------------------------------------------------------------ downloads
    async def download(self, request: web.Request, path: str, version_key: str) -> web.StreamResponse:
        try:
            user = self._access_user(request)
            action = await self._pre_faults(request, path)
            node = await self._resolve_download(path, user)
            Storage.require_http(node, "initiate_file_download")
            source = await self._run(self._download_source, node, version_key)
            if request.get(DROP_REPLY, False):
                _abort(request)  # a streamed reply cannot be withheld by the middleware: drop it here
            return await self._send(request, source, action)
        except HTTPError as e:
            return self._error(e)

    async def _resolve_download(self, path: str, user: UserSpec) -> Node:
        try:
            if path.startswith("/data/simple/"):
                return await self._run(self.storage.resolve_path, path[len("/data/simple") :], user)
            spec = path[len("/data/spaces/") :]
            space, _, rel = spec.partition("/")
            _, _, opaque_id = space.partition("!")
            ref = res.Reference(
                resource_id=res.ResourceId(opaque_id=opaque_id), path="./" + rel if rel else "."
            )
            return await self._run(self.storage.resolve, ref, user)
        except CS3Error as e:
            raise HTTPError(_http_status(e.code), e.message) from None

    def _download_source(self, node: Node, version_key: str) -> Path:
        disk = node.disk
        if disk is None or not disk.exists():
            raise HTTPError(404, "not found")
        if disk.is_dir():
            raise HTTPError(400, "is a folder")
        if version_key:
            try:
                return self.storage.version_file(disk, version_key)
            except CS3Error:
                raise HTTPError(404, "version not found") from None
        return disk

    async def _send(self, request: web.Request, source: Path, action: Any) -> web.StreamResponse:
        f = await self._run(open, source, "rb")
        try:
            size = (await self._run(source.stat)).st_size
            start, end, status = 0, size - 1, 200
            range_header = request.headers.get("Range")
            headers: dict[str, str] = {"Accept-Ranges": "bytes"}
            if range_header:
                if not self.config.range_support:
                    raise HTTPError(416, "range not supported")
                parsed = _parse_range(range_header, size)
                if parsed is None:
                    return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            if self.config.send_etag:
                headers["ETag"] = await self._run(self.storage.etag, source)
            length = end - start + 1
            advertised = length + action.delta if isinstance(action, WrongLength) else length
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = max(advertised, 0)
            await response.prepare(request)
            if request.method == "HEAD":
                return response
            to_send = min(length, advertised) if isinstance(action, WrongLength) else length
            await self._stream_file(request, response, f, start, to_send, action)
            if isinstance(action, WrongLength) and action.delta > 0:
                _abort(request)
            await response.write_eof()
            return response
        finally:
            await self._run(f.close)

    async def _stream_file(
        self, request: web.Request, response: web.StreamResponse, f: Any, start: int, length: int, action: Any
    ) -> None:
        counters: _Counters = request[COUNTERS]
        await self._run(f.seek, start)
        moved = 0
        while moved < length:
            chunk = await self._run(f.read, min(CHUNK, length - moved))
            if not chunk:
                break
            allowed = await self._pace(request, action, moved, len(chunk))
            chunk = chunk[: max(allowed, 0)]
            if chunk:
                await response.write(chunk)
                moved += len(chunk)
                counters.bytes_out += len(chunk)
            if isinstance(action, (DropAfter, StallAfter)) and moved >= action.bytes:
                await self._after_limit(request, action)


def _is_uint(text: str) -> bool:
    """A plain decimal (``str.isdigit`` alone accepts "²", which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=a-b`` / ``a-`` / ``-n`` range, or None when unsatisfiable or malformed."""
    m = re.fullmatch(r"\s*bytes=([0-9]*)-([0-9]*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            return None
        start, end = max(size - suffix, 0), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return None
    return start, end


def _http_status(code: int) -> int:
    return {
        code_pb2.CODE_NOT_FOUND: 404,
        code_pb2.CODE_PERMISSION_DENIED: 403,
        code_pb2.CODE_UNAUTHENTICATED: 401,
    }.get(code, 500)
