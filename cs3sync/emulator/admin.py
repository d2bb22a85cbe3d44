"""The loopback-only admin API (``/_admin/...``, JSON) exposing the in-process test hooks to a test
that runs the emulator as a subprocess. Documented in docs/emulator.md."""

from __future__ import annotations

import base64
import errno
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from .config import UserSpec
from .errors import CS3Error
from .faults import action_from_json
from .host import EmulatorHost

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

#: The header carrying the per-run admin secret (`EmulatorConfig.admin_secret`). A browser cannot send
#: it cross-site without a CORS preflight, which the admin API never grants.
ADMIN_HEADER = "X-CS3Sync-Admin"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def refusal(request: web.Request, secret: str) -> tuple[int, str] | None:
    """Why an admin request is refused (status, reason), or None: loopback peers only, a loopback Host
    (no DNS rebinding), no Origin (no page of any site), the per-run secret, JSON bodies only."""
    try:
        loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return 403, "loopback only"
    host = request.host or ""
    host = host.split("]", 1)[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
    if host not in LOOPBACK_HOSTS:
        return 403, "foreign Host"
    if "Origin" in request.headers:
        return 403, "cross-site requests are refused"
    if not hmac.compare_digest(request.headers.get(ADMIN_HEADER, "").encode(), secret.encode()):
        return 403, f"the {ADMIN_HEADER} header must carry this run's admin secret"
    if request.method == "POST" and request.can_read_body and request.content_type != "application/json":
        return 415, "body must be application/json"
    return None


#: Request fields that carry credentials (AuthenticateRequest.client_secret, WhoAmIRequest.token, a
#: public link's password); their values never leave the emulator.
SECRET_FIELDS = frozenset({"clientSecret", "client_secret", "token", "password"})


def redact_request(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if k in SECRET_FIELDS and isinstance(v, str) else redact_request(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_request(v) for v in value]
    return value


class AdminAPI:
    def __init__(self, emulator: EmulatorHost) -> None:
        self.emu = emulator

    def routes(self, app: web.Application) -> None:
        posts: dict[str, Handler] = {
            "faults": self.add_fault,
            "faults/clear": self.clear_faults,
            "faults/release": self.release,
            "grpc/outage": self.outage,
            "grpc/restart": self.restart,
            "auth/expire_all": self.expire_all,
            "auth/revoke": self.revoke,
            "auth/ttl": self.auth_ttl,
            "auth/fail": self.auth_fail,
            "auth/token": self.auth_token,
            "transfers/expire_all": self.transfers_expire,
            "transfers/ttl": self.transfers_ttl,
            "clock/advance": self.clock_advance,
            "storage/external_write": self.external_write,
            "storage/external_touch": self.external_touch,
            "storage/external_delete": self.external_delete,
            "storage/external_mkdir": self.external_mkdir,
            "storage/read": self.read_file,
            "storage/external_move": self.external_move,
            "storage/lock": self.storage_lock,
            "storage/quota": self.set_quota,
            "storage/fail_next_write": self.fail_next_write,
            "shares/create": self.create_share,
            "shares/remove": self.remove_share,
            "logs/clear": self.clear_logs,
        }
        gets: dict[str, Handler] = {
            "faults": self.list_faults,
            "clock": self.clock_now,
            "calls": self.list_calls,
            "http_log": self.list_http,
            "info": self.info,
        }
        for name, handler in posts.items():
            app.router.add_post(f"/_admin/{name}", self._wrap(handler))
        for name, handler in gets.items():
            app.router.add_get(f"/_admin/{name}", self._wrap(handler))

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            refused = refusal(request, self.emu.config.admin_secret)
            if refused is not None:
                return web.json_response({"error": refused[1]}, status=refused[0])
            body: Any = {}
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    return web.json_response({"error": "body must be JSON"}, status=400)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                return web.json_response({"error": "body must be a JSON object"}, status=400)
            try:
                result = await handler(body)
            except KeyError as e:
                return web.json_response({"error": f"bad request: missing {e}"}, status=400)
            except (TypeError, ValueError, AttributeError) as e:
                return web.json_response({"error": f"bad request: {e}"}, status=400)
            except CS3Error as e:
                return web.json_response({"error": e.message, "code": e.code}, status=400)
            except FileNotFoundError:
                return web.json_response({"error": "no such file or folder"}, status=404)
            except OSError as e:
                return web.json_response({"error": e.strerror or type(e).__name__}, status=409)
            return web.json_response({"ok": True} if result is None else result)

        return endpoint

    # ------------------------------------------------------------------ faults
    async def add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body["kind"]
        action = action_from_json(body["action"])
        options = {
            "times": body.get("times", 1),
            "after": body.get("after", 0),
            "probability": body.get("probability", 1.0),
        }
        if kind == "grpc":
            rule = self.emu.faults.grpc(body["match"], action, **options)
        elif kind == "http":
            rule = self.emu.faults.http(body["match"], action, **options)
        else:
            raise ValueError(f"kind must be grpc or http, not {kind!r}")
        return {"id": rule.id}

    async def list_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.emu.faults.rules]}

    async def clear_faults(self, body: dict[str, Any]) -> None:
        if "id" in body:
            self.emu.faults.remove(int(body["id"]))
        else:
            self.emu.faults.clear()

    async def release(self, body: dict[str, Any]) -> None:
        self.emu.faults.release_hangs()

    async def outage(self, body: dict[str, Any]) -> None:
        await self.emu.faults.outage()

    async def restart(self, body: dict[str, Any]) -> None:
        await self.emu.faults.restart()

    # ------------------------------------------------------------------ auth and transfers
    async def expire_all(self, body: dict[str, Any]) -> None:
        self.emu.auth.expire_all()

    async def revoke(self, body: dict[str, Any]) -> None:
        self.emu.auth.revoke(body["user"])

    async def auth_ttl(self, body: dict[str, Any]) -> None:
        self.emu.auth.set_ttl(float(body["seconds"]))

    async def auth_fail(self, body: dict[str, Any]) -> None:
        if body.get("clear"):
            self.emu.auth.clear_failures()
        else:
            self.emu.auth.fail_authenticate(int(body["code"]), body.get("message", ""), body.get("times", 1))

    async def auth_token(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"token": self.emu.auth.token(body["user"])}

    async def transfers_expire(self, body: dict[str, Any]) -> None:
        self.emu.transfers.expire_all()

    async def transfers_ttl(self, body: dict[str, Any]) -> None:
        self.emu.transfers.set_ttl(float(body["seconds"]))

    # ------------------------------------------------------------------ clock
    async def clock_advance(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"now": self.emu.clock.advance(float(body["seconds"]))}

    async def clock_now(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"now": self.emu.clock.now(), "offset": self.emu.clock.offset}

    # ------------------------------------------------------------------ storage
    @staticmethod
    def _data(body: dict[str, Any]) -> bytes:
        if "data_b64" in body:
            return base64.b64decode(body["data_b64"], validate=True)
        return str(body.get("data", "")).encode()

    async def external_write(self, body: dict[str, Any]) -> None:
        self.emu.storage.external_write(body["path"], self._data(body), mtime=body.get("mtime"))

    async def read_file(self, body: dict[str, Any]) -> dict[str, Any]:
        """What the storage holds at a path (browser tests check what a save left there)."""
        return {"data_b64": base64.b64encode(self.emu.storage.read(body["path"])).decode()}

    async def external_move(self, body: dict[str, Any]) -> None:
        self.emu.storage.external_move(body["path"], body["to"])

    async def external_touch(self, body: dict[str, Any]) -> None:
        self.emu.storage.external_touch(body["path"])

    async def external_delete(self, body: dict[str, Any]) -> None:
        self.emu.storage.external_delete(body["path"])

    async def external_mkdir(self, body: dict[str, Any]) -> None:
        self.emu.storage.external_mkdir(body["path"])

    async def storage_lock(self, body: dict[str, Any]) -> None:
        self.emu.storage.lock(
            body["path"],
            app=body.get("app", "other-app"),
            lock_id=body.get("lock_id", "foreign-lock"),
            user=body.get("user", "marie"),
            expiration=body.get("expiration", 3600.0),
        )

    async def set_quota(self, body: dict[str, Any]) -> None:
        self.emu.storage.set_quota(body.get("total"), body.get("used"))

    async def fail_next_write(self, body: dict[str, Any]) -> None:
        code = body.get("errno", "ENOSPC")
        self.emu.storage.fail_next_write(getattr(errno, code) if isinstance(code, str) else int(code))

    # ------------------------------------------------------------------ shares
    def _user(self, body: dict[str, Any], key: str) -> UserSpec:
        user = self.emu.config.user(str(body[key]))
        if user is None:
            raise ValueError(f"no user {body[key]!r}")
        return user

    async def create_share(self, body: dict[str, Any]) -> dict[str, Any]:
        """A share made by its owner (a browser test's "marie shares a folder with einstein")."""
        from .share_store import ShareStore

        owner, grantee = self._user(body, "owner"), self._user(body, "grantee")
        share = ShareStore(self.emu.storage).seed_share(
            owner, body["path"], grantee, editor=bool(body.get("editor"))
        )
        return {"id": share.id.opaque_id}

    async def remove_share(self, body: dict[str, Any]) -> None:
        from .share_store import ShareStore

        ShareStore(self.emu.storage).unseed_share(self._user(body, "owner"), str(body["id"]))

    # ------------------------------------------------------------------ logs
    async def list_calls(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "calls": [
                {
                    "method": c.method,
                    "metadata": {
                        k: ("<redacted>" if k == "x-access-token" else str(v)) for k, v in c.metadata.items()
                    },
                    "request": redact_request(json_format.MessageToDict(c.request)),
                    "time": c.time,
                }
                for c in self.emu.calls
            ]
        }

    async def list_http(self, body: dict[str, Any]) -> dict[str, Any]:
        redact = {"x-access-token", "x-reva-transfer"}
        return {
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "headers": {
                        k: ("<redacted>" if k.lower() in redact else v) for k, v in r.headers.items()
                    },
                    "status": r.status,
                    "bytes_in": r.bytes_in,
                    "bytes_out": r.bytes_out,
                }
                for r in self.emu.http_log
            ]
        }

    async def clear_logs(self, body: dict[str, Any]) -> None:
        self.emu.calls.clear()
        self.emu.http_log.clear()

    async def info(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "grpc_address": self.emu.grpc_address,
            "http_url": self.emu.http_url,
            "profile": self.emu.config.profile,
            "users": [u.username for u in self.emu.config.users],
            "homes": {u.username: self.emu.home(u.username) for u in self.emu.config.users},
        }
