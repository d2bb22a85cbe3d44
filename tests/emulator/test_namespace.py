from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import pytest
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp
from cs3.storage.provider.v1beta1 import resources_pb2 as res

from cs3sync.emulator import Emulator

from .helpers import Gateway, ref

pytestmark = pytest.mark.anyio
OK = code_pb2.CODE_OK


async def test_stat_home_and_synthetic_root(gw: Gateway) -> None:
    home = await gw.stat(gw.home)
    assert home.status.code == OK
    assert home.info.type == res.RESOURCE_TYPE_CONTAINER and home.info.mime_type == "httpd/unix-directory"
    assert home.info.etag.startswith('"') and home.info.space.space_type == "personal"
    root = await gw.stat("/")
    assert root.status.code == OK and root.info.type == res.RESOURCE_TYPE_CONTAINER
    missing = await gw.stat(gw.p("nope"))
    assert missing.status.code == code_pb2.CODE_NOT_FOUND
    assert missing.status.message == "path not found when statting"


async def test_mkdir_touch_list_move_delete(emulator: Emulator, gw: Gateway) -> None:
    assert (await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("d"))))).status.code == OK
    again = await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("d"))))
    assert again.status.code == _typed(emulator, code_pb2.CODE_ALREADY_EXISTS)
    orphan = await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p("x/y"))))
    assert orphan.status.code == _typed(emulator, code_pb2.CODE_NOT_FOUND)
    assert (await gw.call("TouchFile", sp.TouchFileRequest(ref=ref(gw.p("d/a.txt"))))).status.code == OK
    listing = await gw.call("ListContainer", sp.ListContainerRequest(ref=ref(gw.p("d"))))
    # oCIS answers basenames (storage behaviours row 3)
    basename = emulator.config.info_paths == "basename"
    assert [i.path for i in listing.infos] == ["a.txt" if basename else gw.p("d/a.txt")]
    assert listing.infos[0].name == "a.txt" and listing.infos[0].size == 0
    before = (await gw.stat(gw.p("d/a.txt"))).info
    moved = await gw.call("Move", sp.MoveRequest(source=ref(gw.p("d/a.txt")), destination=ref(gw.p("b.txt"))))
    assert moved.status.code == OK
    after = (await gw.stat(gw.p("b.txt"))).info
    assert after.id.opaque_id == before.id.opaque_id and after.etag == before.etag
    assert (await gw.call("Delete", sp.DeleteRequest(ref=ref(gw.p("b.txt"))))).status.code == OK
    assert (await gw.stat(gw.p("b.txt"))).status.code == code_pb2.CODE_NOT_FOUND
    recycle = await gw.call("ListRecycle", sp.ListRecycleRequest(ref=ref(gw.home)))
    assert [i.ref.path for i in recycle.recycle_items] == [gw.p("b.txt")]
    mount = await gw.call("Delete", sp.DeleteRequest(ref=ref(gw.home)))
    assert mount.status.code == code_pb2.CODE_INTERNAL


