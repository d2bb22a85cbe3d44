"""Login and token lifecycle: read the secret, Authenticate, refresh early, re-login single-flight.

The secret lives in ``token_path`` (a password, an OIDC access token or a machine API key) and is
re-read on every login, so an external refresher can rewrite it. Tokens and secrets are held in
`Secret` objects whose repr is masked, and are never logged or put in error messages.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import jwt

from cs3sync.logs import get_logger

from . import errors
from .config import CS3Config

log = get_logger(__name__)

#: ``authenticate(type, client_id, secret) -> token`` (the gateway's Authenticate RPC).
AuthenticateFn = Callable[[str, str, str], Awaitable[str]]
Clock = Callable[[], float]


class Secret:
    """A string that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a Reva JWT, read without verifying the signature (we only refresh early;
    the server remains the judge). None when the token is not a JWT or has no ``exp``."""
    try:
        claims = jwt.decode(
            token, options={"verify_signature": False, "verify_exp": False, "verify_aud": False}
        )
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) else None


def fingerprint(secret: str) -> str:
    """Identity of the secret's content, to tell a rewritten token file from an unchanged one."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class _Token:
    value: Secret
    refresh_at: float  # when to log in again proactively
    fingerprint: str = field(repr=False)


class Authenticator:
    """Holds the current Reva token for one user and refreshes it.

    - `token()` returns a valid-looking token, logging in when there is none or it expires within
      ``token_refresh_margin`` (read from the JWT ``exp``).
    - `relogin(rejected)` is called when the server rejected ``rejected``; concurrent callers share
      one login (single flight), and a caller whose token was already replaced just returns.
    - When a login fails for a credentials reason, `errors.AuthBlocked` is raised; while the secret
      file stays unchanged later calls fail fast (with a slow periodic retry) instead of hammering
      the server, and ``AuthBlocked.wait_for_change()`` waits for the file to change.
    """

    #: While blocked with an unchanged secret, still retry Authenticate this often (the server side
    #: may have been fixed: an unblocked account, a restarted IdP).
    blocked_retry_interval = 30.0

    def __init__(self, config: CS3Config, authenticate: AuthenticateFn, *, clock: Clock = time.time) -> None:
        self._config = config
        self._authenticate = authenticate
        self._clock = clock
        # Expanded once here: os.path calls do not belong inside coroutines.
        self._token_path = os.path.expanduser(config.token_path) if config.token_path else ""
        self._token: _Token | None = None
        self._lock = anyio.Lock()
        self._blocked_fp: str | None = None
        self._blocked_at = 0.0
        self.logins = 0  # observable in tests

    def __repr__(self) -> str:
        state = "blocked" if self._blocked_fp else ("logged-in" if self._token else "new")
        return f"Authenticator(user={self._config.client_id!r}, type={self._config.auth_login_type}, {state})"

    @property
    def blocked(self) -> bool:
        return self._blocked_fp is not None

    async def token(self) -> Secret:
        tok = self._token
        if tok is not None and not self._expiring(tok):
            return tok.value
        async with self._lock:
            tok = self._token
            if tok is not None and not self._expiring(tok):
                return tok.value
            return (await self._login("expiring" if tok else "initial")).value

    async def relogin(self, rejected: Secret) -> Secret:
        """The server rejected ``rejected``: log in again once, however many callers saw it."""
        async with self._lock:
            tok = self._token
            if tok is not None and tok.value != rejected:
                return tok.value  # another caller already replaced it
            self._token = None
            return (await self._login("rejected")).value

    def blocked_error(self, cause: errors.CS3Error | None = None) -> errors.AuthBlocked:
        """An AuthBlocked for a token that a fresh login did not make acceptable."""
        fp = self._token.fingerprint if self._token else (self._blocked_fp or "")
        self._blocked_fp = fp
        self._blocked_at = self._clock()
        self._token = None
        detail = cause.message if cause else "login rejected"
        return errors.AuthBlocked(
            f"credentials rejected ({detail}); waiting for the token file to change",
            waiter=lambda: self.wait_for_change(fp),
            code=cause.code if cause else None,
        )

    def _expiring(self, tok: _Token) -> bool:
        return self._clock() >= tok.refresh_at

    async def read_secret(self) -> str:
        path = self._token_path
        if not path:
            raise errors.AuthBlocked("token_path is not configured", waiter=self._never_changes)
        try:
            text = await anyio.Path(path).read_text()
        except OSError as exc:
            # A missing file is a setup problem that a later rewrite fixes: block, don't fail.
            fp = "missing"
            self._blocked_fp = fp
            raise errors.AuthBlocked(
                f"cannot read the token file ({exc.strerror})", waiter=lambda: self.wait_for_change(fp)
            ) from None
        return text.strip()

    async def _current_fingerprint(self) -> str:
        try:
            return fingerprint(await self.read_secret())
        except errors.AuthBlocked:
            return "missing"

    async def wait_for_change(self, old_fingerprint: str) -> None:
        """Return once the token file holds a different secret than ``old_fingerprint``."""
        while True:
            if await self._current_fingerprint() != old_fingerprint:
                return
            await anyio.sleep(self._config.token_poll_interval)

    async def _never_changes(self) -> None:
        await anyio.sleep_forever()

    async def _login(self, reason: str) -> _Token:
        secret = await self.read_secret()
        fp = fingerprint(secret)
        if self._blocked_fp == fp and self._clock() - self._blocked_at < self.blocked_retry_interval:
            raise errors.AuthBlocked(
                "credentials rejected; waiting for the token file to change",
                waiter=lambda: self.wait_for_change(fp),
            )
        cfg = self._config
        client_id = "" if cfg.auth_login_type == "bearer" else cfg.client_id
        try:
            token = await self._authenticate(cfg.auth_login_type, client_id, secret)
        except (
            errors.Unauthenticated,
            errors.PermissionDenied,
            errors.NotFound,
            errors.InvalidArgument,
        ) as exc:
            self._blocked_fp = fp
            self._blocked_at = self._clock()
            log.warning(
                "cs3.auth.blocked",
                user=cfg.client_id,
                type=cfg.auth_login_type,
                reason=reason,
                error=type(exc).__name__,
            )
            raise errors.AuthBlocked(
                f"login failed ({exc.message}); waiting for the token file to change",
                waiter=lambda: self.wait_for_change(fp),
                code=exc.code,
            ) from None
        self.logins += 1
        self._blocked_fp = None
        exp = token_expiry(token)
        now = self._clock()
        self._token = _Token(Secret(token), refresh_time(now, exp, cfg), fp)
        log.info(
            "cs3.auth.login",
            user=cfg.client_id,
            type=cfg.auth_login_type,
            reason=reason,
            refresh_in=round(self._token.refresh_at - now),
        )
        return self._token


def refresh_time(now: float, exp: float | None, config: CS3Config) -> float:
    """When to log in again: ``token_refresh_margin`` before ``exp``, but never sooner than 90% of
    the token's remaining life (short-lived tokens would otherwise be refreshed on every call), and
    never in the past when the clocks disagree (the server decides anyway)."""
    lifetime = (exp - now) if exp is not None else config.authtokenvalidity
    if lifetime <= 0:
        return now + 1.0
    return now + max(lifetime - config.token_refresh_margin, lifetime * 0.9)
