"""The one exception the storage layer raises: a CS3 status code with Reva's message."""

from __future__ import annotations

import uuid

from cs3.rpc.v1beta1 import code_pb2, status_pb2


class CS3Error(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def not_found(cls, message: str) -> CS3Error:
        return cls(code_pb2.CODE_NOT_FOUND, message)

    @classmethod
    def internal(cls, message: str) -> CS3Error:
        return cls(code_pb2.CODE_INTERNAL, message)

    @classmethod
    def denied(cls, message: str = "permission denied") -> CS3Error:
        return cls(code_pb2.CODE_PERMISSION_DENIED, message)


class HTTPError(Exception):
    """A data-plane failure: the HTTP status to answer with (empty body, as Reva's datagateway relays)."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason


def status(code: int = code_pb2.CODE_OK, message: str = "") -> status_pb2.Status:
    """The CS3 status every reply carries (with a fresh trace id, as Reva sets one)."""
    return status_pb2.Status(code=code, message=message, trace=uuid.uuid4().hex)
