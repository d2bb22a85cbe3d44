"""REST API of the JupyterLab extension, under ``<base_url>/api/cs3sync/``.

Every handler is an authenticated, XSRF-protected ``APIHandler`` (jupyter_server's rules). Errors are JSON
``{"message": ...}`` with a meaningful status (400, 403, 404, 409, 423, 503 for outages, 507 for quota),
never a 500 with internals. Numbers are JSON numbers. The CS3 client, the path map and the sync engine
come from the contents manager instance the server runs (``serverapp.contents_manager``), never from
globals. The ``locks`` routes belong to ``contents/locks.py`` and are registered by the contents side.
Why it is long: one small handler class per endpoint of the API (docs/labextension.md) and its JSON
shape, none of them over ~100 lines.

Spaces and received shares outside ``root_path`` are served through virtual top-level folders of the
contents manager (``Spaces/<name>``, ``Shared with me/<name>``): the listings here refresh those mounts
so the ``api_path`` they return is exactly what the file browser can open (docs/decisions.md).

Configuration (``jupyter_server_config.py``): ``c.CS3SyncAPI.public_link_url = "https://host/s/{token}"``
makes the ``links`` endpoints return each link's ``url``; without it ``url`` is null and the panels copy
the token, saying so (docs/labextension.md).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import posixpath
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, NoReturn, TypeVar, overload
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.web import HTTPError
from traitlets import Unicode
from traitlets.config import Configurable

import cs3sync
from contents.errors import for_rest_api, to_http_error
from contents.manager import CS3ContentsManager
from contents.mounts import SHARES_FOLDER, SPACES_FOLDER
from contents.paths import PathMapper
from cs3sync.cs3 import CS3Client
from cs3sync.cs3.types import (
    FileId,
    Grantee,
    Group,
    PublicLink,
    Quota,
    ReceivedShare,
    ResourceInfo,
    Share,
    Space,
    User,
)
from cs3sync.engine import SyncEngine
from cs3sync.journal import Entry, InvalidTransition, UnknownEntry
from cs3sync.merge import compare_in_thread

log = logging.getLogger("cs3sync.handlers")

#: A JSON object of a reply (``json.dumps`` takes values of any type: strings, numbers, lists, objects).
JSONObject = dict[str, Any]

API_VERSION = 1
NAMESPACE = "api/cs3sync"

#: Journal states still on their way to the storage.
PENDING_STATES = ("queued", "running", "retrying", "blocked")
#: Journal states shown by the panel (pending + parked problems).
SHOWN_STATES = (*PENDING_STATES, "conflict", "failed")

DEFAULT_SPACES_FOLDER = SPACES_FOLDER
DEFAULT_SHARES_FOLDER = SHARES_FOLDER
MIN_QUERY = 2
MAX_ENTRIES = 500
#: Latest merged saves the journal endpoint lists (``merged``).
MERGED_SHOWN = 10

ROLES = ("viewer", "editor")
#: Largest journal entry id (SQLite INTEGER); anything above is "no such entry", not an overflow.
MAX_ENTRY_ID = 2**63 - 1
MAX_ERROR_CHARS = 200


class CS3SyncAPI(Configurable):
    """Settings of the labextension's REST API (``c.CS3SyncAPI.<name>`` in jupyter_server_config.py)."""

    public_link_url = Unicode(
        "",
        help="URL template of public links, '{token}' standing for the link's token, e.g. "
        "'https://cernbox.cern.ch/s/{token}' or 'https://ocis.example.org/s/{token}'. The Shares panel's "
        "'Copy link' copies it; when empty (or without '{token}') the panels copy the bare token and say so.",
    ).tag(config=True)
    product_name = Unicode(
        "CS3",
        help="The storage's name in the panels and the status bar, e.g. 'CERNBox' ('CERNBox: offline').",
    ).tag(config=True)


def link_url(template: str, token: str) -> str | None:
    """The public URL of a link from the configured template, or None when none is usable."""
    if not template or "{token}" not in template or not token:
        return None
    if not template.startswith(("https://", "http://")):
        return None
    return template.replace("{token}", quote(token, safe=""))


