"""Talking to the emulator subprocess: its loopback admin API (call and HTTP logs, faults) and the raw
transfer baseline (one InitiateFileUpload + one PUT or PATCH of the whole file, no journal, no Jupyter).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

STREAM_PIECE = 1024 * 1024


class Admin:
    """Client of the emulator's ``/_admin`` endpoint (the fault hooks of docs/emulator.md)."""

    def __init__(self, http_url: str, secret: str):
        from cs3sync.emulator.admin import ADMIN_HEADER

        self.client = httpx.AsyncClient(base_url=http_url, timeout=30.0, headers={ADMIN_HEADER: secret})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.client.request(method, "/_admin/" + path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def calls(self) -> list[dict[str, Any]]:
        """Every recorded RPC, oldest first (each has at least ``method``)."""
        data = await self._json("GET", "calls")
        return list(data["calls"] if isinstance(data, dict) else data)

    async def http_log(self) -> list[dict[str, Any]]:
        """Every recorded data-plane request: method, (internal data) path, status, bytes_in, bytes_out."""
        data = await self._json("GET", "http_log")
        return list(data["requests"] if isinstance(data, dict) else data)

    async def clear_logs(self) -> None:
        await self._json("POST", "logs/clear")

    async def info(self) -> dict[str, Any]:
        return dict(await self._json("GET", "info"))

    async def fault(
        self, kind: str, match: str, action: dict[str, Any], times: int | None = 1, after: int = 0
    ) -> Any:
        """Add a fault rule, e.g.
        ``fault("http", "PUT /data/simple/*", {"type": "drop_after", "bytes": n})``."""
        rule = {"kind": kind, "match": match, "action": action, "times": times, "after": after}
        return await self._json("POST", "faults", rule)

    async def clear_faults(self) -> None:
        await self._json("POST", "faults/clear")


class CallMark:
    """The RPCs and data-plane requests since ``start()``, which empties the emulator's logs (so they
    stay short and cheap to fetch; nothing else reads them during a run)."""

    def __init__(self, admin: Admin):
        self.admin = admin

    async def start(self) -> None:
        await self.admin.clear_logs()

    async def new_calls(self) -> list[dict[str, Any]]:
        return await self.admin.calls()

    async def new_http(self) -> list[dict[str, Any]]:
        return await self.admin.http_log()


def upload_bytes(http_entries: list[dict[str, Any]]) -> int:
    """Request body bytes received by upload routes (simple PUT, tus PATCH), counted once per request."""
    return sum(
        int(entry.get("bytes_in") or 0)
        for entry in http_entries
        if entry.get("method") in ("PUT", "PATCH") and "/datagateway" not in str(entry.get("path", ""))
    )


async def _file_pieces(path: Path, size: int) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        remaining = size
        while remaining > 0:
            piece = fh.read(min(STREAM_PIECE, remaining))
            if not piece:
                break
            remaining -= len(piece)
            yield piece


async def raw_upload(
    grpc_address: str, user: str, password: str, name: str, source: Path, size: int, protocol: str
) -> float:
    """Seconds for InitiateFileUpload + one streamed PUT (simple) or PATCH (tus) of ``source`` into the
    user's home: the physical limit of a push on this machine."""
    import cs3.gateway.v1beta1.gateway_api_pb2 as gw
    import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc
    import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
    import cs3.storage.provider.v1beta1.resources_pb2 as spr
    import cs3.types.v1beta1.types_pb2 as types
    import grpc

    async with grpc.aio.insecure_channel(grpc_address) as channel:
        stub = gw_grpc.GatewayAPIStub(channel)
        auth = await stub.Authenticate(
            gw.AuthenticateRequest(type="basic", client_id=user, client_secret=password)
        )
        if auth.status.code != 1:
            raise RuntimeError(f"Authenticate failed: {auth.status.message}")
        metadata = (("x-access-token", auth.token),)
        home = await stub.GetHome(sp.GetHomeRequest(), metadata=metadata)
        started = time.perf_counter()
        opaque = types.Opaque(
            map={"Upload-Length": types.OpaqueEntry(decoder="plain", value=str(size).encode())}
        )
        ref = spr.Reference(path=f"{home.path.rstrip('/')}/{name}")
        initiated = await stub.InitiateFileUpload(
            sp.InitiateFileUploadRequest(ref=ref, opaque=opaque), metadata=metadata
        )
        if initiated.status.code != 1:
            raise RuntimeError(f"InitiateFileUpload failed: {initiated.status.message}")
        offered = {p.protocol: p for p in initiated.protocols}
        if protocol not in offered:
            raise RuntimeError(f"the emulator does not offer {protocol} (offers {sorted(offered)})")
        endpoint = offered[protocol]
        headers = {"X-Reva-Transfer": endpoint.token, "x-access-token": auth.token}
        async with httpx.AsyncClient(timeout=600.0) as http:
            if protocol == "tus":
                headers |= {
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(size),
                }
                response = await http.patch(
                    endpoint.upload_endpoint, headers=headers, content=_file_pieces(source, size)
                )
            else:
                headers |= {"Upload-Length": str(size), "Content-Length": str(size)}
                response = await http.put(
                    endpoint.upload_endpoint, headers=headers, content=_file_pieces(source, size)
                )
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"raw {protocol} upload answered HTTP {response.status_code}")
        return time.perf_counter() - started
