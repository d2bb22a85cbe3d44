"""A tiny jupyter_server extension that measures the server's own event loop.

Loaded into the benchmarked server with
``--ServerApp.jpserver_extensions='{"benchmarks.looplag": true}'``. It runs a ticker that sleeps
``TICK_S`` and records how late each wake-up was (the loop lag: how long something else held the loop),
and it records the server-side time of every ``/api/contents`` request (tornado's ``request_time()``).

Endpoints (token-protected like the rest of the API):

- ``GET /api/bench/looplag``: ``{"ticks", "max_ms", "p99_ms", "p50_ms", "requests"}`` since the last
  reset, ``requests`` being ``[method, path, status, ms]`` lists;
- ``POST /api/bench/looplag``: reset both recorders.
"""

from __future__ import annotations

import asyncio
import json
from array import array
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

TICK_S = 0.005
MAX_REQUESTS = 200_000


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Recorder:
    """Loop lags (seconds) and contents request times since the last reset."""

    def __init__(self) -> None:
        self.lags = array("d")
        self.requests: list[tuple[str, str, int, float]] = []
        self._task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        self.lags = array("d")
        self.requests = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            self.lags.append(max(0.0, loop.time() - before - TICK_S))

    def record_request(self, handler: web.RequestHandler) -> None:
        request = handler.request
        if "/api/contents" in request.path and len(self.requests) < MAX_REQUESTS:
            self.requests.append(
                (request.method or "", request.path, handler.get_status(), request.request_time() * 1000)
            )

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        return {
            "tick_ms": TICK_S * 1000,
            "ticks": len(lags),
            "max_ms": (lags[-1] if lags else 0.0) * 1000,
            "p99_ms": _quantile(lags, 0.99) * 1000,
            "p50_ms": _quantile(lags, 0.50) * 1000,
            "requests": self.requests,
        }


RECORDER = Recorder()


class LoopLagHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(RECORDER.summary()))

    @web.authenticated
    def post(self) -> None:
        RECORDER.reset()
        self.finish(json.dumps({"reset": True}))

    def check_xsrf_cookie(self) -> None:  # token-authenticated API calls only
        return None


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "benchmarks.looplag"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    previous = web_app.settings.get("log_function")

    def log_function(handler: web.RequestHandler) -> None:
        RECORDER.record_request(handler)
        if previous is not None:
            previous(handler)

    web_app.settings["log_function"] = log_function
    route = url_path_join(web_app.settings["base_url"], "/api/bench/looplag")
    web_app.add_handlers(".*$", [(route, LoopLagHandler)])


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    RECORDER.start()
