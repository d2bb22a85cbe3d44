"""Fault rules: what the gRPC wrapper and the HTTP data plane consult before doing real work.

A rule matches a gRPC method name or an HTTP "METHOD /path-pattern", skips its first ``after``
matches, then fires ``times`` times (``None`` = forever) with the given ``probability``. When several
rules match, the newest one that fires wins.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unavailable:
    """gRPC: abort with UNAVAILABLE, as a dead gateway or proxy would."""

    message: str = "emulated: connection refused"


@dataclass(frozen=True)
class Deadline:
    """gRPC: abort with DEADLINE_EXCEEDED."""

    message: str = "emulated: deadline exceeded"


@dataclass(frozen=True)
class Status:
    """gRPC: a normal response carrying this CS3 code (cs3.rpc.v1beta1.Code, e.g. 15 = INTERNAL).
    HTTP: reply with this HTTP status and an empty body."""

    code: int
    message: str = ""


@dataclass(frozen=True)
class GrpcAbort:
    """gRPC: abort the call with this gRPC status code name (e.g. "UNKNOWN") and details."""

    code: str
    details: str = ""


@dataclass(frozen=True)
class Delay:
    """Wait this many (real) seconds, then proceed normally."""

    seconds: float


@dataclass(frozen=True)
class Hang:
    """Never answer (until ``Faults.release_hangs()`` or shutdown); the client's deadline must fire."""


@dataclass(frozen=True)
class DropAfter:
    """HTTP: abort the transport after this many body bytes (request body for PUT/PATCH, reply for GET)."""

    bytes: int


@dataclass(frozen=True)
class DropReply:
    """HTTP: process the request fully (a simple PUT commits, a tus PATCH keeps its bytes and advances
    the offset), then abort the transport instead of sending the reply, whatever it would have been: a
    lost reply on a completed request. A GET is dropped before any of its reply is sent."""


@dataclass(frozen=True)
class Throttle:
    """HTTP: move body bytes at most this fast."""

    bytes_per_second: int


@dataclass(frozen=True)
class StallAfter:
    """HTTP: stop moving bytes after this many, keeping the connection open (until released)."""

    bytes: int


@dataclass(frozen=True)
class WrongLength:
    """HTTP GET: advertise Content-Length = size + delta. Negative: the body is cut to the advertised
    length (a silently short read); positive: the full body is sent, then the connection is closed."""

    delta: int = -1


Action = (
    Unavailable
    | Deadline
    | Status
    | GrpcAbort
    | Delay
    | Hang
    | DropAfter
    | DropReply
    | Throttle
    | StallAfter
    | WrongLength
)

_ACTIONS: dict[str, type[Action]] = {
    "unavailable": Unavailable,
    "deadline": Deadline,
    "status": Status,
    "grpc_abort": GrpcAbort,
    "delay": Delay,
    "hang": Hang,
    "drop_after": DropAfter,
    "drop_reply": DropReply,
    "throttle": Throttle,
    "stall_after": StallAfter,
    "wrong_length": WrongLength,
}
_ACTION_NAMES = {cls: name for name, cls in _ACTIONS.items()}


def action_from_json(data: dict[str, Any]) -> Action:
    """``{"type": "drop_after", "bytes": 100}`` -> ``DropAfter(100)``."""
    if not isinstance(data, dict):
        raise ValueError("action must be a JSON object")
    data = dict(data)
    kind = data.pop("type")
    if kind not in _ACTIONS:
        raise ValueError(f"unknown action type {kind!r}; expected one of {sorted(_ACTIONS)}")
    cls = _ACTIONS[kind]
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{kind} takes no {', '.join(unknown)}")
    # Check the JSON types here, so a bad rule is a 400 now rather than a failure when it fires.
    for f in fields(cls):
        if f.name not in data:
            continue
        value, expected = data[f.name], _JSON_TYPES[str(f.type)]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ValueError(f"{kind}.{f.name} must be {f.type}, not {type(value).__name__}")
        if (
            f.name in ("seconds", "bytes", "bytes_per_second")
            and isinstance(value, (int, float))
            and value < 0
        ):
            raise ValueError(f"{kind}.{f.name} must not be negative")
    if cls is GrpcAbort:
        import grpc

        code = str(data.get("code", ""))
        if code.upper() not in grpc.StatusCode.__members__:
            raise ValueError(f"grpc_abort.code must be a gRPC status name, not {code!r}")
    return cls(**data)


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}


def action_to_json(action: Action) -> dict[str, Any]:
    return {"type": _ACTION_NAMES[type(action)], **asdict(action)}


