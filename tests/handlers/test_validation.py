"""Input validation, errors, authentication and XSRF of every REST entry point (contents/handlers.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from contents.handlers import CS3SyncAPI, link_url, routes, short_error

MARIE = "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c"

#: (method, endpoint) of every verb every handler serves, with sample ids.
ENDPOINTS = [
    ("GET", "version"),
    ("GET", "spaces"),
    ("GET", "shares/incoming"),
    ("GET", "shares/outgoing"),
    ("POST", "shares"),
    ("PATCH", "shares/1"),
    ("DELETE", "shares/1"),
    ("GET", "links"),
    ("POST", "links"),
    ("PATCH", "links/1"),
    ("DELETE", "links/1"),
    ("GET", "users"),
    ("GET", "groups"),
    ("GET", "quota"),
    ("GET", "journal"),
    ("POST", "journal/1/retry"),
    ("POST", "journal/1/discard"),
    ("GET", "no-such-endpoint"),
]


def _check_error(status: int, body: Any, expected: int | tuple[int, ...], what: Any) -> None:
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert status in allowed, (what, status, body)
    assert isinstance(body, dict), (what, body)
    message = body["message"]
    assert isinstance(message, str) and message, (what, body)
    assert len(message) <= 300, (what, message)
    for internal in ("Traceback", 'File "', "Error(", "grpc", "ipv4:", "/eos/"):
        assert internal not in message, (what, message)


# ---------------------------------------------------------------------------------------------- unit
def test_every_verb_is_authenticated() -> None:
    """The check_auth.py rule of the template, statically: every verb method carries @authenticated."""
    import contents.handlers as h

    classes = {cls for _, cls in routes("/")} | {h.NotFoundHandler}
    for cls in classes:
        for verb in ("get", "post", "patch", "put", "delete", "head"):
            method = cls.__dict__.get(verb)
            if method is None:
                continue
            # tornado.web.authenticated wraps the method; functools.wraps keeps a __wrapped__ chain
            source = getattr(method, "__wrapped__", None)
            assert source is not None, f"{cls.__name__}.{verb} is not decorated"
    assert all(issubclass(cls, h.CS3APIHandler) for cls in classes)


def test_short_error() -> None:
    assert short_error(None) is None
    assert short_error("") is None
    raw = (
        "upload '/x': failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4: "
        "Failed to connect to remote host: Connection refused"
    )
    assert short_error(raw) == "storage unreachable"
    assert short_error("<AioRpcError of RPC that terminated with:\n\tstatus = StatusCode.UNAVAILABLE") == (
        "storage unreachable"
    )
    assert short_error("upload 'a.md': storage unreachable [UNAVAILABLE]") == (
        "upload 'a.md': storage unreachable [UNAVAILABLE]"
    )
    assert short_error("first line\nsecond line") == "first line"
    assert len(short_error("x" * 5000) or "") == 200


def test_link_url_template() -> None:
    assert link_url("https://cernbox.example.org/s/{token}", "aB3") == "https://cernbox.example.org/s/aB3"
    assert link_url("https://x.example.org/s/{token}", "a/b c") == "https://x.example.org/s/a%2Fb%20c"
    assert link_url("", "aB3") is None
    assert link_url("https://x.example.org/s/", "aB3") is None  # no {token}
    assert link_url("javascript:alert('{token}')", "aB3") is None
    assert CS3SyncAPI().public_link_url == ""
    assert "{token}" in CS3SyncAPI.public_link_url.help


# ---------------------------------------------------------------------------------------------- server
async def test_unauthenticated_requests_are_refused(jp_fetch: Any) -> None:
    for method, endpoint in ENDPOINTS:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False, "headers": {"Authorization": ""}}
        if method in ("POST", "PATCH"):
            kwargs["body"] = "{}"
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await jp_fetch("api", "cs3sync", *endpoint.split("/"), **kwargs)
        assert response.code == 403, (method, endpoint, response.code)


async def test_xsrf_is_enforced_for_cookie_sessions(jp_fetch: Any) -> None:
    """Like jupyter_server: a browser session (cookie, no token) must send the XSRF token on writes."""
    response = await jp_fetch("api", "cs3sync", "version")
    login = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie") if c.startswith("username-")]
    assert login, response.headers
    cookie = login[0]
    body = json.dumps({"path": "papers", "grantee_type": "user", "grantee_id": MARIE})

    async def post(endpoint: str, headers: dict[str, str], method: str = "POST") -> Any:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False, "body": body}
        if method == "DELETE":
            kwargs = {"method": method, "raise_error": False, "allow_nonstandard_methods": True}
        return await jp_fetch(
            "api", "cs3sync", *endpoint.split("/"), headers={"Authorization": "", **headers}, **kwargs
        )

    # The cookie alone authenticates a GET ...
    got = await jp_fetch("api", "cs3sync", "version", headers={"Authorization": "", "Cookie": cookie})
    assert got.code == 200
    for method, endpoint in [("POST", "shares"), ("PATCH", "links/1"), ("DELETE", "shares/1")]:
        # ... but no XSRF token: refused
        missing = await post(endpoint, {"Cookie": cookie}, method)
        assert missing.code == 403, (method, endpoint, missing.code)
        # a token that does not match the _xsrf cookie: refused
        wrong = await post(
            endpoint, {"Cookie": f"{cookie}; _xsrf=0123abcd", "X-XSRFToken": "ffff0000"}, method
        )
        assert wrong.code == 403, (method, endpoint, wrong.code)
    # The matching token passes the check (and the share is made).
    good = await post("shares", {"Cookie": f"{cookie}; _xsrf=0123abcd", "X-XSRFToken": "0123abcd"})
    assert good.code == 201, good.body
    await post(
        f"shares/{json.loads(good.body)['id']}",
        {"Cookie": f"{cookie}; _xsrf=0123abcd", "X-XSRFToken": "0123abcd"},
        "DELETE",
    )


@pytest.mark.parametrize("demo_profile", ["cernbox"])
async def test_bad_bodies_are_400(api: Any, jp_fetch: Any, demo_profile: str) -> None:
    future = int(time.time()) + 86400
    cases: list[tuple[str, str, Any, int | tuple[int, ...]]] = [
        # paths: '..', NUL and other control characters, backslashes, wrong types
        ("POST", "shares", {"path": "papers/../../etc", "grantee_id": MARIE}, 400),
        ("POST", "shares", {"path": "pa\x00pers", "grantee_id": MARIE}, 400),
        ("POST", "shares", {"path": "pa\\pers", "grantee_id": MARIE}, 400),
        ("POST", "shares", {"path": ["papers"], "grantee_id": MARIE}, 400),
        ("POST", "shares", {"path": 7, "grantee_id": MARIE}, 400),
        # absolute paths are relative to the Jupyter root, never the storage's: a storage path is unknown
        ("POST", "shares", {"path": "/eos/user/e/einstein/papers", "grantee_id": MARIE}, 404),
        ("POST", "links", {"path": "/etc/passwd"}, 404),
        ("POST", "links", {"path": "Spaces"}, (400, 404)),  # a virtual folder (once mounted)
        # wrong types and values
        ("POST", "shares", {"path": "papers", "grantee_id": 42}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "grantee_idp": 1}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "grantee_type": ["user"]}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "role": ["editor"]}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "role": "x" * 10000}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "expiration": "tomorrow"}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "expiration": True}, 400),
        ("POST", "shares", {"path": "papers", "grantee_id": MARIE, "expiration": 1e300}, 400),
        ("POST", "links", {"path": "data.csv", "password": 1234}, 400),
        ("POST", "links", {"path": "data.csv", "display_name": {"a": 1}}, 400),
        ("POST", "links", {"path": "data.csv", "expiration": str(future)}, 400),
        ("PATCH", "shares/1", {"role": 3}, 400),
        ("PATCH", "shares/1", {"expiration": -5}, 400),
        ("PATCH", "links/1", {"password": False}, 400),
        ("PATCH", "links/1", {"expiration": "never"}, 400),
        ("PATCH", "links/1", {}, 400),
        # ids the storage does not know
        ("PATCH", "links/no-such-link", {"display_name": "x"}, (400, 404)),
        ("DELETE", "links/no-such-link", None, (400, 404)),
        ("POST", "journal/99999999999999999999999/retry", None, 404),
    ]
    for method, endpoint, body, expected in cases:
        status, answer = await api(endpoint, method, body)
        _check_error(status, answer, expected, (method, endpoint, body))
    # Bodies that are not JSON objects, NaN/Infinity (not JSON), bad UTF-8.
    for raw in (
        b"{nope",
        b"[1, 2]",
        b'"papers"',
        b"null",
        b'{"path": "data.csv", "expiration": NaN}',
        b'{"path": "data.csv", "expiration": Infinity}',
        b"\xff\xfe{}",
    ):
        for endpoint in ("shares", "links"):
            response = await jp_fetch("api", "cs3sync", endpoint, method="POST", body=raw, raise_error=False)
            _check_error(response.code, json.loads(response.body), 400, (endpoint, raw))
    # Query arguments: short searches, '..' in ?path=.
    for endpoint, params in [
        ("users", {"q": "m"}),
        ("groups", {"q": " "}),
        ("quota", {"path": "a/../.."}),
        ("links", {"path": "../x"}),
        ("shares/outgoing", {"path": "a/../../b"}),
    ]:
        status, answer = await api(endpoint, **params)
        _check_error(status, answer, 400, (endpoint, params))
    # Unknown endpoints and methods: JSON, not tornado's HTML.
    status, answer = await api("no-such-endpoint")
    _check_error(status, answer, 404, "unknown endpoint")
    status, answer = await api("spaces", "DELETE")
    _check_error(status, answer, 405, "DELETE spaces")


@pytest.mark.parametrize("demo_profile", ["cernbox"])
async def test_numbers_are_numbers(api: Any, demo_profile: str) -> None:
    _, body = await api("spaces")
    for space in body["spaces"]:
        if space["quota"] is not None:
            assert all(isinstance(space["quota"][k], int) for k in ("used", "total"))
    _, body = await api("quota", path="")
    assert isinstance(body["used"], int) and isinstance(body["total"], int)
    _, body = await api("links")
    for link in body["links"]:
        assert link["expiration"] is None or isinstance(link["expiration"], float)
    _, body = await api("journal")
    assert isinstance(body["pending"], int)
    assert all(isinstance(v, int) for v in body["counts"].values())


@pytest.mark.parametrize("demo_profile", ["cernbox"])
async def test_link_update_password_and_expiry(api: Any, demo_profile: str) -> None:
    """What the Shares panel's "Edit" does: set, change and remove a link's expiry and password."""
    status, link = await api("links", "POST", {"path": "papers"})
    assert status == 201, link
    assert link["url"] is None  # no public_link_url configured: the panel copies the token
    expiry = int(time.time()) + 3 * 86400
    status, updated = await api(f"links/{link['id']}", "PATCH", {"expiration": expiry, "password": "pw-123"})
    assert status == 200, updated
    assert updated["expiration"] == float(expiry)
    assert updated["password_protected"] is True
    status, updated = await api(f"links/{link['id']}", "PATCH", {"expiration": None, "password": ""})
    assert status == 200, updated
    assert not updated["expiration"]
    assert updated["password_protected"] is False
    status, _ = await api(f"links/{link['id']}", "DELETE")
    assert status == 204


@pytest.mark.parametrize("demo_profile", ["cernbox"])
@pytest.mark.parametrize("public_link_url", ["https://cernbox.example.org/s/{token}"])
async def test_public_link_url_template(api: Any, demo_profile: str, public_link_url: str) -> None:
    status, body = await api("links")
    assert status == 200
    assert body["links"]
    for link in body["links"]:
        assert link["url"] == f"https://cernbox.example.org/s/{link['token']}"
