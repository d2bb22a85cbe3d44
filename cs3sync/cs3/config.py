"""Connection settings for the CS3 client.

The names are the ``c.CS3Sync`` traits (and the old cs3-jupyter package's where one existed), so the
traitlets in `contents/` map onto these fields one to one. Nothing here performs I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024

AuthLoginType = Literal["basic", "bearer", "machine"]
VersionRefStyle = Literal["auto", "opaque", "resource_id"]


@dataclass(frozen=True)
class CS3Config:
    """Everything the client needs to reach one CS3 gateway as one user."""

    #: gRPC address of the gateway, ``host:port``.
    host: str
    #: TLS on the gRPC channel and certificate checks on the data plane. Plain text only when disabled.
    ssl_enabled: bool = True
    #: Verify server certificates (data plane; gRPC always verifies, give ``ssl_ca_cert`` instead).
    ssl_verify: bool = True
    #: PEM file with the CA bundle to trust instead of the system store.
    ssl_ca_cert: str | None = None
    #: PEM client certificate and key for mutual TLS.
    ssl_client_cert: str | None = None
    ssl_client_key: str | None = None

    #: "basic" (client_id + password in token_path), "bearer" (OIDC token in token_path),
    #: "machine" (client_id + API key in token_path).
    auth_login_type: AuthLoginType = "basic"
    #: User name (basic), user name or "<claim>:<value>" (machine); ignored by bearer.
    client_id: str = ""
    #: File holding the secret: password, OIDC access token or machine API key. Re-read on every login,
    #: so an external refresher can rewrite it while the server runs.
    token_path: str = ""
    #: Lifetime (s) assumed for a Reva token whose ``exp`` cannot be read.
    authtokenvalidity: float = 3600.0
    #: Log in again this many seconds before the Reva token's ``exp``.
    token_refresh_margin: float = 60.0
    #: When login is blocked (bad or expired secret), how often to poll token_path for a change.
    token_poll_interval: float = 2.0

    #: Use tus for uploads when the storage offers it and the file is at least ``tus_threshold`` bytes.
    tus_enabled: bool = True
    tus_threshold: int = 8 * MiB
    #: Size of each tus PATCH, and the unit of resumption.
    upload_chunk_size: int = 16 * MiB
    #: How many times one upload re-initiates after a failed simple PUT or an expired transfer token.
    upload_attempts: int = 3
    #: How many times a download or a tus upload resumes after a drop without making progress.
    transfer_resumes: int = 5

    #: Deadline (s) for every metadata RPC.
    metadata_deadline: float = 30.0
    #: Idle deadline (s) for data transfers: per chunk read/written, not for the whole file.
    transfer_deadline: float = 120.0
    #: TCP connect timeout (s) for the data plane.
    connect_timeout: float = 10.0
    #: gRPC keepalive ping interval (s). Reva (Go) answers faster pings with GOAWAY too_many_pings.
    keepalive: float = 300.0
    #: Largest gRPC reply accepted (bytes); big listings exceed gRPC's 4 MiB default.
    max_receive: int = 64 * MiB

    #: Attempts for idempotent RPCs (Stat, List, GetLock, ...) on transient errors, inside one call.
    retry_attempts: int = 3
    retry_initial_wait: float = 0.2
    retry_max_wait: float = 2.0

    #: Lock holder name sent as ``app_name`` and ``X-Lock-Holder``.
    lock_app_name: str = "cs3sync"
    #: Lock lifetime (s) requested on SetLock/RefreshLock.
    lock_expiration: float = 1800.0
    #: The storage has no lock support: lock calls become no-ops that report no lock.
    lock_not_impl: bool = False
    #: Emulate locks with an arbitrary-metadata attribute (storages without lock RPCs).
    lock_as_attr: bool = False

    #: How to ask for an old version's bytes: ``opaque`` (Reva master/EOS: ``opaque.version_key``),
    #: ``resource_id`` (oCIS: ``resource_id.opaque_id = key``), or ``auto`` (oCIS keys contain ".REV.").
    version_ref_style: VersionRefStyle = "auto"

    def __post_init__(self) -> None:
        if self.auth_login_type not in ("basic", "bearer", "machine"):
            raise ValueError(
                f"auth_login_type must be basic, bearer or machine, not {self.auth_login_type!r}"
            )
        if not self.host:
            raise ValueError("host is required (host:port of the CS3 gateway)")
        if self.keepalive < 300:
            # Go's default keepalive enforcement would close the connection with too_many_pings.
            raise ValueError("keepalive must be at least 300 s")
        if self.max_receive < 64 * MiB:
            raise ValueError("max_receive must be at least 64 MiB")
        if self.upload_chunk_size <= 0 or self.upload_attempts < 1 or self.retry_attempts < 1:
            raise ValueError("upload_chunk_size, upload_attempts and retry_attempts must be positive")
        if self.ssl_client_key and not self.ssl_client_cert:
            raise ValueError("ssl_client_key needs ssl_client_cert")

    def replace(self, **changes: object) -> CS3Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