async def test_listing_shows_what_stat_shows(emulator: Emulator, gw: Gateway, tmp_path: Path) -> None:
    """ListContainer answers for each child what a Stat of it answers (ids, etags, checksums, metadata,
    locks, sizes), sorted by name, including files written straight to the disk (ids assigned by the
    listing, checksums computed then), and leaves out what a Stat cannot reach."""
    storage = emulator.storage
    home_disk = emulator.config.root / "einstein"
    assert await gw.upload(gw.p("b.ipynb"), b"{}") == 200
    md = res.ArbitraryMetadata(metadata={"color": "red", "other": "x"})
    set_md = sp.SetArbitraryMetadataRequest(ref=ref(gw.p("b.ipynb")), arbitrary_metadata=md)
    assert (await gw.call("SetArbitraryMetadata", set_md)).status.code == OK
    (home_disk / "a-disk.txt").write_bytes(b"written on disk")  # never seen by the emulator
    (home_disk / "empty.txt").write_bytes(b"")
    storage.external_mkdir(gw.p("sub/deeper"))
    storage.external_write(gw.p("sub/x.py"), b"print()")
    storage.lock(gw.p("a-disk.txt"))
    storage.lock(gw.p("empty.txt"), expiration=1.0)
    emulator.clock.advance(10)  # the lock on empty.txt has expired (EOS still shows it)
    os.symlink(home_disk / "b.ipynb", home_disk / "link.ipynb")
    os.symlink(home_disk / "gone", home_disk / "dangling")
    os.symlink(tmp_path, home_disk / "escape")
    request = sp.ListContainerRequest(ref=ref(gw.home), arbitrary_metadata_keys=["color"])
    listing = await gw.call("ListContainer", request)
    assert listing.status.code == OK
    assert [i.name for i in listing.infos] == ["a-disk.txt", "b.ipynb", "empty.txt", "link.ipynb", "sub"]
    for info in listing.infos:
        alone = await gw.stat(gw.p(info.name), arbitrary_metadata_keys=["color"])
        assert alone.info == info, info.name
    by_name = {i.name: i for i in listing.infos}
    assert len({i.id.opaque_id for i in listing.infos}) == 5
    assert by_name["b.ipynb"].arbitrary_metadata.metadata["color"] == "red"
    assert by_name["a-disk.txt"].lock.lock_id == "foreign-lock"
    assert by_name["empty.txt"].HasField("lock") == bool(emulator.config.stat_reports_expired_locks)
    adler = format(zlib.adler32(b"written on disk"), "x")
    if emulator.config.checksum_type == "sha1":
        assert by_name["a-disk.txt"].opaque.map["adler32"].value.decode() == adler
    else:
        assert by_name["a-disk.txt"].checksum.sum == adler
    assert by_name["sub"].type == res.RESOURCE_TYPE_CONTAINER and by_name["sub"].size == len(b"print()")
    again = await gw.call("ListContainer", request)
    assert list(again.infos) == list(listing.infos)


async def test_touch_existing_and_move_onto_existing_follow_profile(emulator: Emulator, gw: Gateway) -> None:
    assert await gw.upload(gw.p("a.txt"), b"a") == 200
    assert await gw.upload(gw.p("b.txt"), b"b") == 200
    touch = await gw.call("TouchFile", sp.TouchFileRequest(ref=ref(gw.p("a.txt"))))
    move = await gw.call("Move", sp.MoveRequest(source=ref(gw.p("a.txt")), destination=ref(gw.p("b.txt"))))
    if emulator.config.profile == "cernbox":
        assert touch.status.code == OK
        # EOS: onto an existing file, INTERNAL "error moving: <ref>" (storage behaviours rows 4, 5)
        assert move.status.code == code_pb2.CODE_INTERNAL and move.status.message.startswith("error moving")
        assert emulator.storage.read(gw.p("b.txt")) == b"b"
    else:
        assert touch.status.code == code_pb2.CODE_ALREADY_EXISTS
        assert move.status.code == code_pb2.CODE_ALREADY_EXISTS


async def test_move_onto_an_existing_folder_follows_profile(emulator: Emulator, gw: Gateway) -> None:
    """Storage behaviours row 5: EOS moves the source *into* an existing folder (hostile reading of an
    open case); decomposedfs refuses with ALREADY_EXISTS."""
    for folder in ("src", "dst"):
        assert (
            await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p(folder))))
        ).status.code == OK
    assert await gw.upload(gw.p("src/n.txt"), b"n") == 200
    move = await gw.call("Move", sp.MoveRequest(source=ref(gw.p("src")), destination=ref(gw.p("dst"))))
    if emulator.config.move_onto_existing == "eos":
        assert move.status.code == OK
        assert emulator.storage.read(gw.p("dst/src/n.txt")) == b"n"
    else:
        assert move.status.code == code_pb2.CODE_ALREADY_EXISTS
        assert emulator.storage.read(gw.p("src/n.txt")) == b"n"


