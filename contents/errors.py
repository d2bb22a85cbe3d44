"""Errors of the storage, the journal and the engine -> short, user-facing HTTP errors. The one place
where an exception becomes a status code: the contents manager, the lock sessions and the REST handlers
all map through `to_http_error` (the REST API then applies `for_rest_api`).

JupyterLab shows the ``message`` of an error reply verbatim, so it must be short and actionable and
never carry internals. An outage is 503, never 404: a path reads as missing only when the storage
said so. Nothing here becomes a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
from collections.abc import Iterator

from tornado.web import HTTPError

from cs3sync.cs3 import errors as cs3
from cs3sync.journal import errors as journal

log = logging.getLogger("cs3sync.contents")

#: Why a parked entry failed (`Entry.last_error_kind`) -> the storage error it stands for: a full quota
#: stays 507 and a foreign lock 423 after the engine gave up.
_FAILED_KINDS: dict[str, type[cs3.CS3Error]] = {
    "quota_exceeded": cs3.QuotaExceeded,
    "locked": cs3.Locked,
    "permission_denied": cs3.PermissionDenied,
    "not_found": cs3.NotFound,
}


@functools.cache
def _table() -> list[tuple[type[BaseException], int, str]]:
    """Exception type -> (status, message template), first match wins (subclasses before their bases).
    Built on first use: importing the Jupyter side does not load the engine."""
    from cs3sync.engine import ConflictError, FailedError

    return [
        (cs3.NotFound, 404, "No such file or directory: {path}"),
        (cs3.AlreadyExists, 409, "File already exists: {path}"),
        (cs3.Locked, 423, "{path} is locked by {holder}"),
        (cs3.PermissionDenied, 403, "Permission denied: {path}"),
        (cs3.PreconditionFailed, 409, "{path} was changed on the storage by someone else"),
        (cs3.QuotaExceeded, 507, "Storage quota exceeded while writing {path}"),
        (
            journal.JournalFull,
            507,
            "Local disk full on the Jupyter server: {path} was not changed; free some space",
        ),
        (
            journal.SpoolFull,
            507,
            "Local disk full on the Jupyter server: {path} was not saved; free some space",
        ),
        (cs3.Unauthenticated, 503, "Not signed in to the storage (expired token?)"),
        (cs3.Unimplemented, 501, "Not supported by this storage: {path}"),
        (cs3.InvalidArgument, 400, "Invalid request for {path}"),
        (
            ConflictError,
            409,
            "{path} was changed on the storage by someone else; your version was kept as {conflict}",
        ),
        (cs3.Transient, 503, "Storage unreachable; try again later ({path})"),
        (journal.JournalLocked, 503, "Another process owns the local journal"),
        (journal.JournalUnreadable, 503, "Local journal unavailable"),
        (journal.NetworkFilesystem, 503, "The local journal is on a network file system; see the server log"),
        (
            journal.StagingBusy,
            409,
            "Another upload of {path} is in progress; upload it again when that one is done",
        ),
        (journal.StagingError, 400, "Upload of {path} is out of order; please upload again"),
        (FailedError, 502, "Could not write {path}: {reason}"),
    ]


def is_offline_error(exc: BaseException) -> bool:
    """The storage could not be reached (as opposed to: it answered with an error)."""
    if isinstance(exc, cs3.Transient):
        return exc.connectivity
    return isinstance(exc, (ConnectionError, asyncio.TimeoutError, TimeoutError))


def is_signed_out(exc: BaseException) -> bool:
    """The storage refused our credentials (a save is then journaled and waits for a new token)."""
    return isinstance(exc, cs3.Unauthenticated)


def is_unreachable(exc: BaseException) -> bool:
    """The storage did not answer usefully (unreachable, timed out, or a transient gateway error):
    reads may answer from what we know instead."""
    return is_offline_error(exc) or isinstance(exc, cs3.Transient)


def to_http_error(exc: BaseException, path: str) -> HTTPError:
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return HTTPError(504, f"Storage did not answer in time ({path})")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HTTPError(507, f"Local disk full on the Jupyter server: {path} was not saved; free some space")
    stands_for = _stands_for(exc)
    for kind, status, template in _table():
        if issubclass(stands_for, kind):
            return HTTPError(status, _message(template, exc, path))
    if isinstance(exc, ConnectionError):
        return HTTPError(503, f"Storage unreachable; try again later ({path})")
    log.warning("cs3sync: unexpected error on %s", path or "/", exc_info=exc)
    return HTTPError(502, f"Storage error on {path or '/'}")


def _stands_for(exc: BaseException) -> type[BaseException]:
    """The type to answer for: a parked entry answers as the storage error that parked it."""
    from cs3sync.engine import FailedError

    if isinstance(exc, FailedError) and exc.error_kind is not None and exc.error_kind in _FAILED_KINDS:
        return _FAILED_KINDS[exc.error_kind]
    return type(exc)


def _message(template: str, exc: BaseException, path: str) -> str:
    from cs3sync.engine import ConflictError

    return template.format(
        path=path or "/",
        holder=(exc.holder if isinstance(exc, cs3.Locked) else None) or "another application",
        conflict=(exc.conflict_path if isinstance(exc, ConflictError) else None) or "a conflicted copy",
        reason=str(exc)[:200] or "permanent error",
    )


def for_rest_api(err: HTTPError, what: str) -> HTTPError:
    """The labextension's API speaks of the storage as one service: a deadline is an outage (503), and
    no 5xx other than 501/502/503/507 leaves it."""
    if err.status_code == 504:
        return HTTPError(503, err.log_message or "Storage did not answer in time")
    if err.status_code >= 500 and err.status_code not in (501, 502, 503, 507):
        return HTTPError(502, f"Storage error on {what or '/'}")
    return err


@contextlib.contextmanager
def http_error(path: str) -> Iterator[None]:
    """Translate any storage/journal exception raised inside into an HTTPError."""
    try:
        yield
    except HTTPError:
        raise
    except Exception as exc:
        raise to_http_error(exc, path) from exc
