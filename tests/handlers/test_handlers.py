"""The REST API of the labextension (contents/handlers.py) against the emulator's demo data."""

from __future__ import annotations

import time
from typing import Any

import pytest

MARIE = "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c"


async def test_version(api: Any) -> None:
    import cs3sync

    status, body = await api("version")
    assert status == 200
    assert body["version"] == cs3sync.__version__
    assert body["api"] == 1
    assert body["contents_manager"] is True
    assert body["product_name"] == "CS3"  # c.CS3SyncAPI.product_name; `cs3sync lab` sets it per profile


async def test_unauthenticated_is_refused(jp_fetch: Any) -> None:
    response = await jp_fetch("api", "cs3sync", "spaces", headers={"Authorization": ""}, raise_error=False)
    assert response.code == 403


async def test_spaces_lists_home_and_projects(api: Any, jp_fetch: Any) -> None:
    status, body = await api("spaces")
    assert status == 200
    spaces = {s["name"]: s for s in body["spaces"]}
    assert {"cosmology", "relativity-lab"} <= set(spaces)
    # Each space once, by its own type: reva master's spacesregistry (the cernbox profile) answers the
    # personal space without root or mtime and every project again as an "explorer" space, twice
    # (storage behaviours row 8).
    assert [(s["type"], s["name"]) for s in body["spaces"]] == [
        ("personal", "einstein"),
        ("project", "cosmology"),
        ("project", "relativity-lab"),
    ]
    personal = [s for s in body["spaces"] if s["type"] == "personal"]
    assert len(personal) == 1
    assert personal[0]["api_path"] == ""  # the home is the root
    cosmology = spaces["cosmology"]
    assert cosmology["type"] == "project"
    assert cosmology["storage_path"].endswith("/cosmology")
    assert cosmology["api_path"] == "Spaces/cosmology"
    if cosmology["quota"] is not None:
        assert isinstance(cosmology["quota"]["total"], int)
    # The api_path opens through the contents manager although the space lies outside the root.
    response = await jp_fetch("api", "contents", "Spaces", "cosmology", raise_error=False)
    assert response.code == 200, response.body
    import json

    listing = json.loads(response.body)
    assert listing["type"] == "directory"
    assert "README.md" in {c["name"] for c in listing["content"]}
    response = await jp_fetch("api", "contents", "Spaces", raise_error=False)
    assert response.code == 200
    assert sorted(c["name"] for c in json.loads(response.body)["content"]) == ["cosmology", "relativity-lab"]


async def test_shares_incoming(api: Any, jp_fetch: Any) -> None:
    status, body = await api("shares/incoming")
    assert status == 200
    shares = {s["name"]: s for s in body["shares"]}
    radium = shares["radium"]
    assert radium["type"] == "directory"
    assert radium["role"] == "viewer"
    assert radium["creator"]["id"]
    assert radium["creator"]["display_name"] == "Marie Curie"
    if radium["state"] == "accepted":
        assert radium["api_path"] == "Shared with me/radium"
        response = await jp_fetch("api", "contents", "Shared with me", "radium", raise_error=False)
        assert response.code == 200, response.body


async def test_shares_outgoing(api: Any) -> None:
    status, body = await api("shares/outgoing")
    assert status == 200
    shares = {s["name"]: s for s in body["shares"]}
    assert shares["shared-with-marie"]["role"] == "editor"
    assert shares["shared-with-marie"]["api_path"] == "shared-with-marie"
    assert shares["shared-with-marie"]["type"] == "directory"
    assert shares["data.csv"]["role"] == "viewer"
    grantee = shares["data.csv"]["grantee"]
    assert grantee["type"] == "user"
    assert grantee["id"] == MARIE
    assert grantee["display_name"] == "Marie Curie"
    # Filtered by resource (what the Share dialog shows).
    status, body = await api("shares/outgoing", path="data.csv")
    assert status == 200
    assert [s["name"] for s in body["shares"]] == ["data.csv"]


async def test_share_create_update_delete(api: Any) -> None:
    status, share = await api(
        "shares", "POST", {"path": "papers", "grantee_type": "user", "grantee_id": MARIE, "role": "viewer"}
    )
    assert status == 201, share
    assert share["role"] == "viewer"
    assert share["api_path"] == "papers"
    assert share["grantee"]["id"] == MARIE
    status, updated = await api(f"shares/{share['id']}", "PATCH", {"role": "editor"})
    assert status == 200, updated
    assert updated["role"] == "editor"
    status, body = await api("shares/outgoing", path="papers")
    assert [s["role"] for s in body["shares"]] == ["editor"]
    status, _ = await api(f"shares/{share['id']}", "DELETE")
    assert status == 204
    status, body = await api("shares/outgoing", path="papers")
    assert body["shares"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"grantee_type": "user", "grantee_id": MARIE}, 400),  # no path
        ({"path": "papers", "grantee_type": "robot", "grantee_id": MARIE}, 400),
        ({"path": "papers", "grantee_type": "user"}, 400),
        ({"path": "papers", "grantee_type": "user", "grantee_id": MARIE, "role": "owner"}, 400),
        ({"path": "no-such-dir", "grantee_type": "user", "grantee_id": MARIE}, 404),
        ({"path": "../etc", "grantee_type": "user", "grantee_id": MARIE}, 400),
    ],
)
async def test_share_create_errors(api: Any, body: dict[str, Any], status: int) -> None:
    code, answer = await api("shares", "POST", body)
    assert code == status, answer
    assert answer["message"]
    assert "Traceback" not in answer["message"]