async def test_ids_stable_etags_change_on_content_only(emulator: Emulator, gw: Gateway) -> None:
    assert await gw.upload(gw.p("n.ipynb"), b"one") == 200
    first = (await gw.stat(gw.p("n.ipynb"))).info
    home_etag = (await gw.stat(gw.home)).info.etag
    adler = format(zlib.adler32(b"one"), "x")
    if emulator.config.checksum_type == "sha1":
        # oCIS reports SHA1, adler32 only in the opaque (storage behaviours row 3)
        assert first.checksum.type == res.RESOURCE_CHECKSUM_TYPE_SHA1
        assert first.checksum.sum == hashlib.sha1(b"one").hexdigest()
        assert first.opaque.map["adler32"].value.decode() == adler
    else:
        assert first.checksum.type == res.RESOURCE_CHECKSUM_TYPE_ADLER32 and first.checksum.sum == adler
    assert await gw.upload(gw.p("n.ipynb"), b"two") == 200  # same size, same second
    second = (await gw.stat(gw.p("n.ipynb"))).info
    assert second.id.opaque_id == first.id.opaque_id and second.etag != first.etag
    assert (await gw.stat(gw.home)).info.etag != home_etag  # tree propagation
    md = res.ArbitraryMetadata(metadata={"k": "v"})
    await gw.call(
        "SetArbitraryMetadata",
        sp.SetArbitraryMetadataRequest(ref=ref(gw.p("n.ipynb")), arbitrary_metadata=md),
    )
    third = (await gw.stat(gw.p("n.ipynb"), arbitrary_metadata_keys=["k"])).info
    assert third.etag == second.etag and third.arbitrary_metadata.metadata["k"] == "v"
    assert third.mtime.seconds
    if emulator.config.mtime_whole_seconds:
        # EOS: whole seconds, nanos 0 (storage behaviours row 8); the etag alone told the saves apart
        assert third.mtime.nanos == 0
    by_id = await gw.call("Stat", sp.StatRequest(ref=res.Reference(resource_id=third.id, path=".")))
    assert by_id.info.path == ("n.ipynb" if emulator.config.info_paths == "basename" else gw.p("n.ipynb"))


async def test_folder_size_follows_profile(emulator: Emulator, gw: Gateway) -> None:
    """Storage behaviours row 8: EOS and oCIS report a folder's size as the size of its tree (reva
    master eosfs.go ``convert``: TreeSize; reva edge decomposedfs node.go: the ``treesize`` attribute,
    propagated on every write); the kind variant reports 0."""
    for folder in ("d", "d/e"):
        assert (
            await gw.call("CreateContainer", sp.CreateContainerRequest(ref=ref(gw.p(folder))))
        ).status.code == OK
    assert await gw.upload(gw.p("d/a.txt"), b"abc") == 200
    assert await gw.upload(gw.p("d/e/b.txt"), b"four") == 200
    assert emulator.config.dir_size == "tree"  # both profiles
    assert (await gw.stat(gw.p("d"))).info.size == 7
    listing = await gw.call("ListContainer", sp.ListContainerRequest(ref=ref(gw.home)))
    assert [i.size for i in listing.infos if i.name == "d"] == [7]
    assert (await gw.call("Delete", sp.DeleteRequest(ref=ref(gw.p("d/e/b.txt"))))).status.code == OK
    assert (await gw.stat(gw.p("d"))).info.size == 3  # propagated at once (the sync propagator)
    emulator.config.dir_size = "zero"  # the kind variant
    assert (await gw.stat(gw.p("d"))).info.size == 0


