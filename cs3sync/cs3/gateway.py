"""Calls to the CS3 GatewayAPI: lazy channel, deadline, token metadata, typed errors, re-login.

Every RPC goes through `Gateway.call`, which
- attaches ``x-access-token`` (lower case, as Reva expects) and a deadline;
- turns both a raised gRPC error and a non-OK ``status.code`` into an `errors` class;
- on a token rejection logs in again (single flight) and retries once at once, which is safe for
  mutations too because the auth interceptor rejected the call before it ran;
- retries transient failures with backoff only when the caller says the RPC is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import cs3.gateway.v1beta1.gateway_api_pb2 as gw
import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc
import grpc

from cs3sync.logs import get_logger

from . import errors
from .auth import Authenticator, Clock, Secret
from .channel import create_channel, grpc_credentials
from .config import CS3Config
from .retry import Sleep, retry_idempotent

log = get_logger(__name__)

RequestLike = Any  # a protobuf message, or a callable(token) -> message (WhoAmI wants the token inside)


class Gateway:
    def __init__(self, config: CS3Config, *, clock: Clock = time.time, sleep: Sleep | None = None) -> None:
        self.config = config
        self._sleep = sleep
        self._channel: grpc.aio.Channel | None = None
        self._stub: gw_grpc.GatewayAPIStub | None = None
        self._connect_lock = anyio.Lock()
        self._closed = False
        self.auth = Authenticator(config, self._authenticate, clock=clock)

    def __repr__(self) -> str:
        return f"Gateway(host={self.config.host!r}, connected={self._channel is not None})"

    async def stub(self) -> gw_grpc.GatewayAPIStub:
        if self._stub is None:
            async with self._connect_lock:
                if self._closed:
                    raise errors.Transient("client is closed", connectivity=True)
                if self._stub is None:
                    creds = None
                    if self.config.ssl_enabled:
                        creds = await anyio.to_thread.run_sync(grpc_credentials, self.config)
                    self._channel = create_channel(self.config, creds)
                    self._stub = gw_grpc.GatewayAPIStub(self._channel)
        return self._stub

    async def aclose(self) -> None:
        self._closed = True
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def _authenticate(self, login_type: str, client_id: str, secret: str) -> str:
        req = gw.AuthenticateRequest(type=login_type, client_id=client_id, client_secret=secret)
        # Authenticate is unprotected: no token. Retrying it is harmless (it only mints a token).
        resp = await retry_idempotent(
            lambda: self._invoke(
                "Authenticate",
                req,
                op="login",
                path=None,
                metadata=None,
                deadline=self.config.metadata_deadline,
            ),
            attempts=self.config.retry_attempts,
            initial_wait=self.config.retry_initial_wait,
            max_wait=self.config.retry_max_wait,
            sleep=self._sleep,
        )
        if not resp.token:
            raise errors.Unauthenticated("login returned no token", op="login")
        return str(resp.token)

    async def _invoke(
        self,
        method: str,
        request: Any,
        *,
        op: str,
        path: str | None,
        metadata: tuple[tuple[str, str], ...] | None,
        deadline: float,
    ) -> Any:
        stub = await self.stub()
        started = time.monotonic()
        try:
            resp = await getattr(stub, method)(request, timeout=deadline, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            err = errors.from_rpc_error(exc, op=op, path=path)
            log.debug(
                "cs3.rpc",
                method=method,
                op=op,
                path=path,
                error=err.kind,
                grpc=exc.code().name,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
            raise err from None
        status = getattr(resp, "status", None)
        if status is not None and status.code != errors.OK:
            err = errors.from_status(status.code, status.message, op=op, path=path)
            log.debug(
                "cs3.rpc",
                method=method,
                op=op,
                path=path,
                error=err.kind,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
            raise err
        log.debug(
            "cs3.rpc", method=method, op=op, path=path, ms=round((time.monotonic() - started) * 1000, 1)
        )
        return resp

    async def with_token(self, fn: Callable[[Secret], Awaitable[Any]]) -> Any:
        """Run ``fn(token)``; on a token rejection log in again once and re-run it; if the fresh token
        is rejected too, raise `errors.AuthBlocked`. Used by RPCs and by the data plane (HTTP 401)."""
        token = await self.auth.token()
        try:
            return await fn(token)
        except errors.AuthBlocked:
            raise
        except (errors.Unauthenticated, errors.AmbiguousDenial) as exc:
            # An empty-message PERMISSION_DENIED may be the provider refusing our token (storage
            # behaviours row 10): a fresh token tells; refused again, it is a real denial.
            log.info("cs3.auth.rejected", user=self.config.client_id, error=exc.kind)
            fresh = await self.auth.relogin(token)
        try:
            return await fn(fresh)
        except (errors.AuthBlocked, errors.AmbiguousDenial):
            raise
        except errors.Unauthenticated as exc:
            raise self.auth.blocked_error(exc) from None

    async def call(
        self,
        method: str,
        request: RequestLike,
        *,
        op: str,
        path: str | None = None,
        idempotent: bool = False,
        deadline: float | None = None,
    ) -> Any:
        deadline = deadline if deadline is not None else self.config.metadata_deadline

        async def attempt(token: Secret) -> Any:
            req = request(token.reveal()) if callable(request) else request
            return await self._invoke(
                method,
                req,
                op=op,
                path=path,
                metadata=(("x-access-token", token.reveal()),),
                deadline=deadline,
            )

        if not idempotent:
            return await self.with_token(attempt)
        cfg = self.config
        return await retry_idempotent(
            lambda: self.with_token(attempt),
            attempts=cfg.retry_attempts,
            initial_wait=cfg.retry_initial_wait,
            max_wait=cfg.retry_max_wait,
            sleep=self._sleep,
        )
