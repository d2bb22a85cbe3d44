"""`Shared with me/<name>` keeps meaning the same share (issue 12): three users, panel refreshes, restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cs3sync.cs3 import CS3Client
from cs3sync.cs3.types import EDITOR, Grantee
from cs3sync.emulator import EmulatorThread


def _disk(emu: EmulatorThread, user: str, *parts: str) -> Path:
    return Path(emu.config.root, user, *parts)


async def _incoming(api: Any) -> dict[str, dict[str, Any]]:
    """The Shares panel's refresh: {owner's display name: share} of the shares named ``beam``."""
    status, body = await api("shares/incoming")
    assert status == 200, body
    return {s["creator"]["display_name"]: s for s in body["shares"] if s["name"] == "beam"}


async def _put(jp_fetch: Any, path: str, text: str) -> int:
    model = {"type": "file", "format": "text", "content": text}
    response = await jp_fetch(
        "api", "contents", *path.split("/"), method="PUT", body=json.dumps(model), raise_error=False
    )
    return response.code


async def _accept_all(client: CS3Client) -> None:
    """Accept every received share (the ocis profile leaves them pending)."""
    for rs in await client.list_incoming_shares():
        if rs.state != "accepted":
            await client.update_received_share(rs.share.id, state="accepted")


async def _share(owner: CS3Client, emu: EmulatorThread, folder: str) -> str:
    """``owner`` shares ``folder`` of their home with einstein as editor; einstein accepts it."""
    home = await owner.home()
    await owner.mkdir(f"{home}/{folder}")
    einstein = emu.config.user("einstein")
    assert einstein is not None
    share = await owner.create_share(
        f"{home}/{folder}", Grantee("user", einstein.opaque_id, einstein.idp), EDITOR
    )
    return share.id


async def test_a_mount_name_keeps_its_share_across_refreshes_and_new_shares(
    api: Any, jp_fetch: Any, demo_emulator: EmulatorThread, cs3_config: Any, jp_serverapp: Any
) -> None:
    """Marie shares `beam`; richard shares another `beam` whose share id sorts first as a string: the
    name stays marie's, richard's gets `beam (richard)`, and an editor's second save (after a panel
    refresh) lands in marie's folder. When richard's share goes, nothing moves; when marie's goes, a save
    through her old name is refused instead of landing in richard's folder."""
    emu = demo_emulator
    marie = CS3Client(cs3_config(emu, "marie"))
    richard = CS3Client(cs3_config(emu, "richard"))
    einstein = CS3Client(cs3_config(emu, "einstein"))
    try:
        marie_share = await _share(marie, emu, "beam")
        for n in range(12):  # richard's share of `beam` gets an id like "1x", which sorts before "4"
            await richard.mkdir(f"{await richard.home()}/filler{n}")
            await richard.create_share(
                f"{await richard.home()}/filler{n}",
                Grantee("user", emu.config.user("marie").opaque_id),
                EDITOR,
            )
        await _accept_all(einstein)
        shares = await _incoming(api)
        assert shares["Marie Curie"]["api_path"] == "Shared with me/beam"
        assert await _put(jp_fetch, "Shared with me/beam/draft1.txt", "first") in (200, 201)

        richard_share = await _share(richard, emu, "beam")
        assert str(richard_share) < str(marie_share)  # the old string sort would hand `beam` to richard
        await _accept_all(einstein)
        shares = await _incoming(api)  # the panel refreshes between the two saves
        assert shares["Marie Curie"]["api_path"] == "Shared with me/beam"
        assert shares["Richard Feynman"]["api_path"] == "Shared with me/beam (richard)"
        assert await _put(jp_fetch, "Shared with me/beam/draft2.txt", "second") in (200, 201)
        engine = await jp_serverapp.contents_manager.get_engine()
        assert await engine.wait_idle(timeout=30)
        assert sorted(p.name for p in _disk(emu, "marie", "beam").iterdir()) == ["draft1.txt", "draft2.txt"]
        assert list(_disk(emu, "richard", "beam").iterdir()) == []

        await richard.remove_share(richard_share)
        shares = await _incoming(api)
        assert shares["Marie Curie"]["api_path"] == "Shared with me/beam"

        richard_share = await _share_again(richard, emu)
        await _accept_all(einstein)
        await marie.remove_share(marie_share)
        shares = await _incoming(api)
        assert list(shares) == ["Richard Feynman"]
        assert shares["Richard Feynman"]["api_path"] == "Shared with me/beam (richard)"
        assert await _put(jp_fetch, "Shared with me/beam/draft3.txt", "third") == 404
        assert list(_disk(emu, "richard", "beam").iterdir()) == []
    finally:
        for client in (marie, richard, einstein):
            await client.aclose()


async def _share_again(owner: CS3Client, emu: EmulatorThread) -> str:
    einstein = emu.config.user("einstein")
    assert einstein is not None
    share = await owner.create_share(
        f"{await owner.home()}/beam", Grantee("user", einstein.opaque_id, einstein.idp), EDITOR
    )
    return share.id


async def test_mount_names_survive_a_restart(
    api: Any, demo_emulator: EmulatorThread, cs3_config: Any, jp_serverapp: Any
) -> None:
    """The names are in the journal: a restarted server maps `Shared with me/beam` to marie's folder from
    its first request, and its first refresh (which also lists richard's `beam`) keeps it so."""
    from contents.manager import CS3ContentsManager

    emu = demo_emulator
    marie = CS3Client(cs3_config(emu, "marie"))
    richard = CS3Client(cs3_config(emu, "richard"))
    einstein = CS3Client(cs3_config(emu, "einstein"))
    try:
        await _share(marie, emu, "beam")
        await _accept_all(einstein)
        assert (await _incoming(api))["Marie Curie"]["api_path"] == "Shared with me/beam"
        await _share(richard, emu, "beam")
        await _accept_all(einstein)
        await jp_serverapp.contents_manager.shutdown()

        restarted = CS3ContentsManager(config=jp_serverapp.config)
        try:
            path_map = await restarted.get_path_map()
            marie_beam = f"{await marie.home()}/beam"
            assert path_map.to_cs3("Shared with me/beam") == marie_beam
            await restarted.refresh_mounts()
            assert path_map.to_cs3("Shared with me/beam") == marie_beam
            assert path_map.to_cs3("Shared with me/beam (richard)") == f"{await richard.home()}/beam"
        finally:
            await restarted.shutdown()
    finally:
        for client in (marie, richard, einstein):
            await client.aclose()
