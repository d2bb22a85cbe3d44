"""Users, Reva-style access tokens and datagateway transfer tokens.

Access tokens are HS256 JWTs with Reva's claims (``exp, iat, iss, aud, user, scope``) plus a private
generation claim, so ``expire_all()``/``revoke()`` can invalidate tokens before their ``exp``, as a real
server may. Expiry is judged by the emulator's controllable clock, never the wall clock.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2
from google.protobuf import json_format

from .clock import Clock
from .config import EmulatorConfig, UserSpec

_GEN_CLAIM = "cs3gw_gen"


class AuthFailure(Exception):
    """An Authenticate that fails with a CS3 status code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def user_id_proto(user: UserSpec) -> user_res.UserId:
    return user_res.UserId(idp=user.idp, opaque_id=user.opaque_id, type=user_res.USER_TYPE_PRIMARY)


def user_proto(user: UserSpec) -> user_res.User:
    return user_res.User(
        id=user_id_proto(user),
        username=user.username,
        mail=user.mail,
        mail_verified=bool(user.mail),
        display_name=user.display_name,
        groups=list(user.groups),
        uid_number=user.uid_number,
        gid_number=user.gid_number,
    )


@dataclass
class _FailRule:
    code: int
    message: str
    remaining: int | None


class Auth:
    """Authentication and access tokens. ``emu.auth`` in tests."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0
        self._user_generation: dict[str, int] = {}
        self._fail: _FailRule | None = None
        self.ttl = config.token_ttl
        self.on_first_login: list[Any] = []  # callbacks(user) run after a non-machine login

    # -- test hooks --------------------------------------------------------------------------
    def set_ttl(self, seconds: float) -> None:
        """Lifetime of tokens issued from now on."""
        self.ttl = seconds

    def expire_all(self) -> None:
        """Invalidate every token issued so far (before its ``exp``)."""
        with self._lock:
            self._generation += 1

    def revoke(self, username: str) -> None:
        """Invalidate every token of one user issued so far."""
        with self._lock:
            self._user_generation[username] = self._user_generation.get(username, 0) + 1

    def fail_authenticate(self, code: int, message: str = "", times: int | None = 1) -> None:
        """Make the next ``times`` Authenticate calls fail with this CS3 code (``None`` = until cleared)."""
        self._fail = _FailRule(code, message or "emulated authentication failure", times)

    def clear_failures(self) -> None:
        self._fail = None

    def token(self, username: str) -> str:
        """A fresh valid token for ``username`` without going through Authenticate."""
        user = self._config.user(username)
        if user is None:
            raise KeyError(username)
        return self.issue(user)

    # -- authentication ----------------------------------------------------------------------
    def authenticate(self, auth_type: str, client_id: str, client_secret: str) -> tuple[UserSpec, str]:
        """Reva's gateway Authenticate; raises AuthFailure with Reva's codes and messages."""
        fail = self._fail
        if fail is not None:
            if fail.remaining is not None:
                fail.remaining -= 1
                if fail.remaining <= 0:
                    self._fail = None
            raise AuthFailure(fail.code, fail.message)
        if auth_type not in self._config.auth_types:
            raise AuthFailure(code_pb2.CODE_INTERNAL, "error getting auth provider client")
        if auth_type == "basic":
            user = self._config.user(client_id)
            if user is None:
                raise AuthFailure(code_pb2.CODE_NOT_FOUND, f"user not found: {client_id}")
            if user.password != client_secret:
                raise AuthFailure(code_pb2.CODE_PERMISSION_DENIED, "wrong password")
        elif auth_type == "bearer":
            username = self._config.bearer_tokens.get(client_secret)
            user = self._config.user(username) if username else None
            if user is None:
                raise AuthFailure(code_pb2.CODE_UNAUTHENTICATED, "oidc: error verifying oidc token")
        else:  # machine
            if client_secret != self._config.machine_api_key:
                raise AuthFailure(code_pb2.CODE_PERMISSION_DENIED, "invalid api key")
            user = self._user_by_claim_or_name(client_id)
            if user is None:
                raise AuthFailure(code_pb2.CODE_NOT_FOUND, f"user not found: {client_id}")
        token = self.issue(user)
        if auth_type != "machine":
            for callback in self.on_first_login:
                callback(user)
        return user, token

    def _user_by_claim_or_name(self, client_id: str) -> UserSpec | None:
        claim, sep, value = client_id.partition(":")
        if not sep:
            return self._config.user(client_id)
        return self.user_by_claim(claim, value)

    def user_by_claim(self, claim: str, value: str) -> UserSpec | None:
        for user in self._config.users:
            if (
                (claim == "mail" and user.mail == value)
                or (claim == "username" and user.username == value)
                or (claim in ("userid", "user_id", "opaque_id") and user.opaque_id == value)
                or (claim == "uid" and str(user.uid_number) == value)
                or (claim == "gid" and str(user.gid_number) == value)
            ):
                return user
        return None

    # -- tokens ------------------------------------------------------------------------------
    def issue(self, user: UserSpec) -> str:
        now = self._clock.now()
        user_json = json_format.MessageToDict(user_proto(user))
        claims = {
            "exp": int(now + self.ttl),
            "iat": int(now),
            "iss": user.idp,
            "aud": ["reva"],
            "user": user_json,
            "scope": {
                "user": {
                    "resource": {"decoder": "json", "value": ""},
                    "role": 1,
                }
            },
            _GEN_CLAIM: [self._generation, self._user_generation.get(user.username, 0)],
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._config.jwt_secret, algorithm="HS256")

    def verify(self, token: str) -> UserSpec | None:
        """The token's user, or None if it is malformed, badly signed, expired or revoked."""
        try:
            claims = jwt.decode(
                token,
                self._config.jwt_secret,
                algorithms=["HS256"],
                audience="reva",
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        if float(claims.get("exp", 0)) <= self._clock.now():
            return None
        opaque_id = claims.get("user", {}).get("id", {}).get("opaqueId", "")
        user = self._config.user_by_id(opaque_id)
        if user is None:
            return None
        gen = claims.get(_GEN_CLAIM, [-1, -1])
        if gen != [self._generation, self._user_generation.get(user.username, 0)]:
            return None
        return user


class Transfers:
    """Datagateway transfer tokens: ``emu.transfers`` in tests."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self.ttl = config.transfer_ttl
        self._generation = 0

    def set_ttl(self, seconds: float) -> None:
        self.ttl = seconds

    def expire_all(self) -> None:
        """Invalidate every transfer token issued so far: the datagateway answers 403."""
        self._generation += 1

    def issue(self, target: str, version_key: str = "") -> tuple[str, float]:
        now = self._clock.now()
        exp = now + self.ttl
        claims = {
            "exp": int(exp),
            "iat": int(now),
            "aud": ["reva"],
            "target": target,
            "version_key": version_key,
            _GEN_CLAIM: self._generation,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._config.transfer_secret, algorithm="HS256"), float(int(exp))

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(
                token,
                self._config.transfer_secret,
                algorithms=["HS256"],
                audience="reva",
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        if float(claims.get("exp", 0)) <= self._clock.now():
            return None
        if claims.get(_GEN_CLAIM) != self._generation:
            return None
        return claims
