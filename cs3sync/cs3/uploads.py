"""Upload orchestration: initiate, choose the protocol, push, recover, Stat.

Rules:
- Protocols are chosen by name; order is random. tus when offered, enabled and the file is at least
  ``tus_threshold`` bytes; otherwise simple (EOS/CERNBox only offers simple).
- simple: one PUT with Upload-Length and Content-Length. A PUT is **never** repeated with the same
  transfer token (localfs would append); after any failure we initiate again.
- tus: PATCH in ``upload_chunk_size`` pieces, report each confirmed offset; after a drop, HEAD for the
  server's offset and continue from there (the server keeps what reached it).
- HTTP 403 = transfer token expired: initiate again. HTTP 401 = access token expired: log in again.
- ``if_match`` / ``if_not_exist`` are sent *and* checked with our own Stat, because Reva master
  ignores them. After a failed attempt the re-check compares checksums, so a PUT that landed although
  its reply was lost is recognised as ours rather than reported as a conflict.
- Always Stat afterwards: the upload reply carries no etag.
- Real servers say little about why a write failed (docs/storage-behaviours.md): EOS answers a PUT into
  a removed folder with 409, a write to a locked file and a full quota with a bare 500; oCIS refuses an
  upload into a removed folder as FAILED_PRECONDITION. `Upload._explain` asks the storage (Stat of the
  folder, GetLock, GetQuota) and turns such a failure into NotFound, Locked (naming the holder) or
  QuotaExceeded (with the figures); what it cannot explain keeps its original type.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import httpx

from cs3sync.logs import get_logger

from . import convert, errors
from .auth import token_expiry
from .transfer import PIECE, Source
from .types import Lock, LockContext, Quota, ResourceInfo, UploadSession

if TYPE_CHECKING:
    from .parts import ClientParts

log = get_logger(__name__)

OnSession = Callable[[UploadSession], Awaitable[None]]
OnProgress = Callable[[int, int], None]


def choose_protocol(
    offered: list[str], *, tus_enabled: bool, size: int, threshold: int
) -> Literal["simple", "tus"]:
    """Pick "tus" or "simple" from what InitiateFileUpload offered (unknown names are ignored)."""
    names = set(offered)
    if "tus" in names and tus_enabled and size >= threshold:
        return "tus"
    if "simple" in names:
        return "simple"
    if "tus" in names:
        return "tus"  # the only way in, whatever the size
    raise errors.Unimplemented(f"no supported upload protocol offered ({sorted(names)})", op="upload")


async def source_adler32(source: Source, size: int) -> str:
    """adler32 of the whole source, hex without leading zeros (as Reva reports it)."""
    value = 1
    async for piece in source.pieces(0, size):
        value = zlib.adler32(piece, value)
    return f"{value:x}"


async def source_digest(source: Source, size: int, algo: str) -> str:
    """Hex digest (sha1, md5) of the whole source."""
    h = hashlib.new(algo)
    async for piece in source.pieces(0, size):
        h.update(piece)
    return h.hexdigest()


class _RestartUpload(Exception):
    """Internal: the transfer session is unusable (expired, consumed, dropped); initiate again."""

    def __init__(self, cause: errors.CS3Error) -> None:
        self.cause = cause
        super().__init__(str(cause))


class Upload:
    def __init__(
        self,
        client: ClientParts,
        path: str,
        source: Source,
        size: int,
        *,
        if_match: str | None,
        if_not_exist: bool,
        lock: LockContext | None,
        mtime: float | None,
        on_session: OnSession | None,
        precheck: bool,
        on_progress: OnProgress | None = None,
    ) -> None:
        self.client = client
        self.cfg = client.config
        self.path = path
        self.source = source
        self.size = size
        self.if_match = if_match
        self.if_not_exist = if_not_exist
        self.lock = lock
        self.mtime = mtime
        self.on_session = on_session
        self.precheck = precheck
        self.on_progress = on_progress
        self._adler: str | None = None
        self._relogged = False

    async def _report(self, session: UploadSession) -> None:
        if self.on_session is not None:
            await self.on_session(session)

    def _progress(self, start: int) -> Callable[[bytes], None] | None:
        """A per-request piece counter reporting ``(bytes of this file sent, total)``."""
        report = self.on_progress
        if report is None:
            return None
        sent = start

        def piece(data: bytes) -> None:
            nonlocal sent
            sent += len(data)
            report(sent, self.size)

        return piece

    def _lock_headers(self) -> dict[str, str]:
        if self.lock is None:
            return {}
        return {"X-Lock-Id": self.lock.lock_id, "X-Lock-Holder": self.lock.app_name}

    async def _adler32(self) -> str:
        if self._adler is None:
            self._adler = await source_adler32(self.source, self.size)
        return self._adler

    async def _ours(self, info: ResourceInfo | None) -> bool:
        """Does the remote file already hold exactly our bytes (a previous attempt landed)? EOS reports
        adler32, oCIS SHA1 (docs/storage-behaviours.md row 3)."""
        if info is None or info.is_dir or info.size != self.size:
            return False
        if self.size == 0:
            return True  # EOS reports no checksum for an empty file; empty is empty
        if not info.checksum:
            return False
        algo, _, value = info.checksum.partition(":")
        if algo == "adler32":
            return value.lstrip("0") == (await self._adler32()).lstrip("0")
        if algo in ("sha1", "md5"):
            return value == await source_digest(self.source, self.size, algo)
        return False

    async def run(self, session: UploadSession | None) -> ResourceInfo:
        if session is not None and session.protocol == "tus" and session.url and session.length == self.size:
            try:
                await self._resume_tus(session)
                return await self.client.stat(self.path)
            except _RestartUpload as exc:
                log.info("cs3.upload.resume_failed", path=self.path, reason=exc.cause.kind)
                info = await self.client.stat_or_none(self.path)
                if await self._ours(info):
                    assert info is not None
                    return info

        last: errors.CS3Error | None = None
        for attempt in range(1, self.cfg.upload_attempts + 1):
            if attempt > 1 or session is not None:
                # A failed attempt may still have landed (the reply got lost): check before redoing.
                info = await self.client.stat_or_none(self.path)
                if await self._ours(info):
                    assert info is not None
                    log.info("cs3.upload.already_there", path=self.path, attempt=attempt)
                    return info
                self._check_preconditions(info)
            elif self.precheck and (self.if_match or self.if_not_exist):
                self._check_preconditions(await self.client.stat_or_none(self.path))
            session_now = await self._initiate()
            await self._report(session_now)
            try:
                if session_now.protocol == "tus":
                    await self._tus(session_now)
                else:
                    await self._simple(session_now)
            except _RestartUpload as exc:
                last = exc.cause
                log.info(
                    "cs3.upload.restart",
                    path=self.path,
                    attempt=attempt,
                    reason=exc.cause.kind,
                    protocol=session_now.protocol,
                )
                continue
            return await self._final_stat()
        assert last is not None
        if isinstance(last, errors.Unauthenticated):
            raise self.client.gateway.auth.blocked_error(last)
        raise last

    async def _final_stat(self) -> ResourceInfo:
        info = await self.client.stat(self.path)
        if info.size != self.size:
            # Someone else wrote in between (or the storage mangled it); the caller's etag logic decides.
            log.warning("cs3.upload.size_mismatch", path=self.path, expected=self.size, actual=info.size)
        return info

    def _check_preconditions(self, info: ResourceInfo | None) -> None:
        if self.if_not_exist and info is not None:
            raise errors.AlreadyExists("target exists", op="upload", path=self.path)
        if self.if_match is not None:
            if info is None:
                raise errors.PreconditionFailed(
                    f"target vanished (expected etag {self.if_match})", op="upload", path=self.path
                )
            if info.etag != self.if_match:
                raise errors.PreconditionFailed("etag mismatch", op="upload", path=self.path)

    async def _initiate(self) -> UploadSession:
        values = {"Upload-Length": str(self.size)}
        if self.mtime is not None:
            values["X-OC-Mtime"] = f"{self.mtime:.9f}".rstrip("0").rstrip(".")

        def build(_token: str) -> sp.InitiateFileUploadRequest:
            req = sp.InitiateFileUploadRequest(ref=convert.ref(self.path), opaque=convert.opaque(values))
            if self.if_not_exist:
                req.if_not_exist = True
            elif self.if_match:
                req.if_match = self.if_match
            if self.lock is not None:
                req.lock_id = self.lock.lock_id
            return req

        try:
            resp = await self.client.gateway.call("InitiateFileUpload", build, op="upload", path=self.path)
        except errors.Locked as exc:
            raise await self.client.locked_error(self.path, exc) from None
        except (errors.PreconditionFailed, errors.QuotaExceeded) as exc:
            # oCIS refuses an upload into a removed folder as FAILED_PRECONDITION; a quota refusal
            # gets its figures.
            raise await self._explain(exc) from None
        offered = {p.protocol: p for p in resp.protocols}
        name = choose_protocol(
            list(offered), tus_enabled=self.cfg.tus_enabled, size=self.size, threshold=self.cfg.tus_threshold
        )
        proto = offered[name]
        return UploadSession(
            protocol=name,
            url=proto.upload_endpoint,
            token=proto.token,
            expires_at=token_expiry(proto.token) if proto.token else None,
            offset=0,
            length=self.size,
        )

    async def _access_token(self) -> str:
        return (await self.client.gateway.auth.token()).reveal()

    async def _on_401(self, exc: errors.CS3Error, used: str) -> _RestartUpload:
        """The data plane rejected our access token: log in again once, then initiate again."""
        from .auth import Secret

        if self._relogged:
            raise self.client.gateway.auth.blocked_error(exc)
        self._relogged = True
        await self.client.gateway.auth.relogin(Secret(used))
        return _RestartUpload(exc)

    # --- simple -------------------------------------------------------------------------------------

    async def _simple(self, session: UploadSession) -> None:
        access = await self._access_token()
        headers = self.client.data.headers(session.token, access, self._lock_headers())
        try:
            resp = await self.client.data.put(
                session.url, headers, self.source, self.size, path=self.path, on_piece=self._progress(0)
            )
        except errors.Transient as exc:
            if exc.connectivity:
                raise
            raise _RestartUpload(exc) from None  # dropped mid-PUT: the session is spent
        status = resp.status_code
        if status in (200, 201, 204):
            return
        err = errors.from_http(status, op="upload", path=self.path)
        if status == 401:
            raise await self._on_401(err, access)
        if self.size == 0 and status in (404, 409, 410, 500):
            # oCIS finishes a zero-length upload at initiate; the PUT that follows may fail.
            info = await self.client.stat_or_none(self.path)
            if info is not None and info.size == 0 and not info.is_dir:
                return
        await self._raise_final(err, status)

    async def _raise_final(self, err: errors.CS3Error, status: int) -> None:
        if status in (409, 507) or status >= 500:
            err = await self._explain(err)
        if status in (403, 404, 410) or isinstance(err, errors.Transient):
            # 403 = expired transfer token; 404 = spent/unknown session; 5xx: send it all again.
            raise _RestartUpload(err)
        if isinstance(err, errors.Locked) and err.holder is None:
            raise await self.client.locked_error(self.path, err)
        raise err

    async def _explain(self, err: errors.CS3Error) -> errors.CS3Error:
        """Ask the storage why a write was refused: the folder is gone (NotFound), someone else holds a
        lock on the file (Locked, naming them), or the quota is full (QuotaExceeded, with the figures).
        Otherwise ``err`` unchanged (a 500 stays transient). Each question is best effort."""
        kw = {"op": "upload", "path": self.path, "code": err.code}
        folder = posixpath.dirname(self.path.rstrip("/")) or "/"
        with contextlib.suppress(errors.CS3Error):
            if folder != "/" and await self.client.stat_or_none(folder) is None:
                return errors.NotFound(f"folder {folder} no longer exists", **kw)
        if not isinstance(err, errors.QuotaExceeded):
            lock = None
            with contextlib.suppress(errors.CS3Error):
                lock = await self.client.get_lock(self.path)
            if lock is not None and not self._ours_lock(lock):
                return errors.Locked(err.message, holder=lock.holder, lock=lock, **kw)
        quota = None
        with contextlib.suppress(errors.CS3Error):
            quota = await self.client.quota(folder)
        if quota is not None and _too_full(quota, self.size):
            return errors.QuotaExceeded(_quota_message(quota, self.size), **kw)
        if isinstance(err, errors.QuotaExceeded):
            return errors.QuotaExceeded("quota exceeded", **kw)
        return err

    def _ours_lock(self, lock: Lock) -> bool:
        """A lock we hold ourselves (`get_lock` already leaves out expired ones)."""
        return self.lock is not None and lock.lock_id == self.lock.lock_id

    # --- tus ----------------------------------------------------------------------------------------

    def _tus_headers(self, session: UploadSession) -> dict[str, str]:
        return self.client.data.headers(session.token, None, self._lock_headers())

    async def _head_offset(self, session: UploadSession) -> int:
        async def head() -> httpx.Response:
            return await self.client.data.tus_head(session.url, self._tus_headers(session), path=self.path)

        resp = await self.client.retry(head)
        if resp.status_code == 200 and "Upload-Offset" in resp.headers:
            return int(resp.headers["Upload-Offset"])
        raise _RestartUpload(errors.from_http(resp.status_code, op="upload", path=self.path))

    async def _resume_tus(self, session: UploadSession) -> None:
        try:
            session.offset = await self._head_offset(session)
        except errors.Transient as exc:
            if exc.connectivity:
                raise
            raise _RestartUpload(exc) from None
        await self._report(session)
        await self._tus(session)

    async def _tus(self, session: UploadSession) -> None:
        stalls = 0
        while session.offset < self.size or self.size == 0:
            length = min(self._chunk_size(), self.size - session.offset)
            try:
                resp = await self.client.data.tus_patch(
                    session.url,
                    self._tus_headers(session),
                    self.source,
                    session.offset,
                    length,
                    path=self.path,
                    on_piece=self._progress(session.offset),
                )
            except errors.Transient as exc:
                if exc.connectivity:
                    raise
                # Dropped mid-PATCH: the server kept what reached it. Ask where to go on from.
                stalls = await self._after_tus_failure(session, exc, stalls)
                continue
            status = resp.status_code
            if status in (200, 204) and "Upload-Offset" in resp.headers:
                new = int(resp.headers["Upload-Offset"])
                stalls = 0 if new > session.offset else stalls + 1
                session.offset = new
                await self._report(session)
                if self.size == 0:
                    return
                if stalls > self.cfg.transfer_resumes:
                    raise _RestartUpload(
                        errors.Transient("tus upload makes no progress", op="upload", path=self.path)
                    )
                continue
            err = errors.from_http(status, op="upload", path=self.path)
            if status == 409:
                # Offset mismatch (resync) or, on the final PATCH, a refusal at commit (lock, folder).
                server = await self._head_offset(session)
                if server != session.offset:
                    session.offset = server
                    await self._report(session)
                    continue
            if status == 404 and session.offset + length >= self.size:
                # The finishing PATCH may have committed although its reply was lost.
                info = await self.client.stat_or_none(self.path)
                if await self._ours(info):
                    return
            if status == 423:
                err = errors.Transient("concurrent PATCH on the same upload", op="upload", path=self.path)
                stalls = await self._after_tus_failure(session, err, stalls)
                continue
            await self._raise_final(err, status)

    def _chunk_size(self) -> int:
        # Keep chunks a whole number of read pieces, at least one.
        return max(PIECE, self.cfg.upload_chunk_size - self.cfg.upload_chunk_size % PIECE)

    async def _after_tus_failure(self, session: UploadSession, exc: errors.CS3Error, stalls: int) -> int:
        before = session.offset
        session.offset = await self._head_offset(session)
        await self._report(session)
        stalls = 0 if session.offset > before else stalls + 1
        if stalls > self.cfg.transfer_resumes:
            raise _RestartUpload(exc)
        if stalls:
            await self.client.sleep(min(0.05 * 2**stalls, 2.0))  # no progress: don't spin on a sick server
        log.info("cs3.upload.tus_resume", path=self.path, offset=session.offset, reason=exc.kind)
        return stalls


def _too_full(quota: Quota, size: int) -> bool:
    """Would ``size`` more bytes not fit? (EOS figures lag behind writes, so "full" counts too.)"""
    if quota.remaining is not None and quota.total and quota.remaining < size:
        return True
    return quota.total > 0 and quota.used + size > quota.total


def _quota_message(quota: Quota, size: int) -> str:
    used, total = human_size(quota.used), human_size(quota.total)
    return f"quota exceeded: {used} of {total} used, this file needs {human_size(size)}"


def human_size(n: int) -> str:
    """1234567 -> "1.2 MB" (decimal units, as storage quotas are sold)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