#: Transport wording that must never reach the panels (grpc-core, Python reprs, tracebacks).
_INTERNALS = re.compile(
    r"ipv[46]:|failed to connect to all addresses|debug_error_string|grpc_status|StatusCode\.|"
    r"AioRpcError|_InactiveRpcError|Traceback|File \"|\[Errno|"
    r"Connection refused|Connect Failed|0x[0-9a-f]{6,}",
    re.IGNORECASE,
)


#: A quoted absolute storage path inside an error message.
_QUOTED_PATH = re.compile(r"'(/[^'\n]+)'")


def short_error(message: object) -> str | None:
    """A one-line, bounded error for the panels: transport internals become 'storage unreachable'."""
    if message is None:
        return None
    text = str(message).strip()
    if not text:
        return None
    if _INTERNALS.search(text):
        return "storage unreachable"
    line = text.splitlines()[0].strip()
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 1].rstrip() + "…"
    return line


# ---------------------------------------------------------------------------------------------- errors
H = TypeVar("H", bound="CS3APIHandler")
#: A handler method: ``get(self, *path_args)`` (tornado passes the URL's groups as strings).
Method = Callable[..., Awaitable[None]]


def storage_errors(what: str | Callable[[CS3APIHandler], str] = "") -> Callable[[Method], Method]:
    """Translate any exception of the storage, journal or engine into a short JSON HTTP error.
    ``what``: how the error names what failed, or a function of the handler that says it."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        async def wrapper(self: CS3APIHandler, *args: str) -> None:
            try:
                return await method(self, *args)
            except HTTPError:
                raise
            except Exception as exc:
                label = what(self) if callable(what) else what
                err = for_rest_api(to_http_error(exc, label), label)
                log.info(
                    "cs3sync.api_error %s %s -> %s (%s)",
                    self.request.method,
                    self.request.path,
                    err.status_code,
                    type(exc).__name__,
                )
                raise err from None

        return wrapper

    return decorate


# ---------------------------------------------------------------------------------------------- base
class CS3APIHandler(APIHandler):
    """Base class: JSON in and out, the manager's client/engine/path map, errors without internals."""

    def initialize(self, contents_manager: object, api_config: CS3SyncAPI | None = None) -> None:
        self.cm = contents_manager
        self.api_config = api_config

    # Errors: {"message": ..., "reason": ...}, never a traceback.
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        message = ""
        exc_info = kwargs.get("exc_info")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, HTTPError):
                message = exc.log_message or ""
                if exc.args[1:]:
                    try:
                        message = message % exc.args[1:]
                    except TypeError:
                        pass
        if status_code >= 500 and not message:
            message = "Internal error"
        reason = self._reason or ""
        self.finish(json.dumps({"message": message or reason, "reason": reason}))

    def write_json(self, data: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def query_path(self, name: str = "path") -> str | None:
        """A path from the query string, as sent: tornado's get_query_argument turns control characters
        into spaces (``data.csv%00.txt`` would name ``data.csv .txt``); the path rules refuse them."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, f"'{name}' is not valid UTF-8") from None

    def json_body(self) -> dict[str, object]:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HTTPError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "Request body must be a JSON object")
        return body

    # --- what the contents manager provides
    @property
    def manager(self) -> CS3ContentsManager:
        """The server's contents manager: this API exists only with ours (503 otherwise)."""
        if not isinstance(self.cm, CS3ContentsManager):
            raise HTTPError(503, "The cs3sync contents manager is not active on this server")
        return self.cm

    async def client(self) -> CS3Client:
        return await self.manager.get_client()

    async def path_map(self) -> PathMapper:
        return await self.manager.get_path_map()

    async def engine(self) -> SyncEngine:
        return await self.manager.get_engine()

    def folder_names(self) -> tuple[str, str]:
        return DEFAULT_SPACES_FOLDER, DEFAULT_SHARES_FOLDER

    async def to_cs3(self, api_path: str) -> str:
        pm = await self.path_map()
        if api_path and pm.is_virtual(api_path.strip("/")):
            raise HTTPError(400, f"{api_path} is a virtual folder, not a storage path")
        try:
            return pm.to_cs3(api_path)
        except HTTPError as exc:
            if exc.status_code == 404:
                # An unknown mount name: the mounts may not be loaded yet in this server.
                await refresh_mounts(self.manager, await self.client(), pm, *self.folder_names())
                return pm.to_cs3(api_path)
            raise

    async def to_api(self, cs3_path: str | None) -> str | None:
        if not cs3_path:
            return None
        pm = await self.path_map()
        return pm.to_api(cs3_path)

    async def in_user_terms(self, message: str | None) -> str | None:
        """A message with every quoted storage path ('/eos/user/e/einstein/a.md') as its Jupyter path
        ('a.md'); a path outside what Jupyter shows becomes its base name."""
        if not message:
            return message
        pm = await self.path_map()
        out = message
        for storage in set(_QUOTED_PATH.findall(message)):
            api = pm.to_api(storage)
            out = out.replace(f"'{storage}'", f"'{api if api is not None else posixpath.basename(storage)}'")
        return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


@overload
def _string(body: dict[str, object], key: str, *, required: Literal[True]) -> str: ...


@overload
def _string(body: dict[str, object], key: str, *, default: str) -> str: ...


@overload
def _string(body: dict[str, object], key: str) -> str | None: ...


def _string(
    body: dict[str, object], key: str, *, required: bool = False, default: str | None = None
) -> str | None:
    """A string field of a JSON body (400 when it has another type or is required and missing)."""
    value = body.get(key)
    if value is None:
        if required:
            raise HTTPError(400, f"Missing '{key}'")
        return default
    if not isinstance(value, str):
        raise HTTPError(400, f"'{key}' must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not text the storage can take
        raise HTTPError(400, f"'{key}' is not valid text") from None
    return value


# ---------------------------------------------------------------------------------------------- mounts
async def refresh_mounts(
    cm: CS3ContentsManager,
    client: CS3Client,
    pm: PathMapper,
    spaces_folder: str = DEFAULT_SPACES_FOLDER,
    shares_folder: str = DEFAULT_SHARES_FOLDER,
    *,
    spaces: list[Space] | None = None,
    incoming: list[ReceivedShare] | None = None,
) -> None:
    """Mount the spaces and accepted received shares that lie outside the root as virtual folders, under
    names that never change while they exist (the contents manager owns them: contents/mounts.py)."""
    await cm.refresh_mounts(spaces_folder, shares_folder, spaces=spaces, incoming=incoming)


# ---------------------------------------------------------------------------------------------- JSON shapes
def role_of(permissions: Iterable[str]) -> str:
    """viewer / editor / uploader from a permission set (storages grant slightly different sets)."""
    perms = frozenset(permissions)
    can_read = "initiate_file_download" in perms or "stat" in perms
    can_write = "initiate_file_upload" in perms and ("delete" in perms or "move" in perms)
    if can_read and can_write:
        return "editor"
    if can_read:
        return "viewer"
    if "initiate_file_upload" in perms:
        return "uploader"
    return "custom"


def permissions_of(role: object) -> frozenset[str]:
    from cs3sync.cs3.types import EDITOR, VIEWER

    if not isinstance(role, str):
        raise HTTPError(400, f"'role' must be one of {', '.join(ROLES)}")
    if role == "viewer":
        return VIEWER
    if role == "editor":
        return EDITOR
    raise HTTPError(400, f"Unknown role {role[:40]!r}: use one of {', '.join(ROLES)}")


def quota_json(quota: Quota | None) -> JSONObject | None:
    if quota is None:
        return None
    total = int(quota.total or 0)
    return {"used": int(quota.used or 0), "total": total, "unlimited": total == 0}


def _num(value: float | None) -> float | None:
    return None if value is None else float(value)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class Names:
    """Display names of users and groups, looked up once per request."""

    def __init__(self, client: CS3Client) -> None:
        self.client = client
        self.cache: dict[tuple[str, str], dict[str, str]] = {}

    async def user(self, opaque_id: str, idp: str = "") -> dict[str, str]:
        key = ("user", opaque_id)
        if key not in self.cache:
            found: User | None = None
            try:
                found = await self.client.get_user(opaque_id, idp)
            except Exception as exc:  # a name is cosmetic: fall back to the id
                log.debug("cs3sync.name_lookup_failed %s", type(exc).__name__)
            self.cache[key] = {
                "type": "user",
                "id": opaque_id,
                "idp": idp or (found.idp if found else ""),
                "display_name": (found.display_name or found.username if found else "") or opaque_id,
            }
        return self.cache[key]

    async def group(self, opaque_id: str, idp: str = "") -> dict[str, str]:
        key = ("group", opaque_id)
        if key not in self.cache:
            found: Group | None = None
            try:
                found = await self.client.get_group(opaque_id, idp)
            except Exception as exc:  # e.g. Unimplemented: search instead
                log.debug("cs3sync.name_lookup_failed %s", type(exc).__name__)
            if found is None and len(opaque_id) >= MIN_QUERY:
                try:
                    groups = await self.client.find_groups(opaque_id)
                    found = next((g for g in groups if opaque_id in (g.opaque_id, g.name)), None)
                except Exception as exc:
                    log.debug("cs3sync.name_lookup_failed %s", type(exc).__name__)
            self.cache[key] = {
                "type": "group",
                "id": opaque_id,
                "idp": idp or (found.idp if found else ""),
                "display_name": (found.display_name or found.name if found else "") or opaque_id,
            }
        return self.cache[key]

    async def grantee(self, grantee: Grantee) -> dict[str, str]:
        if grantee.type == "group":
            return await self.group(grantee.opaque_id, grantee.idp)
        return await self.user(grantee.opaque_id, grantee.idp)


def _resource_fields(res: ResourceInfo | None, fallback_id: FileId) -> dict[str, str]:
    if res is None:
        return {"name": str(fallback_id), "type": "file", "storage_path": ""}
    return {
        "name": res.name or posixpath.basename(res.path.rstrip("/")) or res.path,
        "type": res.type,
        "storage_path": res.path,
    }


# ---------------------------------------------------------------------------------------------- handlers
class VersionHandler(CS3APIHandler):
    @web.authenticated
    async def get(self) -> None:
        self.write_json(
            {
                "name": "cs3sync",
                "version": cs3sync.__version__,
                "api": API_VERSION,
                "contents_manager": isinstance(self.cm, CS3ContentsManager),
                "product_name": self.api_config.product_name if self.api_config else "CS3",
            }
        )


class SpacesHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors("spaces")
    async def get(self) -> None:
        client = await self.client()
        pm = await self.path_map()
        spaces = await client.spaces()
        await refresh_mounts(self.manager, client, pm, self.folder_names()[0], "", spaces=spaces)
        out: list[JSONObject] = []
        for s in spaces:
            out.append(
                {
                    "id": s.id,
                    "name": s.name,
                    "type": s.type,
                    "storage_path": s.path,
                    "api_path": await self.to_api(s.path),
                    "quota": quota_json(s.quota),
                }
            )
        order = {"personal": 0, "project": 1}
        out.sort(key=lambda s: (order.get(s["type"], 2), s["name"].lower()))
        self.write_json({"spaces": out})


class IncomingSharesHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors("shares")
    async def get(self) -> None:
        client = await self.client()
        pm = await self.path_map()
        received = await client.list_incoming_shares()
        await refresh_mounts(self.manager, client, pm, "", self.folder_names()[1], incoming=received)
        names = Names(client)
        out: list[JSONObject] = []
        for rs in received:
            share = rs.share
            res = rs.resource or share.resource
            creator = share.creator or share.owner
            item = {
                "id": share.id,
                **_resource_fields(res, share.resource_id),
                "api_path": await self.to_api(res.path) if res and rs.state == "accepted" else None,
                "role": role_of(share.permissions),
                "creator": await names.user(creator) if creator else None,
                "state": rs.state,
                "hidden": bool(rs.hidden),
                "expiration": _num(share.expiration),
                "ctime": _num(share.ctime),
            }
            out.append(item)
        out.sort(key=lambda s: (s["name"].lower(), s["id"]))
        self.write_json({"shares": out})


class OutgoingSharesHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors(lambda self: self.get_query_argument("path", "") or "shares")
    async def get(self) -> None:
        client = await self.client()
        path = self.query_path()
        target = await self.to_cs3(path) if path is not None else None
        shares = await client.list_outgoing_shares(target) if target else await client.list_outgoing_shares()
        names = Names(client)
        out = [await self._share_json(s, names) for s in shares]
        out.sort(key=lambda s: (s["name"].lower(), s["grantee"]["display_name"].lower(), s["id"]))
        self.write_json({"shares": out})

    async def _share_json(self, share: Share, names: Names) -> JSONObject:
        return await share_json(self, share, names)


async def share_json(handler: CS3APIHandler, share: Share, names: Names) -> JSONObject:
    res = share.resource
    return {
        "id": share.id,
        **_resource_fields(res, share.resource_id),
        "api_path": await handler.to_api(res.path) if res is not None else None,
        "role": role_of(share.permissions),
        "grantee": await names.grantee(share.grantee),
        "expiration": _num(share.expiration),
        "ctime": _num(share.ctime),
    }


class SharesHandler(CS3APIHandler):
    """POST a new share: {"path", "grantee_type": "user"|"group", "grantee_id", "grantee_idp"?, "role"}."""

    @web.authenticated
    @storage_errors(lambda self: "share")
    async def post(self) -> None:
        body = self.json_body()
        path = _string(body, "path", required=True)
        grantee_type = _string(body, "grantee_type", default="user")
        grantee_id = _string(body, "grantee_id", required=True)
        if grantee_type not in ("user", "group"):
            raise HTTPError(400, "'grantee_type' must be 'user' or 'group'")
        if not grantee_id:
            raise HTTPError(400, "Missing 'grantee_id'")
        idp = _string(body, "grantee_idp", default="")
        permissions = permissions_of(body.get("role", "viewer"))
        expiration = _expiration(body.get("expiration"))
        client = await self.client()
        target = await self.to_cs3(path)
        kind: Literal["user", "group"] = "group" if grantee_type == "group" else "user"
        grantee = Grantee(type=kind, opaque_id=grantee_id, idp=idp)
        share = await client.create_share(target, grantee, permissions, expiration=expiration)
        if share.resource is None:
            share = _with_resource(share, await client.stat(target))
        self.write_json(await share_json(self, share, Names(client)), status=201)


class ShareHandler(CS3APIHandler):
    """PATCH {"role"?, "expiration"?} or DELETE one outgoing share."""

    @web.authenticated
    @storage_errors(lambda self: "share")
    async def patch(self, share_id: str) -> None:
        body = self.json_body()
        role = body.get("role")
        permissions = permissions_of(role) if role is not None else None
        expiration = _expiration(body.get("expiration"))
        if permissions is None and expiration is None:
            raise HTTPError(400, "Nothing to update: give 'role' and/or 'expiration'")
        client = await self.client()
        share = await client.update_share(share_id, permissions=permissions, expiration=expiration)
        if share.resource is None:
            with _quiet():
                share = _with_resource(share, await client.stat(share.resource_id))
        self.write_json(await share_json(self, share, Names(client)))

    @web.authenticated
    @storage_errors(lambda self: "share")
    async def delete(self, share_id: str) -> None:
        client = await self.client()
        await client.remove_share(share_id)
        self.set_status(204)
        self.finish()


T = TypeVar("T", Share, PublicLink)


def _with_resource(obj: T, info: ResourceInfo) -> T:
    import dataclasses

    return dataclasses.replace(obj, resource=info)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], Exception)  # type: ignore[arg-type]


