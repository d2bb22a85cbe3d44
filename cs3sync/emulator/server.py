"""The emulator process: one asyncio loop running the gRPC gateway and the HTTP data plane.

``Emulator`` runs on the caller's loop (``async with Emulator(config) as emu``); ``EmulatorThread`` runs the
same thing on its own loop in a thread, for tests whose loop belongs to someone else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc

from .admin import AdminAPI
from .auth import Auth, Transfers
from .clock import Clock
from .config import EmulatorConfig
from .dataplane import DataPlane
from .faults import Faults
from .host import HttpRecord
from .interceptor import Call, GatewayInterceptor
from .servicer import GatewayServicer
from .storage import Storage

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Like Reva (Go defaults): clients may ping every 5 min at most; be lenient so tests never GOAWAY.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


class Emulator:
    """A local CS3 gateway. See docs/emulator.md for the API the tests code against."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.auth = Auth(config, self.clock)
        self.transfers = Transfers(config, self.clock)
        self.faults = Faults()
        self.storage = Storage(config, self.clock)
        self.calls: list[Call] = []
        self.http_log: list[HttpRecord] = []
        self.auth.on_first_login.append(self.storage.ensure_home)
        self._grpc_server: grpc.aio.Server | None = None
        self._grpc_port = config.grpc_port
        self._runner: web.AppRunner | None = None
        self._http_port = config.http_port
        self._servicer = GatewayServicer(self)
        self._dataplane = DataPlane(self)
        self.faults.outage_hook = self._grpc_stop
        self.faults.restart_hook = self._grpc_start

    # ------------------------------------------------------------------ addresses
    @property
    def grpc_address(self) -> str:
        return f"{self.config.host}:{self._grpc_port}"

    @property
    def grpc_port(self) -> int:
        return self._grpc_port

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self._http_port}"

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def datagateway_url(self) -> str:
        return f"{self.http_url}/datagateway"

    async def wait_http_idle(self) -> None:
        """Wait until the data plane has finished every request it received (the server side of a
        dropped transfer can outlive the client's view of it)."""
        await self._dataplane.wait_idle()

    def home(self, username: str) -> str:
        """The user's CS3 home path, e.g. ``/eos/user/e/einstein``."""
        return self.config.home(username)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> Emulator:
        self.storage.ensure_projects()
        await self._http_start()
        await self._grpc_start()
        return self

    async def stop(self) -> None:
        self.faults.release_hangs()
        await self._grpc_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.storage.close()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _grpc_start(self) -> None:
        if self._grpc_server is not None:
            return
        server = grpc.aio.server(
            interceptors=[
                GatewayInterceptor(
                    self.auth, self.faults, self.calls, self.config.token_rejection or "raised"
                )
            ],
            options=GRPC_OPTIONS,
        )
        gateway_api_pb2_grpc.add_GatewayAPIServicer_to_server(self._servicer, server)
        port = server.add_insecure_port(f"{self.config.host}:{self._grpc_port}")
        if port == 0:
            raise OSError(f"cannot bind gRPC on {self.config.host}:{self._grpc_port}")
        self._grpc_port = port
        await server.start()
        self._grpc_server = server

    async def _grpc_stop(self) -> None:
        server, self._grpc_server = self._grpc_server, None
        if server is not None:
            self.faults.release_hangs()
            await server.stop(grace=None)

    async def _http_start(self) -> None:
        app = web.Application(client_max_size=1024**4)
        self._dataplane.routes(app)
        AdminAPI(self).routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self._http_port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self._http_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._runner = runner


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread.

    ``start()``/``stop()`` (or ``with``), ``call(fn, *args)`` runs ``fn`` on the emulator's loop (awaiting
    it if it is a coroutine function) and returns its result. Attribute access falls through to the
    ``Emulator`` (``.faults``, ``.storage``, ``.clock`` ...); the synchronous hooks are thread-safe, but
    async ones (``faults.outage()``) must go through ``call``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.emulator = Emulator(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emulator, name)

    def start(self) -> EmulatorThread:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="cs3-emulator", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            try:
                await self.emulator.start()
            except BaseException as e:
                ready.set_exception(e)
                return
            ready.set_result(None)
            await self._stopped.wait()
            await self.emulator.stop()

        asyncio.run(run())

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30, **kwargs: Any) -> Any:
        assert self._loop is not None, "not started"

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is None or self._stopped is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=30)
        self._loop = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
