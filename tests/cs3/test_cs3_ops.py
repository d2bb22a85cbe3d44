"""Every client operation against the emulator, in both profiles (cernbox = EOS/master, ocis = edge)."""

from __future__ import annotations

from typing import Any

import pytest

from cs3sync.cs3 import CS3Client, errors, types
from cs3sync.cs3.types import FileId, Grantee, LockContext

pytestmark = pytest.mark.anyio


def rpcs(emu: Any, since: int = 0) -> list[str]:
    return [call.method for call in emu.calls[since:]]


async def http(emu: Any, since: int = 0) -> list[tuple[str, int]]:
    """The data-plane log since ``since``, once the server has finished every request (a record is
    written when its handler returns, which can be after the client has seen the reply)."""
    await emu.wait_http_idle()
    return [(rec.method, rec.status) for rec in emu.http_log[since:]]


async def test_identity(client: CS3Client, emu: Any) -> None:
    me = await client.whoami()
    assert me.username == "einstein" and me.opaque_id and me.display_name == "Albert Einstein"
    assert await client.home() == emu.home("einstein")
    # WhoAmI carries the token in the request too, and every call carries it as metadata
    whoami = next(c for c in emu.calls if c.method == "WhoAmI")
    assert whoami.request.token and whoami.metadata["x-access-token"] == whoami.request.token


async def test_namespace_ops(client: CS3Client, emu: Any, home: str) -> None:
    await client.mkdir(f"{home}/dir")
    await client.touch(f"{home}/dir/empty.txt")
    info = await client.stat(f"{home}/dir/empty.txt")
    assert info.type == "file" and info.size == 0 and info.name == "empty.txt" and info.etag.startswith('"')
    assert info.file_id and info.writable

    mark = len(emu.calls)
    listing = await client.list(f"{home}/dir")
    assert rpcs(emu, mark) == ["ListContainer"]  # a listing is exactly one RPC
    assert [i.name for i in listing] == ["empty.txt"]

    # by id, too: with its place in the namespace even where the storage answers a relative path (oCIS,
    # storage behaviours row 3), resolved with the gateway's GetPath
    mark = len(emu.calls)
    by_id = await client.stat(info.file_id)
    assert by_id.file_id == info.file_id
    assert by_id.path == f"{home}/dir/empty.txt" and by_id.name == "empty.txt"
    relative = emu.config.info_paths == "basename"
    assert rpcs(emu, mark) == (["Stat", "GetPath"] if relative else ["Stat"])

    await client.move(f"{home}/dir/empty.txt", f"{home}/dir/renamed.txt")
    moved = await client.stat(f"{home}/dir/renamed.txt")
    assert moved.file_id == info.file_id  # ids survive a rename (EOS inodes, decomposedfs nodes)
    assert await client.stat_or_none(f"{home}/dir/empty.txt") is None

    await client.delete(f"{home}/dir/renamed.txt")
    with pytest.raises(errors.NotFound):
        await client.stat(f"{home}/dir/renamed.txt")
    with pytest.raises(errors.NotFound):
        await client.list(f"{home}/missing")
    with pytest.raises(errors.NotFound):
        await client.delete(f"{home}/missing")
    with pytest.raises(errors.AlreadyExists):
        await client.mkdir(f"{home}/dir")
    assert await client.exists(f"{home}/dir")
    assert not await client.exists(f"{home}/nope")


async def test_upload_download_roundtrip_counts(client: CS3Client, emu: Any, home: str) -> None:
    await client.login()
    path = f"{home}/a.ipynb"
    data = '{"cells": [], "é": "ü"}'.encode()
    mark, hmark = len(emu.calls), len(emu.http_log)
    info = await client.upload(path, data)
    # a steady upload: InitiateFileUpload + one PUT + one Stat
    assert rpcs(emu, mark) == ["InitiateFileUpload", "Stat"]
    assert (await http(emu, hmark)) == [("PUT", 200)]
    await emu.wait_http_idle()
    put = emu.http_log[hmark]
    assert put.headers["Upload-Length"] == str(len(data)) and put.headers["Content-Length"] == str(len(data))
    assert "X-Lock-Holder" not in put.headers and "X-Lock-Id" not in put.headers  # no lock held
    algo = "sha1:" if emu.config.checksum_type == "sha1" else "adler32:"  # oCIS: SHA1 (row 3)
    assert info.size == len(data) and info.checksum and info.checksum.startswith(algo)

    assert await client.read_bytes(path) == data
    async with client.download(path) as stream:
        assert stream.info.etag == info.etag and stream.size == len(data)
        chunks = [c async for c in stream]
    assert b"".join(chunks) == data

    # overwrite with the etag precondition, from a file on disk
    src = emu.config.root.parent / "src.bin"
    src.write_bytes(b"second version")
    info2 = await client.upload(path, src, if_match=info.etag)
    assert info2.etag != info.etag and await client.read_bytes(path) == b"second version"
    assert info2.file_id == info.file_id