def _expiration(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HTTPError(400, "'expiration' must be a number of seconds since the epoch")
    if value > 253402300799:  # 9999-12-31: beyond any storage's timestamps
        raise HTTPError(400, "'expiration' is too far in the future")
    if value <= time.time():
        raise HTTPError(400, "'expiration' is in the past")
    return float(value)


class LinksHandler(CS3APIHandler):
    """GET [?path=] the user's public links; POST {"path", "role"?, "password"?, "expiration"?, ...}."""

    @web.authenticated
    @storage_errors(lambda self: self.get_query_argument("path", "") or "links")
    async def get(self) -> None:
        client = await self.client()
        path = self.query_path()
        target = await self.to_cs3(path) if path is not None else None
        links = await client.list_links(target) if target else await client.list_links()
        out = [await self.link_json(link) for link in links]
        out.sort(key=lambda link: (link["name"].lower(), link["id"]))
        self.write_json({"links": out})

    @web.authenticated
    @storage_errors(lambda self: "link")
    async def post(self) -> None:
        body = self.json_body()
        path = _string(body, "path", required=True)
        permissions = permissions_of(body.get("role", "viewer"))
        password = _string(body, "password") or None
        expiration = _expiration(body.get("expiration"))
        description = _string(body, "display_name", default="")
        client = await self.client()
        target = await self.to_cs3(path)
        link = await client.create_link(
            target, permissions, password=password, expiration=expiration, description=description
        )
        if link.resource is None:
            link = _with_resource(link, await client.stat(target))
        self.write_json(await self.link_json(link), status=201)

    def link_template(self) -> str:
        return self.api_config.public_link_url if self.api_config else ""

    async def link_json(self, link: PublicLink) -> JSONObject:
        res = link.resource
        return {
            "id": link.id,
            "token": link.token,
            "url": link_url(self.link_template(), link.token),
            **_resource_fields(res, link.resource_id),
            "api_path": await self.to_api(res.path) if res is not None else None,
            "role": role_of(link.permissions),
            "password_protected": bool(link.password_protected),
            "expiration": _num(link.expiration),
            "display_name": link.display_name or link.description or "",
        }


class LinkHandler(LinksHandler):
    """PATCH {"role"?, "password"?, "expiration"?, "display_name"?} or DELETE one public link."""

    @web.authenticated
    @storage_errors(lambda self: "link")
    async def patch(self, link_id: str) -> None:
        body = self.json_body()
        kwargs: dict[str, Any] = {}  # update_link's keyword arguments, of several types
        if body.get("role") is not None:
            kwargs["permissions"] = permissions_of(body["role"])
        password = _string(body, "password")
        if password is not None:
            kwargs["password"] = password  # "" removes the password
        if "expiration" in body:
            # null removes the expiry (a zero timestamp, as Reva stores "never")
            kwargs["expiration"] = _expiration(body["expiration"]) if body["expiration"] is not None else 0.0
        display_name = _string(body, "display_name")
        if display_name is not None:
            kwargs["display_name"] = display_name
        if not kwargs:
            raise HTTPError(400, "Nothing to update")
        client = await self.client()
        link = await client.update_link(link_id, **kwargs)
        if link.resource is None:
            with _quiet():
                link = _with_resource(link, await client.stat(link.resource_id))
        self.write_json(await self.link_json(link))

    @web.authenticated
    @storage_errors(lambda self: "link")
    async def delete(self, link_id: str) -> None:
        client = await self.client()
        await client.remove_link(link_id)
        self.set_status(204)
        self.finish()


def _query(handler: CS3APIHandler) -> str:
    q = handler.get_query_argument("q", "").strip()
    if len(q) < MIN_QUERY:
        raise HTTPError(400, f"Search needs at least {MIN_QUERY} characters")
    return q


class UsersHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors("users")
    async def get(self) -> None:
        q = _query(self)
        client = await self.client()
        users = await client.find_users(q)
        out = [
            {
                "id": u.opaque_id,
                "idp": u.idp,
                "username": u.username,
                "display_name": u.display_name or u.username,
                "mail": u.mail,
            }
            for u in users
        ]
        self.write_json({"users": out})


class GroupsHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors("groups")
    async def get(self) -> None:
        q = _query(self)
        client = await self.client()
        groups = await client.find_groups(q)
        out = [
            {
                "id": g.opaque_id,
                "idp": g.idp,
                "name": g.name,
                "display_name": g.display_name or g.name,
                "mail": g.mail,
            }
            for g in groups
        ]
        self.write_json({"groups": out})


class QuotaHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors(lambda self: self.get_query_argument("path", "") or "/")
    async def get(self) -> None:
        path = (self.query_path() or "").strip("/")
        pm = await self.path_map()
        if path and pm.is_virtual(path):
            path = ""  # a virtual folder has no storage of its own: show the root's
        target = await self.to_cs3(path)
        client = await self.client()
        quota = await client.quota(target)
        body = quota_json(quota) or {}
        body["path"] = path
        if quota.remaining is not None:
            body["remaining"] = quota.remaining
        self.write_json(body)


class JournalHandler(CS3APIHandler):
    @web.authenticated
    @storage_errors("journal")
    async def get(self) -> None:
        engine = await self.engine()
        journal = engine.journal
        counts = await journal.counts()
        entries = (await engine.entries(states=SHOWN_STATES))[:MAX_ENTRIES]
        uploads: dict[int, tuple[int, int]] = {}  # entry id -> (bytes confirmed or sent, total)
        for u in await journal.upload_sessions():
            uploads[u.entry_id] = (max(u.offset or 0, u.sent or 0), int(u.total or 0))
        # this process's running uploads, fresher than the persisted figure
        for entry_id, p in engine.progress().items():
            uploads[entry_id] = (p.sent, p.total)
        out = [await self.entry_json(e, uploads.get(e.id)) for e in entries]
        # Saves merged with someone else's change: the panel shows them, and reloads an open document.
        merged = [await self.entry_json(e, None) for e in await journal.merged_saves(MERGED_SHOWN)]
        state = engine.shown_state  # offline from the first failure to reach the storage
        self.write_json(
            {
                "state": state,
                "last_error": await self.in_user_terms(short_error(engine.last_error))
                if state != "online"
                else None,
                # "ok" | "journal_error" (journal writes keep failing: disk full?) | "dead" (being
                # restarted); health_error says why in the user's terms.
                "health": engine.health,
                "health_error": engine.health_error,
                "counts": counts,
                "pending": sum(counts.get(s, 0) for s in PENDING_STATES),
                "entries": out,
                "merged": merged,
            }
        )

    async def entry_json(self, e: Entry, upload: tuple[int, int] | None) -> JSONObject:
        api_path = await self.to_api(e.path)
        conflict_api_path = await self.to_api(e.conflict_path)
        message = short_error(e.last_error)
        if message:  # the panel speaks in Jupyter paths, not storage paths
            for cs3_path, api in ((e.conflict_path, conflict_api_path), (e.path, api_path)):
                if cs3_path and api is not None:
                    message = message.replace(cs3_path, api)
        message = await self.in_user_terms(message)
        uploaded = None
        progress = None
        if upload is not None and upload[1] > 0:
            uploaded = min(upload[0], upload[1])
            progress = uploaded / upload[1]
        return {
            "id": int(e.id),
            "op": e.op,
            "path": e.path,
            "api_path": api_path,
            "src_api_path": await self.to_api(e.src_path),
            "state": e.state,
            "blocked_reason": e.blocked_reason,
            "attempts": e.attempts,
            "last_error": message,
            "size": e.size,
            "uploaded": uploaded,
            "progress": progress,
            "conflict_api_path": conflict_api_path,
            # {merged, with, changes, unit, collisions, message}: a merge with a foreign change, or why not
            "merge": e.extra.get("merge"),
            "created": e.created_at,
            "finished": e.finished_at,
            "updated": e.updated_at,
        }


#: Each journal action: the engine method, and the past participle for refusals.
#: ``keep-mine``: a conflict's own version replaces the storage's (the conflict copy stays; refused when
#: a later change to the same file exists). ``resolve``: the user dealt with it ("Keep theirs" and
#: "Mark resolved" in the panel: the storage's version stays, ours stays in the conflict copy).
JOURNAL_ACTIONS: dict[str, tuple[Callable[[SyncEngine, int], Awaitable[Entry]], str]] = {
    "retry": (SyncEngine.retry, "retried"),
    "keep-mine": (SyncEngine.keep_mine, "kept over the other version"),
    "discard": (SyncEngine.discard, "discarded"),
    "resolve": (SyncEngine.resolve, "marked resolved"),
}


class JournalActionHandler(CS3APIHandler):
    """POST journal/<id>/retry | keep-mine | discard | resolve."""

    @web.authenticated
    @storage_errors("journal entry")
    async def post(self, entry_id: str, action: str) -> None:
        if len(entry_id) > len(str(MAX_ENTRY_ID)) or int(entry_id) > MAX_ENTRY_ID:
            raise HTTPError(404, f"No journal entry {entry_id[:20]}")
        engine = await self.engine()
        act, done = JOURNAL_ACTIONS[action]
        try:
            await act(engine, int(entry_id))
        except UnknownEntry:
            raise HTTPError(404, f"No journal entry {entry_id}") from None
        except InvalidTransition:
            raise HTTPError(409, f"This change cannot be {done} now (it has moved on); refresh") from None
        engine.wake()
        self.set_status(204)
        self.finish()


class JournalCompareHandler(CS3APIHandler):
    """GET journal/<id>/compare: for a notebook conflict, nbdime's diff from the storage's version to the
    conflicted copy (``{base, diff, api_path, conflict_api_path}``, the shape of nbdime's diff API), so the
    Sync panel can show what differs where the merge was not possible (cs3sync.merge)."""

    @web.authenticated
    @storage_errors("journal entry")
    async def get(self, entry_id: str) -> None:
        engine = await self.engine()
        try:
            entry = await engine.journal.entry(int(entry_id)) if int(entry_id) <= MAX_ENTRY_ID else None
        except UnknownEntry:
            entry = None
        if entry is None:
            raise HTTPError(404, f"No journal entry {entry_id[:20]}")
        api_path = await self.to_api(entry.path)
        if entry.state != "conflict" or not entry.conflict_path:
            raise HTTPError(409, f"{api_path or 'This change'} has no conflicted copy to compare")
        client = await self.client()
        theirs = await client.read_bytes(entry.path)
        ours = await client.read_bytes(entry.conflict_path)
        compared = await compare_in_thread(theirs, ours)
        if compared is None:
            raise HTTPError(400, f"{api_path} is not a notebook: open both files to compare them")
        self.write_json(
            {**compared, "api_path": api_path, "conflict_api_path": await self.to_api(entry.conflict_path)}
        )


class NotFoundHandler(CS3APIHandler):
    """Any other URL under the namespace: a JSON 404 rather than tornado's HTML page."""

    def _missing(self) -> NoReturn:
        raise HTTPError(404, "No such cs3sync endpoint")

    @web.authenticated
    def get(self, *args: str) -> None:
        self._missing()

    @web.authenticated
    def post(self, *args: str) -> None:
        self._missing()

    @web.authenticated
    def patch(self, *args: str) -> None:
        self._missing()

    @web.authenticated
    def put(self, *args: str) -> None:
        self._missing()

    @web.authenticated
    def delete(self, *args: str) -> None:
        self._missing()


# ---------------------------------------------------------------------------------------------- setup
def routes(base_url: str) -> list[tuple[str, type[CS3APIHandler]]]:
    def r(p: str) -> str:
        return url_path_join(base_url, NAMESPACE, p)

    return [
        (r("version"), VersionHandler),
        (r("spaces"), SpacesHandler),
        (r("shares/incoming"), IncomingSharesHandler),
        (r("shares/outgoing"), OutgoingSharesHandler),
        (r("shares"), SharesHandler),
        (r(r"shares/([^/]+)"), ShareHandler),
        (r("links"), LinksHandler),
        (r(r"links/([^/]+)"), LinkHandler),
        (r("users"), UsersHandler),
        (r("groups"), GroupsHandler),
        (r("quota"), QuotaHandler),
        (r("journal"), JournalHandler),
        (r(r"journal/(\d+)/(retry|keep-mine|discard|resolve)"), JournalActionHandler),
        (r(r"journal/(\d+)/compare"), JournalCompareHandler),
    ]


def fallback_route(base_url: str) -> tuple[str, type[CS3APIHandler]]:
    """A JSON 404 for the rest of the namespace, registered after the other routes (``locks`` included)."""
    return (url_path_join(base_url, NAMESPACE, "(.*)"), NotFoundHandler)


def setup_handlers(web_app: web.Application, contents_manager: object) -> None:
    """Register the REST API under ``<base_url>/api/cs3sync/`` (called by the server extension loader)."""
    base_url = web_app.settings.get("base_url", "/")
    if isinstance(contents_manager, Configurable):
        api_config = CS3SyncAPI(parent=contents_manager)
    else:
        api_config = CS3SyncAPI(config=web_app.settings.get("config"))
    if api_config.public_link_url and link_url(api_config.public_link_url, "t") is None:
        log.warning(
            "cs3sync: CS3SyncAPI.public_link_url must be an http(s) URL containing {token}; "
            "the panels will copy bare link tokens"
        )
    kwargs = {"contents_manager": contents_manager, "api_config": api_config}
    handlers = [(re.sub(r"/+", "/", path), cls, kwargs) for path, cls in routes(base_url)]
    web_app.add_handlers(".*$", handlers)
    # Last (tornado tries host rules in insertion order; the lock routes were added before these).
    path, cls = fallback_route(base_url)
    web_app.add_handlers(".*$", [(re.sub(r"/+", "/", path), cls, kwargs)])
