"""The gRPC server interceptor: call log, fault rules, then Reva's auth check, around every method."""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from cs3.gateway.v1beta1 import gateway_api_pb2
from cs3.rpc.v1beta1 import code_pb2, status_pb2
from google.protobuf import message_factory

from .auth import Auth
from .config import UserSpec
from .faults import Deadline, Delay, Faults, GrpcAbort, Hang, Status, Unavailable

# Gateway methods that relay a provider's gRPC PermissionDenied as a CS3 PERMISSION_DENIED status with
# an empty message (reva master internal/grpc/services/gateway/storageprovider.go, e.g. InitiateFileUpload:
# ``if gstatus.Code(err) == codes.PermissionDenied { ... Status: &rpc.Status{Code: CODE_PERMISSION_DENIED}``;
# the same on edge). The provider re-checks the token: one that expires between the gateway's check and
# the provider's arrives this way (EmulatorConfig.token_rejection).
PROVIDER_RELAYED = frozenset(
    {
        "InitiateFileDownload",
        "InitiateFileUpload",
        "CreateContainer",
        "TouchFile",
        "Delete",
        "Move",
        "SetArbitraryMetadata",
        "UnsetArbitraryMetadata",
        "SetLock",
        "GetLock",
        "RefreshLock",
        "Unlock",
    }
)

# Reva's unprotected gateway methods (gw/gateway.go, internal/grpc/interceptors/auth).
UNPROTECTED = frozenset(
    {
        "Authenticate",
        "ListAuthProviders",
        "GetUser",
        "GetUserByClaim",
        "GetUserGroups",
        "GetPublicShareByToken",
    }
)

current_user: contextvars.ContextVar[UserSpec | None] = contextvars.ContextVar("current_user", default=None)
current_token: contextvars.ContextVar[str] = contextvars.ContextVar("current_token", default="")

_SERVICE = gateway_api_pb2.DESCRIPTOR.services_by_name["GatewayAPI"]


def response_class(method: str) -> type:
    cls: type = message_factory.GetMessageClass(_SERVICE.methods_by_name[method].output_type)
    return cls


@dataclass
class Call:
    """One recorded RPC. ``metadata`` keys are lower case, as on the wire."""

    method: str
    metadata: dict[str, Any]
    request: Any
    time: float = field(default_factory=time.time)
    #: Seconds the client's deadline left when the call arrived; None = the client set no deadline.
    deadline: float | None = None

    def __repr__(self) -> str:
        # The access token (metadata) and the request's credentials (Authenticate's client_secret,
        # WhoAmI's token) stay out of test output and tracebacks.
        keys = sorted(self.metadata)
        return f"Call(method={self.method!r}, metadata_keys={keys!r})"

    # Unpacks as the documented (method, metadata, request) triple.
    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.method, self.metadata, self.request))


def _time_remaining(context: grpc.aio.ServicerContext) -> float | None:
    """grpc reports "no deadline" as a practically infinite remaining time."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 10 * 365 * 86400:
        return None
    return float(remaining)


class GatewayInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self, auth: Auth, faults: Faults, calls: list[Call], token_rejection: str = "raised"
    ) -> None:
        self._auth = auth
        self._faults = faults
        self._calls = calls
        self._token_rejection = token_rejection

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
            self._calls.append(Call(method, metadata, request, deadline=_time_remaining(context)))
            reply = await self._apply_fault(method, context)
            if reply is not None:
                return reply
            if method not in UNPROTECTED:
                token = metadata.get("x-access-token", "")
                if not token:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "auth: core access token not found")
                user = self._auth.verify(token)
                if user is None and method in PROVIDER_RELAYED and self._token_rejection == "empty_denied":
                    # The most hostile reading: every token refusal on these methods is the
                    # provider's, relayed without a message.
                    return response_class(method)(
                        status=status_pb2.Status(code=code_pb2.CODE_PERMISSION_DENIED, message="")
                    )
                if user is None:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED, "auth: core access token is invalid"
                    )
                current_user.set(user)
                current_token.set(token)
            result = inner(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _apply_fault(self, method: str, context: grpc.aio.ServicerContext) -> Any:
        action = self._faults.take_grpc(method)
        if action is None:
            return None
        if isinstance(action, Unavailable):
            await context.abort(grpc.StatusCode.UNAVAILABLE, action.message)
        if isinstance(action, Deadline):
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, action.message)
        if isinstance(action, GrpcAbort):
            await context.abort(grpc.StatusCode[action.code.upper()], action.details)
        if isinstance(action, Status):
            return response_class(method)(status=status_pb2.Status(code=action.code, message=action.message))
        if isinstance(action, Delay):
            import asyncio

            await asyncio.sleep(action.seconds)
        if isinstance(action, Hang):
            await self._faults.wait_released()
        return None
