"""Each executor against the emulator (both profiles): the effect, the remote-state bookkeeping and the
"already done?" check that makes a second run a no-op."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cs3sync.engine import ConflictError, SyncEngine
from cs3sync.journal import State

pytestmark = pytest.mark.anyio


async def read(client: Any, path: str) -> bytes:
    return await client.read_bytes(path)


async def test_save_mkdir_rename_delete(make_engine: Any, client: Any, home: str) -> None:
    async with make_engine() as engine:
        engine: SyncEngine
        with anyio.fail_after(20):
            d = await engine.submit_mkdir(f"{home}/dir")
            s = await engine.submit_save(f"{home}/dir/a.txt", b"hello")
            assert await engine.wait(d, 10)
            assert await engine.wait(s, 10)
        assert await read(client, f"{home}/dir/a.txt") == b"hello"
        info = await client.stat(f"{home}/dir/a.txt")
        entry = await engine.journal.entry(s)
        assert entry.state == State.DONE and entry.result_etag == info.etag
        rs = await engine.journal.remote_state(f"{home}/dir/a.txt")
        assert rs is not None and rs.etag == info.etag

        with anyio.fail_after(20):
            r = await engine.submit_rename(f"{home}/dir/a.txt", f"{home}/dir/b.txt", str(info.file_id))
            assert await engine.wait(r, 10)
        assert await client.stat_or_none(f"{home}/dir/a.txt") is None
        assert await read(client, f"{home}/dir/b.txt") == b"hello"

        b = await client.stat(f"{home}/dir/b.txt")
        with anyio.fail_after(20):
            x = await engine.submit_delete(f"{home}/dir/b.txt", b.etag, str(b.file_id))
            assert await engine.wait(x, 10)
        assert await client.stat_or_none(f"{home}/dir/b.txt") is None


async def test_save_conflict_makes_a_copy(make_engine: Any, client: Any, home: str, emulator: Any) -> None:
    path = f"{home}/n.ipynb"
    async with make_engine() as engine:
        e1 = await engine.submit_save(path, b"v1")
        assert await engine.wait(e1, 10)
        base = (await client.stat(path)).etag
        emulator.storage.external_write(path, b"theirs")
        e2 = await engine.submit_save(path, b"mine", base_etag=base)
        with pytest.raises(ConflictError) as err:
            await engine.wait(e2, 10)
        copy = err.value.conflict_path
        assert copy and "(conflicted copy " in copy and copy.endswith(".ipynb")
        assert await read(client, path) == b"theirs"
        assert await read(client, copy) == b"mine"
