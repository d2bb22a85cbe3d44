"""Typed errors and the table that normalises every driver's way of reporting them.

Three layers can fail: a raised gRPC error (transport, auth interceptor, gateway Go errors), a
``status.code`` in a normal reply (the storage driver), and an HTTP status from the data plane. Drivers
disagree: EOS reports "not found" as INTERNAL "... (code: 2)", lock conflicts arrive as
FAILED_PRECONDITION, ABORTED or LOCKED, an expired token is PERMISSION_DENIED "... access token is
invalid". Everything funnels through `from_status`, `from_rpc_error` and `from_http` here, so callers
only ever see the classes below.

Messages are short and never carry a token: callers build them from the operation, the path and the
server's message (which Reva never fills with credentials).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypedDict

import grpc

if TYPE_CHECKING:
    from .types import Lock


class Where(TypedDict):
    """What failed, as every error carries it (the keyword arguments of `CS3Error`)."""

    op: str | None
    path: str | None
    code: str | None


class CS3Error(Exception):
    """Base of every client error. ``op`` and ``path`` say what failed; ``code`` is the raw cause."""

    #: Short machine-friendly name used in logs and journal rows.
    kind = "error"

    def __init__(
        self, message: str = "", *, op: str | None = None, path: str | None = None, code: str | None = None
    ) -> None:
        self.message = message
        self.op = op
        self.path = path
        self.code = code
        super().__init__(self._render())

    def _render(self) -> str:
        where = " ".join(p for p in (self.op, repr(self.path) if self.path else None) if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} [{self.code}]" if self.code else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render()!r})"


class NotFound(CS3Error):
    kind = "not_found"


class AlreadyExists(CS3Error):
    kind = "already_exists"


class PermissionDenied(CS3Error):
    kind = "permission_denied"


class AmbiguousDenial(PermissionDenied):
    """PERMISSION_DENIED with an empty message. Reva's gateway relays a provider that refused the
    request's token (expired between the gateway's check and the provider's) this way on mutating RPCs
    (GW: ``codes.PermissionDenied`` -> ``rpc.Code_CODE_PERMISSION_DENIED`` with no message). The client
    logs in again once and retries; refused again, it is a plain permission denial."""

    kind = "permission_denied"


class Locked(CS3Error):
    """The resource is locked by someone else (or our lock id was refused). ``holder`` names them."""

    kind = "locked"

    def __init__(
        self, message: str = "", *, holder: str | None = None, lock: Lock | None = None, **kw: str | None
    ) -> None:
        self.holder = holder
        self.lock = lock
        super().__init__(message, **kw)

    def _render(self) -> str:
        base = super()._render()
        return f"{base} (held by {self.holder})" if self.holder else base


class PreconditionFailed(CS3Error):
    """An etag / existence precondition did not hold (someone else changed the resource)."""

    kind = "precondition_failed"


class QuotaExceeded(CS3Error):
    kind = "quota_exceeded"


class Unauthenticated(CS3Error):
    """The server rejected our credentials or token. The client re-logs in once before raising it."""

    kind = "unauthenticated"


class AuthBlocked(Unauthenticated):
    """Login keeps failing with the current secret: pause and wait for the token file to change.

    Callers must not turn this into a permanent failure; ``await err.wait_for_change()`` returns once
    ``token_path`` holds a different secret, after which calls may be retried.
    """

    kind = "auth_blocked"

    def __init__(
        self, message: str = "", *, waiter: Callable[[], Awaitable[None]] | None = None, **kw: str | None
    ) -> None:
        self._waiter = waiter
        super().__init__(message, **kw)

    async def wait_for_change(self) -> None:
        if self._waiter is not None:
            await self._waiter()


class Transient(CS3Error):
    """Worth retrying later. ``connectivity`` is True when the server could not be reached at all
    (the engine's offline breaker counts those)."""

    kind = "transient"

    def __init__(self, message: str = "", *, connectivity: bool = False, **kw: str | None) -> None:
        self.connectivity = connectivity
        #: The transport's own wording (addresses, grpc-core text), for debug logs only.
        self.detail = ""
        super().__init__(message, **kw)


class Unimplemented(CS3Error):
    kind = "unimplemented"


class InvalidArgument(CS3Error):
    kind = "invalid_argument"


class ServerError(CS3Error):
    """An error the server could not explain (INTERNAL without a recognisable cause). Not retried."""

    kind = "server_error"


# --- the normalising table -------------------------------------------------------------------------

# cs3.rpc.v1beta1.Code values (status.proto).
OK = 1
CANCELLED = 2
UNKNOWN = 3
INVALID_ARGUMENT = 4
DEADLINE_EXCEEDED = 5
NOT_FOUND = 6
ALREADY_EXISTS = 7
PERMISSION_DENIED = 8
UNAUTHENTICATED = 9
RESOURCE_EXHAUSTED = 10
FAILED_PRECONDITION = 11
ABORTED = 12
OUT_OF_RANGE = 13
UNIMPLEMENTED = 14
INTERNAL = 15
UNAVAILABLE = 16
DATA_LOSS = 17
REDIRECTION = 18
INSUFFICIENT_STORAGE = 19
LOCKED = 20
TOO_EARLY = 21

CODE_NAMES = {
    OK: "OK",
    CANCELLED: "CANCELLED",
    UNKNOWN: "UNKNOWN",
    INVALID_ARGUMENT: "INVALID_ARGUMENT",
    DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    NOT_FOUND: "NOT_FOUND",
    ALREADY_EXISTS: "ALREADY_EXISTS",
    PERMISSION_DENIED: "PERMISSION_DENIED",
    UNAUTHENTICATED: "UNAUTHENTICATED",
    RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
    FAILED_PRECONDITION: "FAILED_PRECONDITION",
    ABORTED: "ABORTED",
    OUT_OF_RANGE: "OUT_OF_RANGE",
    UNIMPLEMENTED: "UNIMPLEMENTED",
    INTERNAL: "INTERNAL",
    UNAVAILABLE: "UNAVAILABLE",
    DATA_LOSS: "DATA_LOSS",
    REDIRECTION: "REDIRECTION",
    INSUFFICIENT_STORAGE: "INSUFFICIENT_STORAGE",
    LOCKED: "LOCKED",
    TOO_EARLY: "TOO_EARLY",
}

#: Operations whose conflicts mean "someone else holds the lock".
LOCK_OPS = frozenset({"set_lock", "refresh_lock", "unlock", "get_lock"})
#: Share operations: ABORTED there is a share-hierarchy conflict, UNKNOWN a duplicate (CERNBox).
SHARE_OPS = frozenset({"create_share", "update_share", "create_link", "update_link"})

# EOS wraps errno into INTERNAL messages: "... (code: 2)" (eos/client/grpc/utils.go:16-33).
_ERRNO_RE = re.compile(r"\(code: ?(\d+)\)")
_ERRNO_MAP: dict[int, type[CS3Error]] = {
    2: NotFound,  # ENOENT
    17: AlreadyExists,  # EEXIST
    1: PermissionDenied,  # EPERM
    13: PermissionDenied,  # EACCES
    28: QuotaExceeded,  # ENOSPC
    122: QuotaExceeded,  # EDQUOT
    39: PreconditionFailed,  # ENOTEMPTY
    20: PreconditionFailed,  # ENOTDIR
    21: PreconditionFailed,  # EISDIR
    16: Locked,  # EBUSY
    11: Transient,  # EAGAIN
    110: Transient,  # ETIMEDOUT
    5: Transient,  # EIO
}

_TOKEN_INVALID = "access token is invalid"
_TOKEN_MISSING = "access token not found"


def _looks_not_found(message: str) -> bool:
    m = message.lower()
    return "not found" in m or "no such file" in m or "does not exist" in m


def _looks_lock(message: str) -> bool:
    return "lock" in message.lower()


def is_token_rejection(code: int, message: str) -> bool:
    """Reva reports an expired or revoked token as PERMISSION_DENIED "... access token is invalid"."""
    if code == UNAUTHENTICATED:
        return True
    return code == PERMISSION_DENIED and (_TOKEN_INVALID in message or _TOKEN_MISSING in message)


def from_status(
    code: int,
    message: str = "",
    *,
    op: str | None = None,
    path: str | None = None,
    gateway_raised: bool = False,
) -> CS3Error:
    """Map a CS3 status code (or a raised gRPC code translated to CS3 numbering) to an error.

    ``gateway_raised`` marks codes that arrived as raised gRPC errors: UNKNOWN there is a gateway Go
    error (provider unreachable, share DB hiccup) and is transient.
    """
    name = CODE_NAMES.get(code, str(code))
    msg = message or name.lower()
    kw: Where = {"op": op, "path": path, "code": name}
    if is_token_rejection(code, message):
        return Unauthenticated(msg, **kw)
    if code == NOT_FOUND:
        return NotFound(msg, **kw)
    if code == ALREADY_EXISTS:
        return AlreadyExists(msg, **kw)
    if code == PERMISSION_DENIED:
        # decomposedfs refuses a refresh/unlock by another holder with PERMISSION_DENIED.
        if op in ("refresh_lock", "unlock") and _looks_lock(message):
            return Locked(msg, **kw)
        if not message and not gateway_raised:
            return AmbiguousDenial("permission denied", **kw)
        return PermissionDenied(msg, **kw)
    if code == LOCKED:
        return Locked(msg, **kw)
    if code in (FAILED_PRECONDITION, ABORTED):
        if op in LOCK_OPS or _looks_lock(message):
            return Locked(msg, **kw)
        if op in SHARE_OPS:
            return AlreadyExists(msg, **kw) if code == ABORTED else PreconditionFailed(msg, **kw)
        if code == ABORTED and op in (
            "upload",
            "move",
            "delete",
            "set_metadata",
            "unset_metadata",
            "restore_version",
            "touch",
        ):
            # decomposedfs CheckLock: a lock id mismatch is ABORTED even without "lock" in the text.
            return Locked(msg, **kw)
        return PreconditionFailed(msg, **kw)
    if code == INSUFFICIENT_STORAGE:
        return QuotaExceeded(msg, **kw)
    if code in (INVALID_ARGUMENT, OUT_OF_RANGE):
        return InvalidArgument(msg, **kw)
    if code == UNIMPLEMENTED:
        return Unimplemented(msg, **kw)
    if code in (UNAVAILABLE, DEADLINE_EXCEEDED) and gateway_raised:
        # grpc-core's transport text ("failed to connect to all addresses; ipv4:...") is for logs, not
        # for the person reading the sync panel or an error dialog.
        short = "storage unreachable" if code == UNAVAILABLE else "storage did not answer in time"
        err = Transient(short, connectivity=True, **kw)
        err.detail = message
        return err
    if code in (UNAVAILABLE, DEADLINE_EXCEEDED):
        return Transient(msg, **kw)
    if code in (CANCELLED, TOO_EARLY, RESOURCE_EXHAUSTED) and not (
        code == RESOURCE_EXHAUSTED and gateway_raised
    ):
        return Transient(msg, **kw)
    if code == UNKNOWN:
        if op in SHARE_OPS and "exist" in message.lower():
            # CERNBox: a duplicate share comes back as UNKNOWN "ShareClient returned error...".
            return AlreadyExists(msg, **kw)
        if gateway_raised or _looks_transient(message):
            return Transient(msg, **kw)
        return _from_message(msg, kw) or ServerError(msg, **kw)
    if code in (INTERNAL, DATA_LOSS):
        return _from_message(msg, kw) or ServerError(msg, **kw)
    return ServerError(msg, **kw)


def _looks_transient(message: str) -> bool:
    m = message.lower()
    return any(s in m for s in ("unavailable", "connection refused", "timeout", "timed out", "try again"))


def _from_message(msg: str, kw: Where) -> CS3Error | None:
    """Recover a type from an untyped (INTERNAL / UNKNOWN) message, as EOS forces us to."""
    m = _ERRNO_RE.search(msg)
    if m:
        cls = _ERRNO_MAP.get(int(m.group(1)))
        if cls is not None:
            return cls(msg, **kw)
    if _looks_not_found(msg):
        return NotFound(msg, **kw)
    low = msg.lower()
    if "already exists" in low or "file exists" in low:
        return AlreadyExists(msg, **kw)
    if "already locked" in low or "lock mismatch" in low:
        return Locked(msg, **kw)
    if "quota" in low or "no space left" in low:
        return QuotaExceeded(msg, **kw)
    return None


# gRPC transport codes -> CS3 numbering (the enums are laid out alike up to 16).
_GRPC_TO_CS3 = {
    grpc.StatusCode.CANCELLED: CANCELLED,
    grpc.StatusCode.UNKNOWN: UNKNOWN,
    grpc.StatusCode.INVALID_ARGUMENT: INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED: PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED: UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION: FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED: ABORTED,
    grpc.StatusCode.OUT_OF_RANGE: OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED: UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL: INTERNAL,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS: DATA_LOSS,
}


def from_grpc_code(
    code: grpc.StatusCode, details: str = "", *, op: str | None = None, path: str | None = None
) -> CS3Error:
    """Map a raised gRPC error (``AioRpcError.code()/details()``)."""
    cs3_code = _GRPC_TO_CS3.get(code, UNKNOWN)
    if code == grpc.StatusCode.INTERNAL and _looks_transient(details):
        # grpc-core reports a reset stream / broken connection as INTERNAL with a transport message.
        err = Transient(
            "connection to the storage was lost", connectivity=True, op=op, path=path, code="INTERNAL"
        )
        err.detail = details
        return err
    return from_status(cs3_code, details or "", op=op, path=path, gateway_raised=True)


def from_rpc_error(err: grpc.aio.AioRpcError, *, op: str | None = None, path: str | None = None) -> CS3Error:
    return from_grpc_code(err.code(), err.details() or "", op=op, path=path)


def from_http(status: int, *, op: str | None = None, path: str | None = None, message: str = "") -> CS3Error:
    """Map a data-plane HTTP status."""
    kw: Where = {"op": op, "path": path, "code": f"HTTP {status}"}
    msg = message or f"HTTP {status}"
    if status == 401:
        return Unauthenticated(msg, **kw)
    if status == 403:
        return PermissionDenied(msg, **kw)
    if status in (404, 410):
        return NotFound(msg, **kw)
    if status == 409 and op == "upload":
        # EOS: the lock holder did not match (X-Lock-Holder / user); tusd: offset mismatch is
        # handled by the tus code before it gets here.
        return Locked(msg, **kw)
    if status == 423:
        return Locked(msg, **kw)
    if status == 409:
        return PreconditionFailed(msg, **kw)
    if status == 412:
        return PreconditionFailed(msg, **kw)
    if status == 507:
        return QuotaExceeded(msg, **kw)
    if status == 413 or status == 400 or status == 415:
        return InvalidArgument(msg, **kw)
    if status == 419:
        # checksum mismatch: the bytes were damaged on the way; sending again is the remedy
        return Transient(msg, **kw)
    if status == 416:
        return InvalidArgument(msg, **kw)
    if status == 501:
        return Unimplemented(msg, **kw)
    if status >= 500 or status == 408 or status == 429:
        return Transient(msg, **kw)
    return ServerError(msg, **kw)


def is_retryable(err: BaseException) -> bool:
    return isinstance(err, Transient)
