"""A tiny jupyter_server extension that measures the server's own event loop.

Loaded into the benchmarked server with
``--ServerApp.jpserver_extensions='{"benchmarks.looplag": true}'``. It runs a ticker that sleeps
``TICK_S`` and records how late each wake-up was (the loop lag: how long something else held the loop),
and it records the server-side time of every ``/api/contents`` request (tornado's ``request_time()``).

It also times jupyter_server's own work on the loop around a contents request, which every contents
manager gets alike: parsing the request's JSON body (``get_json_body``) and encoding and sending the reply
(``ContentsHandler._finish_model``: ``json.dumps`` of the model, tornado's ETag hash). Each late wake-up
is split into the part that overlaps that work and the rest, so ``max_ms`` has two attributed maxima:
``server_max_ms`` (jupyter_server's own handler work, with whatever garbage collection its allocations set
off) and ``manager_max_ms`` (everything else on the loop's thread or holding the GIL: the contents
manager, its worker threads' C calls, the collections *they* set off). Both are measured, not inferred.
``full_gcs`` counts CPython's full garbage collections meanwhile (a count, so independent of the load).

Endpoints (token-protected like the rest of the API):

- ``GET /api/bench/looplag``: ``{"ticks", "max_ms", "p99_ms", "p50_ms", "server_max_ms",
  "manager_max_ms", "full_gcs", "requests"}`` since the last reset, ``requests`` being
  ``[method, path, status, ms]`` lists;
- ``POST /api/bench/looplag``: reset the recorders.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import time
from array import array
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.utils import url_path_join
from tornado import web

TICK_S = 0.005
MAX_REQUESTS = 200_000
LATE_S = 0.001  # wake-ups later than this keep their window for the attribution


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
        self.late: list[tuple[float, float, float]] = []  # (slept at, woke at, lag) of late wake-ups
        self.server_work: list[tuple[float, float]] = []  # jupyter_server's own handler work on the loop
        self.full_gcs_before = _full_collections()
        self._task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        self.lags = array("d")
        self.requests = []
        self.late = []
        self.server_work = []
        self.full_gcs_before = _full_collections()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            after = loop.time()
            lag = max(0.0, after - before - TICK_S)
            self.lags.append(lag)
            if lag > LATE_S and len(self.late) < MAX_REQUESTS:
                self.late.append((before, after, lag))

    def timed_server_work(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` (a handler method that runs on the loop) recording when it ran."""

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()  # the loop's clock (asyncio's loop.time())
            try:
                return method(*args, **kwargs)
            finally:
                if len(self.server_work) < MAX_REQUESTS:
                    self.server_work.append((started, time.monotonic()))

        return timed

    def attributed(self) -> tuple[float, float]:
        """(longest stall inside jupyter_server's handler work, longest stall outside it), in seconds:
        each late wake-up's lag split by its overlap with the recorded work (one thread runs both, so
        the recorded intervals are disjoint and in order)."""
        work = sorted(self.server_work)
        server_max = other_max = 0.0
        first = 0
        for before, after, lag in self.late:  # in order of time
            while first < len(work) and work[first][1] <= before:
                first += 1
            overlap = 0.0
            for start, end in work[first:]:
                if start >= after:
                    break
                overlap += min(end, after) - max(start, before)
            inside = min(lag, overlap)
            server_max = max(server_max, inside)
            other_max = max(other_max, lag - inside)
        return server_max, other_max

    def record_request(self, handler: web.RequestHandler) -> None:
        request = handler.request
        if "/api/contents" in request.path and len(self.requests) < MAX_REQUESTS:
            self.requests.append(
                (request.method or "", request.path, handler.get_status(), request.request_time() * 1000)
            )

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        server_max, other_max = self.attributed()
        return {
            "tick_ms": TICK_S * 1000,
            "ticks": len(lags),
            "max_ms": (lags[-1] if lags else 0.0) * 1000,
            "p99_ms": _quantile(lags, 0.99) * 1000,
            "p50_ms": _quantile(lags, 0.50) * 1000,
            "server_max_ms": server_max * 1000,
            "manager_max_ms": other_max * 1000,
            "full_gcs": _full_collections() - self.full_gcs_before,
            "requests": self.requests,
        }


def _full_collections() -> int:
    """Full garbage collections so far: each one walks every object of the process holding the GIL,
    whichever thread's allocation set it off (counted, not timed: a gc.callbacks hook would itself let
    other threads in mid-collection and change what is measured)."""
    return int(gc.get_stats()[2]["collections"])


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
    # jupyter_server's own work around every contents request, whichever manager answers it.
    JupyterHandler.get_json_body = RECORDER.timed_server_work(JupyterHandler.get_json_body)
    ContentsHandler._finish_model = RECORDER.timed_server_work(ContentsHandler._finish_model)
    route = url_path_join(web_app.settings["base_url"], "/api/bench/looplag")
    web_app.add_handlers(".*$", [(route, LoopLagHandler)])


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    RECORDER.start()