async def test_share_bad_json(api: Any, jp_fetch: Any) -> None:
    response = await jp_fetch("api", "cs3sync", "shares", method="POST", body="{nope", raise_error=False)
    assert response.code == 400


async def test_links(api: Any) -> None:
    status, body = await api("links")
    assert status == 200
    names = [link["name"] for link in body["links"]]
    assert "papers" in names
    expiry = int(time.time()) + 7 * 86400
    request = {"path": "data.csv", "password": "s3cret!", "expiration": expiry}
    status, link = await api("links", "POST", request)
    assert status == 201, link
    assert link["password_protected"] is True
    assert link["api_path"] == "data.csv"
    assert link["token"]
    assert isinstance(link["expiration"], (int, float))
    status, updated = await api(f"links/{link['id']}", "PATCH", {"display_name": "for the lab"})
    assert status == 200, updated
    status, body = await api("links", path="data.csv")
    assert [x["id"] for x in body["links"]] == [link["id"]]
    status, _ = await api(f"links/{link['id']}", "DELETE")
    assert status == 204
    status, body = await api("links", path="data.csv")
    assert body["links"] == []
    status, body = await api("links", "POST", {"path": "data.csv", "expiration": 1})
    assert status == 400


async def test_users_and_groups(api: Any) -> None:
    status, body = await api("users", q="mar")
    assert status == 200
    marie = [u for u in body["users"] if u["username"] == "marie"]
    assert marie and marie[0]["id"] == MARIE and marie[0]["display_name"] == "Marie Curie"
    status, body = await api("groups", q="physics")
    assert status == 200
    assert any(g["name"] == "physics-lovers" for g in body["groups"])
    for endpoint in ("users", "groups"):
        status, body = await api(endpoint, q="m")
        assert status == 400
        assert "2 characters" in body["message"]


async def test_quota(api: Any) -> None:
    status, body = await api("quota", path="")
    assert status == 200
    assert isinstance(body["used"], int)
    assert isinstance(body["total"], int)
    assert body["unlimited"] is (body["total"] == 0)
    status, inside = await api("quota", path="papers")
    assert status == 200
    assert inside["total"] == body["total"]
    status, _ = await api("quota", path="no/such/dir")
    assert status in (200, 404)
    status, body = await api("quota", path="../up")
    assert status == 400


async def test_journal_and_actions(api: Any, jp_fetch: Any) -> None:
    status, body = await api("journal")
    assert status == 200, body
    assert body["state"] in ("online", "offline", "auth")
    assert isinstance(body["pending"], int)
    assert isinstance(body["counts"], dict)
    assert isinstance(body["entries"], list)
    status, body = await api("journal/999999/retry", "POST")
    assert status == 404, body
    status, body = await api("journal/999999/discard", "POST")
    assert status == 404, body
    status, body = await api("journal/abc/retry", "POST")
    assert status == 404


async def test_unknown_share_and_link(api: Any) -> None:
    status, body = await api("shares/does-not-exist", "DELETE")
    assert status in (404, 400), body
    status, body = await api("links/does-not-exist", "PATCH", {"display_name": "x"})
    assert status in (404, 400), body
    status, body = await api("shares/does-not-exist", "PATCH", {})
    assert status == 400


async def test_outage_is_503(api: Any, demo_emulator: Any) -> None:
    demo_emulator.call(demo_emulator.faults.outage)
    try:
        for endpoint in ("spaces", "shares/incoming", "links"):
            status, body = await api(endpoint)
            assert status in (503, 504), (endpoint, status, body)
            assert body["message"]
        status, body = await api("users", q="marie")
        assert status in (503, 504)
    finally:
        demo_emulator.call(demo_emulator.faults.restart)


async def test_group_share(api: Any) -> None:
    status, body = await api("groups", q="physics")
    group = next(g for g in body["groups"] if g["name"] == "physics-lovers")
    request = {"path": "papers", "grantee_type": "group", "grantee_id": group["id"], "role": "viewer"}
    status, share = await api("shares", "POST", request)
    assert status == 201, share
    assert share["grantee"]["type"] == "group"
    assert share["grantee"]["display_name"] in (group["display_name"], group["name"])
    status, _ = await api(f"shares/{share['id']}", "DELETE")
    assert status == 204