async def test_xattrs_errors_and_unset(emulator: Emulator, gw: Gateway) -> None:
    await gw.upload(gw.p("f"), b"x")
    empty = await gw.call(
        "SetArbitraryMetadata",
        sp.SetArbitraryMetadataRequest(
            ref=ref(gw.p("f")), arbitrary_metadata=res.ArbitraryMetadata(metadata={"k": ""})
        ),
    )
    assert empty.status.code == code_pb2.CODE_INTERNAL
    missing = await gw.call(
        "SetArbitraryMetadata",
        sp.SetArbitraryMetadataRequest(
            ref=ref(gw.p("g")), arbitrary_metadata=res.ArbitraryMetadata(metadata={"k": "v"})
        ),
    )
    if emulator.config.untyped_errors:  # EOS: INTERNAL naming no cause (storage behaviours row 4)
        assert missing.status.code == code_pb2.CODE_INTERNAL and "not found" not in missing.status.message
    else:
        assert missing.status.message == "path not found when setting arbitrary metadata"
    await gw.call(
        "SetArbitraryMetadata",
        sp.SetArbitraryMetadataRequest(
            ref=ref(gw.p("f")), arbitrary_metadata=res.ArbitraryMetadata(metadata={"k": "v"})
        ),
    )
    await gw.call(
        "UnsetArbitraryMetadata",
        sp.UnsetArbitraryMetadataRequest(ref=ref(gw.p("f")), arbitrary_metadata_keys=["k"]),
    )
    info = (await gw.stat(gw.p("f"), arbitrary_metadata_keys=["k"])).info
    assert "k" not in info.arbitrary_metadata.metadata


async def test_versions_list_download_restore(emulator: Emulator, gw: Gateway) -> None:
    for content in (b"v1", b"v2", b"v3"):
        assert await gw.upload(gw.p("doc.txt"), content) == 200
    before = (await gw.stat(gw.p("doc.txt"))).info
    versions = (
        await gw.call("ListFileVersions", sp.ListFileVersionsRequest(ref=ref(gw.p("doc.txt"))))
    ).versions
    assert [v.size for v in versions] == [2, 2] and versions[0].key != versions[1].key
    old = await gw.download(gw.p("doc.txt"), opaque=_opaque(version_key=versions[-1].key))
    assert old.status_code == 200 and old.content == b"v1"
    restore = await gw.call(
        "RestoreFileVersion", sp.RestoreFileVersionRequest(ref=ref(gw.p("doc.txt")), key=versions[-1].key)
    )
    assert restore.status.code == OK
    after = (await gw.stat(gw.p("doc.txt"))).info
    assert after.id.opaque_id == before.id.opaque_id and after.etag != before.etag
    assert (await gw.download(gw.p("doc.txt"))).content == b"v1"
    unknown = await gw.call(
        "RestoreFileVersion", sp.RestoreFileVersionRequest(ref=ref(gw.p("doc.txt")), key="nope")
    )
    assert unknown.status.code == _typed(emulator, code_pb2.CODE_NOT_FOUND)
    disabled = await gw.upload(gw.p("doc.txt"), b"v4", headers={"X-Disable-Versioning": "true"})
    assert disabled == 200
    count = len(
        (await gw.call("ListFileVersions", sp.ListFileVersionsRequest(ref=ref(gw.p("doc.txt"))))).versions
    )
    assert count == 3


def _opaque(**values: str):
    from .helpers import opaque

    return opaque(**values)