# --- rules -----------------------------------------------------------------------------------


@dataclass
class Rule:
    kind: Literal["grpc", "http"]
    pattern: str  # gRPC method name or HTTP path glob
    action: Action
    http_method: str | None = None  # HTTP only; None = any
    times: int | None = 1
    after: int = 0
    probability: float = 1.0
    seen: int = 0
    fired: int = 0
    id: int = field(default=0)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "match": self.pattern if self.http_method is None else f"{self.http_method} {self.pattern}",
            "action": action_to_json(self.action),
            "times": self.times,
            "after": self.after,
            "probability": self.probability,
            "seen": self.seen,
            "fired": self.fired,
        }


_HTTP_METHODS = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "*"}


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _split_route(route: str) -> tuple[str | None, str]:
    """ "PUT" -> ("PUT", "*"); "GET /data/*" -> ("GET", "/data/*"); "/data/tus/*" -> (None, ...)."""
    head, _, rest = route.strip().partition(" ")
    if head.upper() in _HTTP_METHODS:
        method = None if head == "*" else head.upper()
        return method, rest.strip() or "*"
    return None, route.strip()


class Faults:
    """The rule table plus the outage/restart hooks the emulator wires in."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._release: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.outage_hook: Callable[[], Awaitable[None]] | None = None
        self.restart_hook: Callable[[], Awaitable[None]] | None = None

    # -- registering -----------------------------------------------------------------------
    def grpc(
        self,
        method: str,
        action: Action,
        *,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Rule:
        """Fault the gRPC ``method`` (e.g. "Stat", "*" for all)."""
        return self._add(Rule("grpc", method, action, None, times, after, probability))

    def http(
        self,
        route: str,
        action: Action,
        *,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Rule:
        """Fault data-plane requests. ``route`` is "METHOD", "METHOD /path/glob" or "/path/glob"; the
        path is the internal data path (``/data/simple/...``, ``/data/tus/...``), whether the request
        came in directly or through ``/datagateway``."""
        method, pattern = _split_route(route)
        return self._add(Rule("http", pattern, action, method, times, after, probability))

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule | int) -> None:
        rule_id = rule if isinstance(rule, int) else rule.id
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def clear(self) -> None:
        """Drop every rule and release anything hanging."""
        with self._lock:
            self._rules.clear()
        self.release_hangs()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    # -- consulting ------------------------------------------------------------------------
    def take_grpc(self, method: str) -> Action | None:
        return self._take(lambda r: r.kind == "grpc" and fnmatch.fnmatchcase(method, r.pattern))

    def take_http(self, method: str, path: str) -> Action | None:
        return self._take(
            lambda r: (
                r.kind == "http"
                and (r.http_method is None or r.http_method == method)
                and fnmatch.fnmatchcase(path, r.pattern)
            )
        )

    def _take(self, matches: Callable[[Rule], bool]) -> Action | None:
        with self._lock:
            # Newest first, so a test can override a standing rule by adding another.
            for rule in reversed(self._rules):
                if rule.exhausted or not matches(rule):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.probability < 1.0 and random.random() >= rule.probability:
                    continue
                rule.fired += 1
                waiters, self._waiters = self._waiters, []
                for loop, future in waiters:
                    loop.call_soon_threadsafe(_resolve, future)
                return rule.action
        return None

    async def wait_fired(self, rule: Rule, count: int = 1) -> None:
        """Until ``rule`` has fired ``count`` times (e.g. a Hang is in place): synchronisation without
        sleeping."""
        loop = asyncio.get_running_loop()
        while True:
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                if rule.fired >= count:
                    return
                self._waiters.append((loop, future))
            await future

    # -- hangs and outages -----------------------------------------------------------------
    async def wait_released(self) -> None:
        """Block a hanging request until ``release_hangs()``."""
        if self._release is None:
            self._release = (asyncio.get_running_loop(), asyncio.Event())
        await self._release[1].wait()

    def release_hangs(self) -> None:
        """Let hanging requests go; callable from any thread (tests drive `EmulatorThread` from theirs)."""
        release, self._release = self._release, None
        if release is None:
            return
        loop, event = release
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def outage(self) -> None:
        """Stop the gRPC server; its port stays reserved for ``restart()``."""
        if self.outage_hook is None:
            raise RuntimeError("emulator not running")
        await self.outage_hook()

    async def restart(self) -> None:
        """Start the gRPC server again on the same port."""
        if self.restart_hook is None:
            raise RuntimeError("emulator not running")
        await self.restart_hook()

    # the names the admin API uses
    grpc_outage = outage
    restart_grpc = restart
