"""A tiny raw client for emulator tests: grpc.aio stubs + httpx, nothing from cs3sync.cs3."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from cs3sync.emulator import Emulator

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}


def ref(path: str) -> res.Reference:
    return res.Reference(path=path)


def opaque(values: dict[str, str] | None = None, **more: str) -> types_pb2.Opaque:
    items = {**(values or {}), **more}
    return types_pb2.Opaque(
        map={k: types_pb2.OpaqueEntry(decoder="plain", value=v.encode()) for k, v in items.items()}
    )


class Gateway:
    """One user's connection to the emulator."""

    def __init__(self, emu: Emulator, user: str = "einstein") -> None:
        self.emu = emu
        self.user = user
        self.channel = grpc.aio.insecure_channel(emu.grpc_address)
        self.stub = gateway_api_pb2_grpc.GatewayAPIStub(self.channel)
        self.http = httpx.AsyncClient(timeout=10)
        self.token = ""
        self.home = emu.home(user)

    async def login(self) -> Gateway:
        reply = await self.stub.Authenticate(
            gw.AuthenticateRequest(type="basic", client_id=self.user, client_secret=PASSWORDS[self.user])
        )
        assert reply.status.code == 1, reply.status
        self.token = reply.token
        return self

    async def close(self) -> None:
        await self.channel.close()
        await self.http.aclose()

    @property
    def md(self) -> list[tuple[str, str]]:
        return [("x-access-token", self.token)]

    async def call(self, method: str, request: Any, **kwargs: Any) -> Any:
        return await getattr(self.stub, method)(request, metadata=self.md, timeout=10, **kwargs)

    def p(self, rel: str) -> str:
        return f"{self.home}/{rel}" if rel else self.home

    async def stat(self, path: str, **kwargs: Any) -> Any:
        return await self.call("Stat", sp.StatRequest(ref=ref(path), **kwargs))

    async def initiate_upload(self, path: str, length: int | None, **kwargs: Any) -> Any:
        values = {} if length is None else {"Upload-Length": str(length)}
        request = sp.InitiateFileUploadRequest(ref=ref(path), opaque=opaque(values), **kwargs)
        return await self.call("InitiateFileUpload", request)

    def protocol(self, reply: Any, name: str = "simple") -> Any:
        return next(p for p in reply.protocols if p.protocol == name)

    async def put(self, proto: Any, data: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        h = {"X-Reva-Transfer": proto.token, "x-access-token": self.token, "Upload-Length": str(len(data))}
        h.update(headers or {})
        return await self.http.put(proto.upload_endpoint, content=data, headers=h)

    async def upload(
        self, path: str, data: bytes, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> int:
        reply = await self.initiate_upload(path, len(data), **kwargs)
        assert reply.status.code == 1, reply.status
        return (await self.put(self.protocol(reply), data, headers)).status_code

    async def download(
        self, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        reply = await self.call(
            "InitiateFileDownload", sp.InitiateFileDownloadRequest(ref=ref(path), **kwargs)
        )
        assert reply.status.code == 1, reply.status
        proto = reply.protocols[0]
        h = {"X-Reva-Transfer": proto.token, "x-access-token": self.token}
        h.update(headers or {})
        return await self.http.get(proto.download_endpoint, headers=h)


def admin_headers(emulator: Any) -> dict[str, str]:
    """What a test sends with every /_admin request: this run's admin secret."""
    from cs3sync.emulator.admin import ADMIN_HEADER

    return {ADMIN_HEADER: emulator.config.admin_secret}
