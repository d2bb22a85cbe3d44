from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from cs3sync.emulator import Emulator, EmulatorConfig, EmulatorThread
from cs3sync.emulator.demo import DEMO_PROJECTS, seed

from .helpers import Gateway

pytestmark = pytest.mark.anyio


def test_thread_call_runs_async_hooks(emulator_thread: EmulatorThread) -> None:
    token = emulator_thread.auth.token("einstein")
    home = emulator_thread.home("einstein")
    emulator_thread.storage.ensure_home(emulator_thread.config.user("einstein"))
    with grpc.insecure_channel(emulator_thread.grpc_address) as channel:
        from cs3.gateway.v1beta1 import gateway_api_pb2_grpc

        stub = gateway_api_pb2_grpc.GatewayAPIStub(channel)
        request = sp.StatRequest(ref=res.Reference(path=home))
        assert stub.Stat(request, metadata=[("x-access-token", token)], timeout=10).status.code == 1
        emulator_thread.call(emulator_thread.faults.outage)
        with pytest.raises(grpc.RpcError):
            stub.Stat(request, metadata=[("x-access-token", token)], timeout=1)
        emulator_thread.call(emulator_thread.faults.restart)
        reply = stub.Stat(request, metadata=[("x-access-token", token)], timeout=10, wait_for_ready=True)
        assert reply.status.code == 1


async def test_demo_seed(tmp_path: Path, profile: str) -> None:
    config = EmulatorConfig(root=tmp_path / "demo", profile=profile, projects=dict(DEMO_PROJECTS))
    async with Emulator(config) as emu:
        seed(emu)
        seed(emu)  # idempotent
        marie = await Gateway(emu, "marie").login()
        from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab

        received = await marie.call("ListExistingReceivedShares", collab.ListReceivedSharesRequest())
        paths = sorted(i.resource_info.path for i in received.share_infos)
        assert paths == [f"{emu.home('einstein')}/data.csv", f"{emu.home('einstein')}/shared-with-marie"]
        outgoing = await marie.call("ListShares", collab.ListSharesRequest())
        assert len(outgoing.shares) == 1
        notebook = emu.storage.read(f"{emu.home('einstein')}/welcome.ipynb")
        assert b"data.csv" in notebook and b"pandas" not in notebook
        from cs3.storage.provider.v1beta1 import spaces_api_pb2

        spaces = await marie.call("ListStorageSpaces", spaces_api_pb2.ListStorageSpacesRequest())
        assert sorted(s.name for s in spaces.storage_spaces if s.space_type == "project") == sorted(
            DEMO_PROJECTS
        )
        await marie.close()