async def test_quota_and_spaces(emulator: Emulator, gw: Gateway) -> None:
    from cs3.gateway.v1beta1 import gateway_api_pb2 as gwpb
    from cs3.storage.provider.v1beta1 import spaces_api_pb2

    await gw.upload(gw.p("q.bin"), b"x" * 100)
    quota = await gw.call("GetQuota", gwpb.GetQuotaRequest(ref=ref(gw.home)))
    assert quota.status.code == OK and quota.used_bytes == 100
    if emulator.config.profile == "ocis":
        assert quota.total_bytes == 0 and "remaining" in quota.opaque.map
    else:
        assert quota.total_bytes > 0
    spaces = (await gw.call("ListStorageSpaces", spaces_api_pb2.ListStorageSpacesRequest())).storage_spaces
    assert spaces[0].id.opaque_id.startswith("00000000-0000-0000-0000-000000000000$")
    assert spaces[0].root_info.path == gw.home and spaces[0].name == "einstein"
    Filter = spaces_api_pb2.ListStorageSpacesRequest.Filter
    projects = await gw.call(
        "ListStorageSpaces",
        spaces_api_pb2.ListStorageSpacesRequest(
            filters=[Filter(type=Filter.TYPE_SPACE_TYPE, space_type="project")]
        ),
    )
    by_id = await gw.call(
        "ListStorageSpaces",
        spaces_api_pb2.ListStorageSpacesRequest(filters=[Filter(type=Filter.TYPE_ID, id=spaces[0].id)]),
    )
    assert [s.name for s in by_id.storage_spaces] == ["einstein"]
    cernbox = emulator.config.profile == "cernbox"  # the profile default (reva master) is what we test
    assert emulator.config.spaces_registry == ("reva_master" if cernbox else "complete")
    assert emulator.config.resource_space_id == ("bare" if cernbox else "prefixed")
    if emulator.config.spaces_registry == "reva_master":
        # Storage behaviours row 8 (reva master spacesregistry.go ListStorageSpaces): the explorer
        # space republishing the project comes twice; personal space and project have no root and a
        # root_info without id, the personal space no mtime; the explorer space is complete.
        assert [s.space_type for s in spaces] == ["personal", "project", "explorer", "explorer"]
        home, project, explorer = spaces[0], spaces[1], spaces[2]
        assert not home.HasField("root") and not home.HasField("mtime") and not home.root_info.id.opaque_id
        assert (
            not project.HasField("root") and project.HasField("mtime") and not project.root_info.id.opaque_id
        )
        assert explorer.id == project.id and explorer.root_info.path == project.root_info.path
        assert explorer.root.opaque_id and explorer.quota.quota_max_bytes == 10**18
        assert spaces[3] == explorer
        # a "project" filter answers the explorer spaces too; an id filter stops at the first match
        assert [s.space_type for s in projects.storage_spaces] == ["project", "explorer"]
        by_project_id = await gw.call(
            "ListStorageSpaces",
            spaces_api_pb2.ListStorageSpacesRequest(filters=[Filter(type=Filter.TYPE_ID, id=project.id)]),
        )
        assert [s.space_type for s in by_project_id.storage_spaces] == ["project"]
        # ResourceInfo.space.id is the bare base32 of the space path (addSpaceInfo), no storage id
        info = (await gw.call("Stat", sp.StatRequest(ref=ref(gw.home)))).info
        assert info.space.id.opaque_id == info.id.space_id and "$" not in info.space.id.opaque_id
        assert f"{emulator.config.storage_id}${info.space.id.opaque_id}" == home.id.opaque_id
    else:
        assert [s.space_type for s in spaces] == ["personal", "project"]
        assert all(s.root.opaque_id and s.HasField("mtime") and s.root_info.id.opaque_id for s in spaces)
        assert [s.space_type for s in projects.storage_spaces] == ["project"]
        info = (await gw.call("Stat", sp.StatRequest(ref=ref(gw.home)))).info
        assert info.space.id.opaque_id == spaces[0].id.opaque_id
    assert projects.storage_spaces[0].name == "physics-data"
    project_path = projects.storage_spaces[0].root_info.path
    assert await gw.upload(f"{project_path}/p.txt", b"p") == 200


def _typed(emulator: Emulator, code: int) -> int:
    """The code a typed error arrives with: INTERNAL on EOS (untyped_errors, storage behaviours row 4)."""
    return code_pb2.CODE_INTERNAL if emulator.config.untyped_errors else code
