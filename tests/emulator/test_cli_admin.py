"""The emulator as a subprocess (`python -m cs3sync emulator --demo`), driven over the admin API."""

from __future__ import annotations

import base64
import configparser
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from cs3sync.cli import main
from cs3sync.emulator.admin import ADMIN_HEADER
from cs3sync.emulator.cli import ADMIN_SECRET_ENV

ADMIN_SECRET = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("served") / "root"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cs3sync", "emulator", "--root", str(root), "--demo", "--profile", "cernbox"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", ADMIN_SECRET_ENV: ADMIN_SECRET},
    )
    assert proc.stdout is not None
    info: dict[str, str] = {"root": str(root)}
    for _ in range(3):
        key, _, value = proc.stdout.readline().strip().partition(": ")
        info[key] = value
    try:
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_cs3client_lists_demo_home(served: dict[str, str]) -> None:
    from cs3client.auth import Auth
    from cs3client.cs3client import CS3Client
    from cs3client.cs3resource import Resource

    config = configparser.ConfigParser()
    config["c"] = {"host": served["grpc"], "auth_client_id": "einstein", "auth_client_secret": "relativity"}
    client = CS3Client(config, "c", logging.getLogger("t"))
    token = Auth(client).get_token()
    names = {
        i.name
        for i in client.file.list_dir(token, Resource.from_file_ref_and_endpoint("/eos/user/e/einstein"))
    }
    assert {"welcome.ipynb", "data.csv", "papers", "shared-with-marie"} <= names
    client.channel.close()


def test_admin_api(served: dict[str, str]) -> None:
    admin = httpx.Client(
        base_url=served["http"] + "/_admin", timeout=10, headers={ADMIN_HEADER: ADMIN_SECRET}
    )
    info = admin.get("/info").json()
    assert info["homes"]["einstein"] == "/eos/user/e/einstein" and info["profile"] == "cernbox"
    token = admin.post("/auth/token", json={"user": "einstein"}).json()["token"]
    from cs3.gateway.v1beta1 import gateway_api_pb2_grpc

    with grpc.insecure_channel(served["grpc"]) as channel:
        stub = gateway_api_pb2_grpc.GatewayAPIStub(channel)
        md = [("x-access-token", token)]
        stat = sp.StatRequest(ref=res.Reference(path="/eos/user/e/einstein/data.csv"))
        rule = admin.post(
            "/faults", json={"kind": "grpc", "match": "Stat", "action": {"type": "unavailable"}, "times": 1}
        )
        assert rule.status_code == 200 and rule.json()["id"] >= 1
        with pytest.raises(grpc.RpcError) as err:
            stub.Stat(stat, metadata=md, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        before = stub.Stat(stat, metadata=md, timeout=10).info
        assert (
            admin.post("/storage/external_write", json={"path": stat.ref.path, "data": "a,b\n"}).status_code
            == 200
        )
        after = stub.Stat(stat, metadata=md, timeout=10).info
        assert after.etag != before.etag and after.size == 4
        read = admin.post("/storage/read", json={"path": stat.ref.path}).json()
        assert base64.b64decode(read["data_b64"]) == b"a,b\n"
        assert admin.post("/storage/read", json={"path": stat.ref.path + ".missing"}).status_code == 404
        moved = stat.ref.path + ".renamed"
        assert (
            admin.post("/storage/external_move", json={"path": stat.ref.path, "to": moved}).status_code == 200
        )
        assert (
            stub.Stat(sp.StatRequest(ref=res.Reference(path=moved)), metadata=md, timeout=10).info.id
            == after.id
        )
        admin.post("/storage/external_move", json={"path": moved, "to": stat.ref.path})
        admin.post("/storage/lock", json={"path": stat.ref.path, "app": "other", "user": "marie"})
        assert stub.GetLock(sp.GetLockRequest(ref=stat.ref), metadata=md, timeout=10).lock.app_name == "other"
        assert admin.post("/clock/advance", json={"seconds": 7200}).json()["now"] > 0
        assert stub.GetLock(sp.GetLockRequest(ref=stat.ref), metadata=md, timeout=10).status.code == 6
        admin.post("/auth/expire_all")
        with pytest.raises(grpc.RpcError) as err:
            stub.Stat(stat, metadata=md, timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    calls = admin.get("/calls").json()["calls"]
    assert calls[-1]["method"] == "Stat" and calls[-1]["metadata"]["x-access-token"] == "<redacted>"
    http_rule = {"kind": "http", "match": "PUT", "action": {"type": "drop_after", "bytes": 10}}
    assert admin.post("/faults", json=http_rule).status_code == 200
    assert any(r["kind"] == "http" for r in admin.get("/faults").json()["rules"])
    assert admin.post("/faults/clear").json() == {"ok": True}
    assert (
        admin.post("/faults", json={"kind": "nope", "match": "x", "action": {"type": "hang"}}).status_code
        == 400
    )
    assert admin.post("/grpc/outage").status_code == 200
    assert admin.post("/grpc/restart").status_code == 200
    assert admin.post("/storage/fail_next_write", json={"errno": "ENOSPC"}).status_code == 200


def test_cli_requires_root(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator"])
    assert "--root" in capsys.readouterr().err


def test_cli_lists_subcommands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "emulator" in capsys.readouterr().out


def test_admin_shares(served: dict[str, str]) -> None:
    """A browser test's "marie shares a folder with einstein": made and removed through the admin API."""
    from cs3.gateway.v1beta1 import gateway_api_pb2_grpc
    from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab

    admin = httpx.Client(
        base_url=served["http"] + "/_admin", timeout=10, headers={ADMIN_HEADER: ADMIN_SECRET}
    )
    folder = admin.get("/info").json()["homes"]["marie"] + "/radioactivity"
    assert admin.post("/storage/external_mkdir", json={"path": folder}).status_code == 200
    body = {"owner": "marie", "grantee": "einstein", "path": folder, "editor": True}
    share_id = admin.post("/shares/create", json=body).json()["id"]
    token = admin.post("/auth/token", json={"user": "einstein"}).json()["token"]

    def received() -> set[str]:
        with grpc.insecure_channel(served["grpc"]) as channel:
            stub = gateway_api_pb2_grpc.GatewayAPIStub(channel)
            answer = stub.ListReceivedShares(
                collab.ListReceivedSharesRequest(), metadata=[("x-access-token", token)], timeout=10
            )
        return {rs.share.id.opaque_id for rs in answer.shares}

    assert share_id in received()
    assert admin.post("/shares/remove", json={"owner": "marie", "id": share_id}).json() == {"ok": True}
    assert share_id not in received()
    # Bad input: an unknown person, a share that is not there.
    assert admin.post("/shares/create", json={**body, "grantee": "nobody"}).status_code == 400
    assert admin.post("/shares/remove", json={"owner": "marie", "id": share_id}).status_code == 400
