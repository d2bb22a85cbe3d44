"""Lock semantics modelled on cs3org/wopiserver's test/test_storageiface.py, per profile."""

from __future__ import annotations

import asyncio

import pytest
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from cs3sync.emulator import Emulator

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio
OK = code_pb2.CODE_OK
FP = code_pb2.CODE_FAILED_PRECONDITION


def lock(emu: Emulator, lock_id: str, app: str = "wopi", ttl: int = 60) -> res.Lock:
    return res.Lock(
        lock_id=lock_id,
        app_name=app,
        type=res.LOCK_TYPE_WRITE,
        expiration=types_pb2.Timestamp(seconds=int(emu.clock.now() + ttl)),
    )


async def set_lock(gw: Gateway, path: str, lk: res.Lock) -> int:
    return (await gw.call("SetLock", sp.SetLockRequest(ref=ref(path), lock=lk))).status.code


async def get_lock(gw: Gateway, path: str) -> sp.GetLockResponse:
    return await gw.call("GetLock", sp.GetLockRequest(ref=ref(path)))


async def refresh(gw: Gateway, path: str, lk: res.Lock, existing: str = "") -> int:
    return (
        await gw.call("RefreshLock", sp.RefreshLockRequest(ref=ref(path), lock=lk, existing_lock_id=existing))
    ).status.code


async def unlock(gw: Gateway, path: str, lk: res.Lock) -> int:
    return (await gw.call("Unlock", sp.UnlockRequest(ref=ref(path), lock=lk))).status.code


async def locked_write(gw: Gateway, path: str, data: bytes, app: str | None, lock_id: str = "") -> int:
    headers = {"X-Lock-Holder": app} if app else {}
    if lock_id:
        headers["X-Lock-Id"] = lock_id
    reply = await gw.initiate_upload(path, len(data), lock_id=lock_id)
    if reply.status.code != OK:
        return -reply.status.code
    return (await gw.put(gw.protocol(reply), data, headers)).status_code


async def test_lock_lifecycle(emulator: Emulator, gw: Gateway) -> None:
    eos = emulator.config.profile == "cernbox"
    path = gw.p("locked.txt")
    await gw.upload(path, b"base")
    etag = (await gw.stat(path)).info.etag
    assert await set_lock(gw, path, lock(emulator, "id1")) == OK
    assert (await gw.stat(path)).info.etag == etag  # locks do not change the etag
    got = await get_lock(gw, path)
    assert got.status.code == OK and got.lock.lock_id == "id1" and got.lock.app_name == "wopi"
    assert (await gw.stat(path)).info.lock.lock_id == "id1"
    # a second SetLock by another app fails
    assert await set_lock(gw, path, lock(emulator, "id2", app="other")) == FP
    if eos:
        # writes: the matching holder works; a mismatch or no lock context fails with a bare 500
        # (EOS EBUSY is unmapped: storage behaviours row 2)
        assert await locked_write(gw, path, b"mine", "wopi") == 200
        assert await locked_write(gw, path, b"theirs", "other") == 500
        assert await locked_write(gw, path, b"none", None) == 500
    else:
        assert await locked_write(gw, path, b"mine", "wopi", "id1") == 200
        assert await locked_write(gw, path, b"none", None) == -code_pb2.CODE_LOCKED
        assert await locked_write(gw, path, b"wrong", "wopi", "nope") == -code_pb2.CODE_ABORTED
    assert emulator.storage.read(path) == b"mine"
    # refresh with existing_lock_id swaps the id
    assert await refresh(gw, path, lock(emulator, "id3"), existing="id1") == OK
    assert (await get_lock(gw, path)).lock.lock_id == "id3"
    # a rename with the lock succeeds
    lock_id = "id3" if not eos else ""
    moved = await gw.call(
        "Move", sp.MoveRequest(source=ref(path), destination=ref(gw.p("renamed.txt")), lock_id=lock_id)
    )
    assert moved.status.code == OK
    path = gw.p("renamed.txt")
    assert (await get_lock(gw, path)).lock.lock_id == "id3"
    # after expiry: GetLock finds nothing, SetLock works again, Refresh and Unlock fail
    emulator.clock.advance(120)
    assert (await get_lock(gw, path)).status.code == code_pb2.CODE_NOT_FOUND
    assert (await get_lock(gw, path)).status.message == "reference or lock not found"
    assert await locked_write(gw, path, b"free", None) == 200
    assert await set_lock(gw, path, lock(emulator, "id4")) == OK
    emulator.clock.advance(120)
    assert await refresh(gw, path, lock(emulator, "id5")) == FP
    assert await unlock(gw, path, lock(emulator, "id4")) == (FP if eos else code_pb2.CODE_ABORTED)


async def test_refresh_without_existing_id(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("r.txt")
    await gw.upload(path, b"r")
    assert await set_lock(gw, path, lock(emulator, "a")) == OK
    code = await refresh(gw, path, lock(emulator, "b"))
    if emulator.config.profile == "cernbox":
        assert code == OK and (await get_lock(gw, path)).lock.lock_id == "b"  # silently replaced (EOS)
    else:
        assert code == code_pb2.CODE_ABORTED
    assert await refresh(gw, path, lock(emulator, "c", app="intruder"), existing="b") in (
        FP,
        code_pb2.CODE_ABORTED,
    )


async def test_unlock_rules(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("u.txt")
    await gw.upload(path, b"u")
    eos = emulator.config.profile == "cernbox"
    assert await unlock(gw, path, lock(emulator, "x")) == (FP if eos else code_pb2.CODE_ABORTED)
    assert await set_lock(gw, path, lock(emulator, "x")) == OK
    assert await unlock(gw, path, lock(emulator, "y")) == (FP if eos else code_pb2.CODE_LOCKED)
    assert await unlock(gw, path, lock(emulator, "x")) == OK
    assert (await get_lock(gw, path)).status.code == code_pb2.CODE_NOT_FOUND


async def test_lock_ops_on_missing_file(emulator: Emulator, gw: Gateway) -> None:
    expected = code_pb2.CODE_INTERNAL if emulator.config.profile == "cernbox" else code_pb2.CODE_NOT_FOUND
    assert await set_lock(gw, gw.p("ghost"), lock(emulator, "g")) == expected
    assert (await get_lock(gw, gw.p("ghost"))).status.code == expected


async def test_shared_lock_type(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("s.txt"), b"s")
    shared = lock(emulator, "s")
    shared.type = res.LOCK_TYPE_SHARED
    expected = code_pb2.CODE_INTERNAL if emulator.config.profile == "cernbox" else OK
    assert await set_lock(gw, gw.p("s.txt"), shared) == expected


async def test_set_lock_race_is_atomic(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("race.txt")
    await gw.upload(path, b"race")
    codes = await asyncio.gather(
        *(set_lock(gw, path, lock(emulator, f"id{i}", app=f"app{i}")) for i in range(12))
    )
    assert codes.count(OK) == 1 and codes.count(FP) == 11


async def test_foreign_lock_hook(emulator: Emulator, gw: Gateway) -> None:
    path = gw.p("f.txt")
    await gw.upload(path, b"f")
    emulator.storage.lock(path, app="other-app", lock_id="theirs", user="marie")
    got = await get_lock(gw, path)
    assert (
        got.lock.app_name == "other-app" and got.lock.user.opaque_id == "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c"
    )
    if emulator.config.profile == "cernbox":
        assert await locked_write(gw, path, b"mine", "other-app") == 500  # right app, wrong user
    else:
        assert await locked_write(gw, path, b"mine", None) == -code_pb2.CODE_LOCKED
