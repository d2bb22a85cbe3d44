"""What the emulator's parts (servicer, sharing, data plane, admin API, demo) use of the `Emulator` that
composes them, as a `typing.Protocol`: they depend on this instead of on `server` (which imports them),
so the package has no import circle."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from multidict import CIMultiDict

from .auth import Auth, Transfers
from .clock import Clock
from .config import EmulatorConfig
from .faults import Faults
from .interceptor import Call
from .storage import Storage


class HttpRecord(NamedTuple):
    """One recorded data-plane request. ``path`` is the internal data path when the request came
    through the datagateway. ``status`` 0 = the connection was dropped (by a fault or the client)."""

    method: str
    path: str
    headers: CIMultiDict[str]
    status: int
    bytes_in: int
    bytes_out: int

    def __repr__(self) -> str:  # no header values: they carry the access and transfer tokens
        return (
            f"HttpRecord({self.method} {self.path} -> {self.status}, in={self.bytes_in}, "
            f"out={self.bytes_out}, headers={sorted(self.headers.keys())})"
        )


class EmulatorHost(Protocol):
    config: EmulatorConfig
    clock: Clock
    auth: Auth
    transfers: Transfers
    faults: Faults
    storage: Storage
    #: Every gRPC call and data-plane request, for the tests' assertions.
    calls: list[Call]
    http_log: list[HttpRecord]

    @property
    def grpc_address(self) -> str: ...

    @property
    def http_url(self) -> str: ...

    def home(self, username: str) -> str: ...
