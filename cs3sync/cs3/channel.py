"""The gRPC channel and the data-plane TLS context, built from `CS3Config`.

Creating a grpc.aio channel does not connect; the first RPC does. So a client built while the gateway
is down costs nothing and its calls fail fast with UNAVAILABLE (no ``wait_for_ready``), which the
error table reports as `Transient(connectivity=True)`.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from cs3sync.logs import get_logger

from .config import CS3Config

log = get_logger(__name__)


def channel_options(config: CS3Config) -> list[tuple[str, int]]:
    return [
        # Reva's Go servers enforce a 5 min minimum ping interval; faster pings earn a GOAWAY.
        ("grpc.keepalive_time_ms", int(config.keepalive * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", config.max_receive),
        ("grpc.max_send_message_length", config.max_receive),
        # Come back quickly after a gateway restart instead of backing off for minutes: the backoff
        # between connection attempts is at most 1 s, so after a long outage the channel is usable
        # within about a second of the gateway's return (with 5 s, the queue's first save landed
        # 4.6 s after it; issue 14 asks for 2 s). One connection attempt a second to a gateway that
        # is down costs next to nothing.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1_000),
        ("grpc.enable_retries", 0),  # retries are ours: idempotent calls only (retry.py)
    ]


def _read(path: str | None) -> bytes | None:
    return Path(path).expanduser().read_bytes() if path else None


def _expand(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path else None


def grpc_credentials(config: CS3Config) -> grpc.ChannelCredentials:
    """Blocking (reads PEM files): call it from a worker thread."""
    if not config.ssl_verify:
        # gRPC Python cannot skip verification; trusting a given CA is the supported way.
        log.warning(
            "cs3.tls.verify_ignored_for_grpc",
            hint="ssl_verify=False applies to the data plane only; set ssl_ca_cert for gRPC",
        )
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config.ssl_ca_cert),
        private_key=_read(config.ssl_client_key),
        certificate_chain=_read(config.ssl_client_cert),
    )


def create_channel(config: CS3Config, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    """Must run on the event loop that will use the channel (grpc.aio binds to it)."""
    options = channel_options(config)
    if config.ssl_enabled:
        assert credentials is not None
        return grpc.aio.secure_channel(config.host, credentials, options=options)
    return grpc.aio.insecure_channel(config.host, options=options)


def http_verify(config: CS3Config) -> ssl.SSLContext | bool:
    """The ``verify`` argument of httpx. Blocking (reads PEM files): call it from a worker thread."""
    if not config.ssl_verify:
        return False
    if not (config.ssl_ca_cert or config.ssl_client_cert):
        return True
    ctx = ssl.create_default_context(cafile=_expand(config.ssl_ca_cert))
    certfile = _expand(config.ssl_client_cert)
    if certfile:
        ctx.load_cert_chain(certfile, _expand(config.ssl_client_key))
    return ctx
