"""`WriteLock`: acknowledging transactions and the engine's bookkeeping take turns for the writer."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from cs3sync.journal.writelock import WriteLock

pytestmark = pytest.mark.anyio


class Queued:
    """A lock held by a bookkeeping transaction, with waiters queued behind it one by one."""

    def __init__(self, tg: anyio.abc.TaskGroup, lock: WriteLock) -> None:
        self.tg, self.lock = tg, lock
        self.order: list[str] = []
        self.release = anyio.Event()

    async def hold(self) -> None:
        held = anyio.Event()

        async def holder() -> None:
            async with self.lock.hold(urgent=False):
                held.set()
                await self.release.wait()

        self.tg.start_soon(holder)
        await held.wait()

    async def add(self, name: str, *, urgent: bool) -> anyio.CancelScope:
        scope = anyio.CancelScope()

        async def waiter() -> None:
            with scope:
                async with self.lock.hold(urgent=urgent):
                    self.order.append(name)

        self.tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()  # queued before the next one
        return scope


async def test_an_acknowledgement_waits_for_one_bookkeeping_transaction_not_all_of_them() -> None:
    async with anyio.create_task_group() as tg:
        q = Queued(tg, WriteLock())
        await q.hold()
        for name in ("b1", "b2", "b3"):
            await q.add(name, urgent=False)
        await q.add("ack", urgent=True)
        q.release.set()
    # The holder was bookkeeping: the acknowledgement goes next, then the rest in their order
    # (one FIFO queue made it wait for all three).
    assert q.order == ["ack", "b1", "b2", "b3"]


async def test_both_kinds_take_turns_and_neither_starves() -> None:
    async with anyio.create_task_group() as tg:
        q = Queued(tg, WriteLock())
        await q.hold()
        for name, urgent in (("a1", True), ("a2", True), ("a3", True), ("b1", False), ("b2", False)):
            await q.add(name, urgent=urgent)
        q.release.set()
    assert q.order == ["a1", "b1", "a2", "b2", "a3"]


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    lock = WriteLock()
    async with anyio.create_task_group() as tg:
        q = Queued(tg, lock)
        await q.hold()
        gone = await q.add("cancelled", urgent=True)
        await q.add("b1", urgent=False)
        gone.cancel()
        await anyio.wait_all_tasks_blocked()
        q.release.set()
    assert q.order == ["b1"]
    with anyio.fail_after(5):
        async with lock.hold(urgent=True):  # free again
            pass