async def test_zero_length_upload(client: CS3Client, home: str) -> None:
    info = await client.upload(f"{home}/empty", b"")
    assert info.size == 0 and await client.read_bytes(f"{home}/empty") == b""


async def test_preconditions_checked_by_us(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/p.txt"
    first = await client.upload(path, b"one")
    emu.storage.external_write(path, b"someone else")
    with pytest.raises(errors.PreconditionFailed):
        await client.upload(path, b"mine", if_match=first.etag)
    with pytest.raises(errors.AlreadyExists):
        await client.upload(path, b"mine", if_not_exist=True)
    assert await client.read_bytes(path) == b"someone else"  # untouched
    with pytest.raises(errors.PreconditionFailed):
        await client.upload(f"{home}/gone.txt", b"x", if_match='"nope"')


@pytest.mark.emu(conditional_upload="honour")
async def test_if_match_sent_to_the_server(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/q.txt"
    first = await client.upload(path, b"one")
    emu.storage.external_write(path, b"two")
    mark = len(emu.calls)
    with pytest.raises(errors.PreconditionFailed):
        await client.upload(path, b"mine", if_match=first.etag, precheck=False)
    initiate = next(c for c in emu.calls[mark:] if c.method == "InitiateFileUpload")
    assert initiate.request.if_match == first.etag


async def test_upload_to_missing_parent_and_directory(client: CS3Client, home: str) -> None:
    with pytest.raises(errors.NotFound):
        await client.upload(f"{home}/no/such/dir/x", b"x")
    await client.mkdir(f"{home}/d")
    with pytest.raises((errors.PreconditionFailed, errors.InvalidArgument)):
        await client.upload(f"{home}/d", b"x")
    with pytest.raises(errors.NotFound):
        async with client.download(f"{home}/nothing") as stream:
            await stream.read()


@pytest.mark.emu(upload_protocols=["simple", "tus"])
@pytest.mark.client(tus_threshold=1024, upload_chunk_size=1024 * 1024)
async def test_tus_upload_reports_offsets(client: CS3Client, emu: Any, home: str) -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB, not a multiple of the chunk size
    seen: list[tuple[str, int]] = []

    async def record(session: types.UploadSession) -> None:
        seen.append((session.protocol, session.offset))

    hmark = len(emu.http_log)
    info = await client.upload(f"{home}/big.bin", data, on_session=record)
    assert info.size == len(data)
    assert seen[0] == ("tus", 0)
    assert [o for _, o in seen] == sorted(o for _, o in seen) and seen[-1][1] == len(data)
    assert [m for m, _ in (await http(emu, hmark))] == ["PATCH"] * 4
    assert await client.read_bytes(f"{home}/big.bin") == data


@pytest.mark.emu(upload_protocols=["simple", "tus"])
@pytest.mark.client(tus_threshold=1024, upload_chunk_size=1024 * 1024)
async def test_tus_resume_from_recorded_session(client: CS3Client, emu: Any, home: str) -> None:
    from cs3sync.emulator import DropAfter

    data = b"z" * (3 * 1024 * 1024)
    sessions: list[types.UploadSession] = []

    async def record(session: types.UploadSession) -> None:
        sessions.append(types.UploadSession(**vars(session)))

    # The process "dies" during the second PATCH: every try fails with the transfer dropped.
    emu.faults.http("PATCH", DropAfter(0), after=1, times=None)
    with pytest.raises(errors.Transient):
        await client.upload(f"{home}/resumed.bin", data, on_session=record)
    emu.faults.clear()
    recorded = max(sessions, key=lambda s: s.offset)
    assert recorded.offset >= 1024 * 1024

    mark, hmark = len(emu.calls), len(emu.http_log)
    info = await client.upload(f"{home}/resumed.bin", data, session=recorded, on_session=record)
    assert info.size == len(data)
    assert "InitiateFileUpload" not in rpcs(emu, mark)  # resumed, not restarted
    assert (await http(emu, hmark))[0][0] == "HEAD"
    assert await client.read_bytes(f"{home}/resumed.bin") == data


async def test_versions(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/v.txt"
    await client.upload(path, b"v1")
    await client.upload(path, b"v2-longer")
    await client.upload(path, b"v3")
    versions = await client.list_versions(path)
    assert len(versions) >= 2
    assert sorted(v.size for v in versions[:2]) == [2, 9]
    by_size = {v.size: v for v in versions}
    assert await client.read_bytes(path, version_key=by_size[9].key) == b"v2-longer"
    await client.restore_version(path, by_size[9].key)
    assert await client.read_bytes(path) == b"v2-longer"
    assert await client.list_versions(f"{home}") == []


@pytest.mark.client(version_ref_style="resource_id")
async def test_version_download_by_resource_id(client: CS3Client, home: str) -> None:
    path = f"{home}/r.txt"
    await client.upload(path, b"old bytes")
    await client.upload(path, b"new")
    (old,) = [v for v in await client.list_versions(path) if v.size == 9]
    assert await client.read_bytes(path, version_key=old.key) == b"old bytes"
    assert await client.read_bytes(path) == b"new"


async def test_metadata(client: CS3Client, home: str) -> None:
    path = f"{home}/m.txt"
    await client.upload(path, b"x")
    await client.set_metadata(path, {"color": "blue", "size": "L"})
    info = await client.stat(path, metadata_keys=["color", "size"])
    assert info.metadata["color"] == "blue" and info.metadata["size"] == "L"
    await client.unset_metadata(path, ["color"])
    info = await client.stat(path, metadata_keys=["color", "size"])
    assert "color" not in info.metadata and info.metadata["size"] == "L"
    with pytest.raises(errors.InvalidArgument):
        await client.set_metadata(path, {"k": ""})


@pytest.mark.emu(projects={"physics-data": "physics-data"})
async def test_quota_and_spaces(client: CS3Client, emu: Any, home: str) -> None:
    await client.upload(f"{home}/q.bin", b"x" * 1000)
    quota = await client.quota()
    assert quota.used >= 1000 and quota.total >= 0
    emu.storage.set_quota(5000)
    quota = await client.quota()
    assert quota.total == 5000 and not quota.unlimited
    spaces = await client.spaces()
    personal = [s for s in spaces if s.type == "personal"]
    assert personal and personal[0].path == home
    # Storage behaviours row 8: on CERNBox the personal space comes without root or mtime, and every
    # project again as an "explorer" space, twice; the client answers each folder once, by its own type.
    assert [s.type for s in spaces] == ["personal", "project"]
    assert len({s.path for s in spaces}) == len(spaces)
    if emu.config.spaces_registry == "reva_master":
        assert personal[0].root_id is None and personal[0].mtime is None
    else:
        assert personal[0].root_id
    assert [s.type for s in await client.spaces("personal")] == ["personal"]
    assert [s.type for s in await client.spaces("project")] == ["project"]


async def test_quota_exceeded(client: CS3Client, emu: Any, home: str) -> None:
    emu.storage.set_quota(100, 0)
    with pytest.raises(errors.QuotaExceeded):
        await client.upload(f"{home}/too-big", b"x" * 1000)


# --- locks ----------------------------------------------------------------------------------------


async def test_locks_own(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/doc.ipynb"
    await client.upload(path, b"{}")
    assert await client.get_lock(path) is None
    lock_id = client.new_lock_id()
    held = await client.set_lock(path, lock_id, app_name="jupyter-rtc-einstein")
    assert held.lock_id == lock_id
    got = await client.get_lock(path)
    assert got is not None and got.lock_id == lock_id and got.app_name == "jupyter-rtc-einstein"
    assert (await client.stat(path)).lock is not None

    # a write with our lock context succeeds and carries the lock headers
    ctx = LockContext(lock_id, "jupyter-rtc-einstein")
    hmark = len(emu.http_log)
    await client.upload(path, b'{"a": 1}', lock=ctx)
    await emu.wait_http_idle()
    put = emu.http_log[hmark]
    assert put.headers["X-Lock-Holder"] == "jupyter-rtc-einstein" and put.headers["X-Lock-Id"] == lock_id

    new_id = client.new_lock_id()
    await client.refresh_lock(path, new_id, existing_lock_id=lock_id, app_name="jupyter-rtc-einstein")
    got = await client.get_lock(path)
    assert got is not None and got.lock_id == new_id
    await client.unlock(path, new_id, app_name="jupyter-rtc-einstein")
    assert await client.get_lock(path) is None


async def test_foreign_lock_is_locked_with_holder(client: CS3Client, emu: Any, home: str) -> None:
    path = f"{home}/busy.ipynb"
    await client.upload(path, b"{}")
    emu.storage.lock(path, app="OnlyOffice", lock_id="their-id", user="marie")
    got = await client.get_lock(path)
    assert got is not None and got.holder == "OnlyOffice"
    with pytest.raises(errors.Locked) as exc:
        await client.set_lock(path, client.new_lock_id())
    assert exc.value.holder == "OnlyOffice"
    with pytest.raises(errors.Locked):
        await client.refresh_lock(path, client.new_lock_id())
    with pytest.raises(errors.Locked):
        await client.unlock(path, "our-id")
    with pytest.raises(errors.Locked) as exc:
        await client.upload(path, b"overwrite")  # 409 (EOS holder check) or LOCKED (decomposedfs)
    assert exc.value.holder == "OnlyOffice"
    assert await client.read_bytes(path) == b"{}"
    # an expired lock is no lock
    emu.clock.advance(7200)
    assert await client.get_lock(path) is None
    await client.upload(path, b"now mine")


async def test_lock_ops_on_missing_file_are_not_found(client: CS3Client, home: str) -> None:
    # EOS answers INTERNAL here, decomposedfs NOT_FOUND: both are NotFound for us.
    with pytest.raises(errors.NotFound):
        await client.set_lock(f"{home}/missing", client.new_lock_id())
    with pytest.raises(errors.NotFound):
        await client.get_lock(f"{home}/missing")


@pytest.mark.client(lock_as_attr=True)
async def test_lock_as_attr_detects_conflicts(make_client: Any, home: str) -> None:
    a = make_client(lock_app_name="app-a")
    b = make_client(lock_app_name="app-b")
    path = f"{home}/attr.ipynb"
    await a.upload(path, b"{}")
    lock_id = a.new_lock_id()
    await a.set_lock(path, lock_id)
    got = await b.get_lock(path)
    assert got is not None and got.app_name == "app-a"
    with pytest.raises(errors.Locked) as exc:
        await b.set_lock(path, b.new_lock_id())
    assert exc.value.holder == "app-a"
    with pytest.raises(errors.Locked):
        await b.upload(path, b"x", lock=LockContext("b-id", "app-b"))
    with pytest.raises(errors.Locked):
        await b.unlock(path, "b-id")
    await a.upload(path, b"mine", lock=LockContext(lock_id, "app-a"))
    await a.refresh_lock(path, lock_id)
    await a.unlock(path, lock_id)
    await b.set_lock(path, b.new_lock_id())


@pytest.mark.client(lock_not_impl=True)
async def test_lock_not_impl(client: CS3Client, home: str) -> None:
    await client.upload(f"{home}/x", b"x")
    await client.set_lock(f"{home}/x", "id")
    assert await client.get_lock(f"{home}/x") is None
    await client.unlock(f"{home}/x", "id")


# --- shares, links, users ---------------------------------------------------------------------------


async def test_shares(make_client: Any, emu: Any) -> None:
    einstein = make_client("einstein")
    marie = make_client("marie")
    home = await einstein.home()
    await einstein.mkdir(f"{home}/shared")
    await einstein.upload(f"{home}/shared/n.ipynb", b"{}")
    marie_user = await marie.whoami()
    share = await einstein.create_share(
        f"{home}/shared", Grantee("user", marie_user.opaque_id, marie_user.idp), types.VIEWER
    )
    assert share.id and share.grantee.opaque_id == marie_user.opaque_id
    outgoing = await einstein.list_outgoing_shares()
    assert [s.id for s in outgoing] == [share.id] and outgoing[0].resource is not None
    assert [s.id for s in await einstein.list_outgoing_shares(f"{home}/shared")] == [share.id]

    incoming = await marie.list_incoming_shares()
    assert [r.id for r in incoming] == [share.id]
    assert incoming[0].state in ("accepted", "pending")
    accepted = await marie.update_received_share(share.id, state="accepted")
    assert accepted.state == "accepted"
    # the grantee can read by resource id
    assert (await marie.stat(incoming[0].share.resource_id)).name == "shared"

    updated = await einstein.update_share(share.id, permissions=types.EDITOR)
    assert "initiate_file_upload" in updated.permissions
    await einstein.remove_share(share.id)
    assert await einstein.list_outgoing_shares() == []


async def test_share_listing_survives_a_broken_share(make_client: Any, emu: Any) -> None:
    einstein = make_client("einstein")
    marie = make_client("marie")
    home = await einstein.home()
    me = await marie.whoami()
    grantee = Grantee("user", me.opaque_id, me.idp)
    for name in ("ok", "broken"):
        await einstein.mkdir(f"{home}/{name}")
        await einstein.create_share(f"{home}/{name}", grantee)
    emu.storage.external_delete(f"{home}/broken")
    mark = len(emu.calls)
    outgoing = await einstein.list_outgoing_shares()
    assert "ListShares" in rpcs(emu, mark)  # ListExistingShares failed as a whole -> fallback
    assert len(outgoing) == 2
    assert sorted(s.resource.name for s in outgoing if s.resource) == ["ok"]
    incoming = await marie.list_incoming_shares()
    assert len(incoming) == 2 and sum(r.resource is not None for r in incoming) == 1


async def test_duplicate_share_is_already_exists(make_client: Any) -> None:
    einstein = make_client("einstein")
    marie = await make_client("marie").whoami()
    home = await einstein.home()
    await einstein.mkdir(f"{home}/dup")
    grantee = Grantee("user", marie.opaque_id, marie.idp)
    await einstein.create_share(f"{home}/dup", grantee)
    with pytest.raises(errors.AlreadyExists):
        await einstein.create_share(f"{home}/dup", grantee)


async def test_public_links(client: CS3Client, home: str) -> None:
    await client.upload(f"{home}/pub.txt", b"public")
    link = await client.create_link(f"{home}/pub.txt", password="s3cret-pass", description="for you")
    assert link.token and link.password_protected
    links = await client.list_links()
    assert [x.id for x in links] == [link.id]
    assert [x.id for x in await client.list_links(f"{home}/pub.txt")] == [link.id]
    updated = await client.update_link(link.id, permissions=types.EDITOR, description="changed")
    assert "initiate_file_upload" in updated.permissions
    await client.remove_link(link.id)
    assert await client.list_links() == []


async def test_user_and_group_search(client: CS3Client) -> None:
    users = await client.find_users("mar")
    assert [u.username for u in users] == ["marie"]
    groups = await client.find_groups("physics")
    assert any(g.name == "physics-lovers" for g in groups)


async def test_file_id_str_matches_space(client: CS3Client, home: str) -> None:
    info = await client.stat(home)
    assert FileId.parse(str(info.file_id)) == info.file_id


@pytest.mark.emu(upload_protocols=["simple", "tus"])
@pytest.mark.parametrize("tus", [False, True])
async def test_upload_progress(make_client: Any, home: str, tus: bool) -> None:
    client = make_client(tus_enabled=tus, tus_threshold=1024, upload_chunk_size=1024 * 1024)
    data = b"p" * (2 * 1024 * 1024 + 5)
    progress: list[tuple[int, int]] = []
    await client.upload(
        f"{home}/progress.bin", data, on_progress=lambda sent, total: progress.append((sent, total))
    )
    assert progress[-1] == (len(data), len(data))
    assert [s for s, _ in progress] == sorted(s for s, _ in progress) and len(progress) >= 3


async def test_user_and_group_lookup(client: CS3Client) -> None:
    marie = (await client.find_users("marie"))[0]
    got = await client.get_user(marie.opaque_id, marie.idp)
    assert got.username == "marie"
    group = next(g for g in await client.find_groups("physics") if g.name == "physics-lovers")
    assert (await client.get_group(group.opaque_id, group.idp)).name == "physics-lovers"


async def test_a_public_link_address_opens_in_the_emulator(client: CS3Client, emu: Any, home: str) -> None:
    """`cs3sync lab` sets c.CS3SyncAPI.public_link_url to the emulator's /s/<token>: the copied address works
    (the file's bytes, a folder's names), and asks for the password of a protected link."""
    import httpx

    await client.upload(f"{home}/open.txt", b"anyone with the link")
    await client.mkdir(f"{home}/shown")
    await client.upload(f"{home}/shown/inside.txt", b"x")
    file_link = await client.create_link(f"{home}/open.txt")
    folder_link = await client.create_link(f"{home}/shown")
    locked = await client.create_link(f"{home}/open.txt", password="s3cret-pass")
    async with httpx.AsyncClient(base_url=emu.http_url) as http:
        answer = await http.get(f"/s/{file_link.token}")
        assert answer.status_code == 200 and answer.content == b"anyone with the link"
        answer = await http.get(f"/s/{folder_link.token}")
        assert answer.status_code == 200 and "inside.txt" in answer.text
        assert (await http.get(f"/s/{locked.token}")).status_code == 401
        answer = await http.get(f"/s/{locked.token}", params={"password": "s3cret-pass"})
        assert answer.status_code == 200 and answer.content == b"anyone with the link"
        assert (await http.get("/s/no-such-token")).status_code == 404
