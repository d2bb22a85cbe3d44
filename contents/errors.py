"""Errors of the storage, the journal and the engine -> short, user-facing HTTP errors.

JupyterLab shows the ``message`` of an error reply verbatim, so it must be short and actionable and
never carry internals. An outage is 503, never 404: a path reads as missing only when the storage
said so. Nothing here becomes a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Iterator

from tornado.web import HTTPError

log = logging.getLogger("cs3sync.contents")

# Exception class names (anywhere in the MRO) -> (status, message template). Matching by name keeps
# this module free of imports from the parts it translates.
_BY_NAME: list[tuple[str, int, str]] = [
    ("NotFound", 404, "No such file or directory: {path}"),
    ("AlreadyExists", 409, "File already exists: {path}"),
    ("Locked", 423, "{path} is locked by {holder}"),
    ("PermissionDenied", 403, "Permission denied: {path}"),
    ("PreconditionFailed", 409, "{path} was changed on the storage by someone else"),
    ("QuotaExceeded", 507, "Storage quota exceeded while writing {path}"),
    ("JournalFull", 507, "Local disk full on the Jupyter server: {path} was not changed; free some space"),
    ("SpoolFull", 507, "Local disk full on the Jupyter server: {path} was not saved; free some space"),
    ("Unauthenticated", 503, "Not signed in to the storage (expired token?)"),
    ("Unimplemented", 501, "Not supported by this storage: {path}"),
    ("InvalidArgument", 400, "Invalid request for {path}"),
    (
        "ConflictError",
        409,
        "{path} was changed on the storage by someone else; your version was kept as {conflict}",
    ),
    ("Transient", 503, "Storage unreachable; try again later ({path})"),
    ("JournalLocked", 503, "Another process owns the local journal"),
    ("JournalUnreadable", 503, "Local journal unavailable"),
    ("StagingBusy", 409, "Another upload of {path} is in progress; upload it again when that one is done"),
    ("StagingError", 400, "Upload of {path} is out of order; please upload again"),
    ("FailedError", 500, "Could not write {path}: {reason}"),
]


# Why an entry was parked (`Entry.last_error_kind`) -> the row above to answer with.
_FAILED_KINDS = {
    "quota_exceeded": "QuotaExceeded",
    "locked": "Locked",
    "permission_denied": "PermissionDenied",
    "not_found": "NotFound",
}


def _names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def is_offline_error(exc: BaseException) -> bool:
    """The storage could not be reached (as opposed to: it answered with an error)."""
    names = _names(exc)
    if "Transient" in names:
        return bool(getattr(exc, "connectivity", True))
    return isinstance(exc, (ConnectionError, asyncio.TimeoutError, TimeoutError))


def is_signed_out(exc: BaseException) -> bool:
    """The storage refused our credentials (a save is then journaled and waits for a new token)."""
    from cs3sync.cs3 import errors

    return isinstance(exc, errors.Unauthenticated)


def is_unreachable(exc: BaseException) -> bool:
    """The storage did not answer usefully (unreachable, timed out, or a transient gateway error):
    reads may answer from what we know instead."""
    return is_offline_error(exc) or "Transient" in _names(exc)


def to_http_error(exc: BaseException, path: str) -> HTTPError:
    if isinstance(exc, HTTPError):
        return exc
    names = _names(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return HTTPError(504, f"Storage did not answer in time ({path})")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HTTPError(507, f"Local disk full on the Jupyter server: {path} was not saved; free some space")
    if "FailedError" in names:
        # A parked entry keeps its bytes in the journal: answer with the reason the storage gave (a full
        # quota stays 507 and a foreign lock 423 after the engine gave up), not as a gateway failure.
        kind = getattr(exc, "error_kind", None) or ""
        names = [_FAILED_KINDS[kind], *names] if kind in _FAILED_KINDS else names
    for name, status, template in _BY_NAME:
        if name in names:
            message = template.format(
                path=path or "/",
                holder=getattr(exc, "holder", None) or "another application",
                conflict=getattr(exc, "conflict_path", None) or "a conflicted copy",
                reason=str(exc)[:200] or "permanent error",
            )
            return HTTPError(status if status != 500 else 502, message)
    if isinstance(exc, ConnectionError):
        return HTTPError(503, f"Storage unreachable; try again later ({path})")
    log.warning("cs3sync: unexpected error on %s", path or "/", exc_info=exc)
    return HTTPError(502, f"Storage error on {path or '/'}")


@contextlib.contextmanager
def http_error(path: str) -> Iterator[None]:
    """Translate any storage/journal exception raised inside into an HTTPError."""
    try:
        yield
    except HTTPError:
        raise
    except Exception as exc:
        raise to_http_error(exc, path) from exc
