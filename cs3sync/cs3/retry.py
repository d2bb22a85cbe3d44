"""Retries inside one call, for idempotent RPCs only (Stat, List, GetLock, HEAD, listings, ...).

Mutations are never retried here: the journal retries them with a persisted backoff and a
postcondition check, because an ALREADY_EXISTS or NOT_FOUND after a blind retry may mean the first
attempt succeeded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from cs3sync.logs import get_logger

from .errors import AuthBlocked, Transient

log = get_logger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Transient) and not isinstance(exc, AuthBlocked)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info(
        "cs3.retry",
        attempt=state.attempt_number,
        error=type(exc).__name__ if exc else None,
        detail=str(exc) if exc else None,
    )


async def retry_idempotent(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    initial_wait: float = 0.2,
    max_wait: float = 2.0,
    sleep: Sleep | None = None,
) -> T:
    """Run ``fn`` up to ``attempts`` times while it raises `Transient`; re-raise the last error.

    ``sleep`` is injectable so tests run without waiting.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=initial_wait, max=max_wait, jitter=initial_wait),
        retry=retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or anyio.sleep,
        before_sleep=_log_retry,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable")  # pragma: no cover
