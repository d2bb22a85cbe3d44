"""Issue 14: the engine's bookkeeping shares the journal's one writer connection with the enqueues that
acknowledge writes, so every engine transaction per file delays the next acknowledgement. A small save
costs the writer its claim and its done mark; an upload's session and progress are kept where they
serve (a tus upload resumes from its recorded offset)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from cs3sync.engine import SyncEngine

pytestmark = pytest.mark.anyio


def count_transactions(engine: SyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every write transaction from now on, ``durable`` or ``bookkeeping`` (both ways of making one:
    `UnitOfWork.transaction` and the single round trip of `UnitOfWork.run_transaction`)."""
    unit = engine.journal.unit
    made: list[str] = []
    for name in ("transaction", "run_transaction"):
        original: Callable[..., Any] = getattr(unit, name)

        def counting(*args: Any, original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            made.append("durable" if kwargs.get("durable", True) else "bookkeeping")
            return original(*args, **kwargs)

        monkeypatch.setattr(unit, name, counting)
    return made


async def test_a_small_save_costs_one_enqueue_one_claim_and_one_done_mark(
    make_engine: Any, home: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_engine() as engine:
        warm = await engine.submit_save(f"{home}/warm.txt", b"x")  # signs in, learns the storage
        with anyio.fail_after(20):
            assert await engine.wait(warm, 20)
            assert await engine.wait_idle(20)
        made = count_transactions(engine, monkeypatch)
        entry_id = await engine.submit_save(f"{home}/small.txt", b"y" * 100)
        with anyio.fail_after(20):
            assert await engine.wait(entry_id, 20)
            assert await engine.wait_idle(20)
        # The idle large-upload worker, woken by each change, finds nothing with a read (7a74f09: no
        # claim transaction of its own); a simple PUT of 100 B records no session (it is never
        # resumed) and no progress (nothing to show between 0 and 100 %).
        tus = profile == "ocis"  # a tus upload's session and confirmed offset are what a restart resumes
        expected = ["durable", "bookkeeping", "bookkeeping"] + (["bookkeeping"] * 2 if tus else [])
        assert sorted(made) == sorted(expected), made
