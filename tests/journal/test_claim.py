"""The path-ordered claim: per path (ancestors and descendants included) journal order, disjoint paths
in parallel; leases, retries, blocked and parked entries."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs3sync.journal import BlockedReason, Journal, Op, State, is_same_or_related

from .helpers import drain_ids, save

pytestmark = pytest.mark.anyio


async def test_disjoint_paths_run_in_parallel(journal: Journal) -> None:
    a = await save(journal, "/h/a", b"1")
    b = await save(journal, "/h/b", b"2")
    first, second = await journal.claim("w1"), await journal.claim("w2")
    assert first is not None and second is not None
    assert (first.id, second.id) == (a.id, b.id)
    assert first.state == State.RUNNING and first.lease_owner == "w1" and first.claims == 1


async def test_same_path_waits_for_older(journal: Journal) -> None:
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w1")
    d = await journal.enqueue(Op.DELETE, "/h/a", base_etag="x")
    assert await journal.claim("w2") is None
    await journal.mark_done(s.id, result_etag="e2")
    claimed = await journal.claim("w2")
    assert claimed is not None and claimed.id == d.id


async def test_mkdir_before_child_saves(journal: Journal) -> None:
    mkdir = await journal.enqueue(Op.MKDIR, "/h/d", kind="directory")
    child = await save(journal, "/h/d/x", b"x")
    other = await save(journal, "/h/e", b"e")
    first = await journal.claim("w")
    second = await journal.claim("w")
    assert first is not None and second is not None
    assert first.id == mkdir.id
    assert second.id == other.id, "the child waits for its parent's mkdir; unrelated paths do not"
    assert await journal.claim("w") is None
    await journal.mark_done(mkdir.id)
    third = await journal.claim("w")
    assert third is not None and third.id == child.id


async def test_rename_waits_for_everything_under_source(journal: Journal) -> None:
    child = await save(journal, "/h/src/deep/x", b"x")
    rename = await journal.enqueue(Op.RENAME, "/h/dst", src_path="/h/src", kind="directory")
    later = await save(journal, "/h/dst/y", b"y")
    assert await drain_ids(journal) == [child.id, rename.id, later.id]


async def test_prefix_is_not_ancestor(journal: Journal) -> None:
    await save(journal, "/h/ab", b"1")
    await journal.claim("w")
    assert await journal.claim("w") is None
    other = await save(journal, "/h/a", b"2")
    claimed = await journal.claim("w")
    assert claimed is not None and claimed.id == other.id


async def test_retrying_waits_for_next_attempt(journal: Journal, clock) -> None:
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w")
    await journal.mark_retry(s.id, error="unavailable", next_attempt_at=clock() + 30)
    assert await journal.next_wakeup() == clock() + 30
    assert await journal.claim("w") is None
    clock.advance(31)
    again = await journal.claim("w")
    assert again is not None and again.id == s.id
    assert again.attempts == 1 and again.claims == 2


async def test_blocked_holds_back_successors_until_unblocked(journal: Journal) -> None:
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w")
    await journal.mark_blocked(s.id, reason=BlockedReason.OFFLINE, error="connection refused")
    mkdir = await journal.enqueue(Op.MKDIR, "/h/a/sub", kind="directory")
    assert await journal.claim("w") is None
    assert await journal.unblock(BlockedReason.AUTH) == 0
    assert await journal.unblock(BlockedReason.OFFLINE) == 1
    assert await drain_ids(journal) == [s.id, mkdir.id]


async def test_block_runnable_and_attempts_not_burnt(journal: Journal) -> None:
    await save(journal, "/h/a", b"1")
    await save(journal, "/h/b", b"2")
    assert await journal.block_runnable(BlockedReason.OFFLINE, error="unreachable") == 2
    stats = await journal.stats()
    assert stats.blocked == {"offline": 2}
    assert all(e.attempts == 0 for e in await journal.active_entries())
    assert await journal.claim("w") is None


async def test_parked_entries_do_not_hold_back_successors(journal: Journal) -> None:
    s = await save(journal, "/h/a", b"1", base_etag="e1")
    await journal.claim("w")
    await journal.mark_conflict(s.id, conflict_path="/h/a (conflicted copy)", error="etag moved")
    again = await save(journal, "/h/a", b"2", base_etag="e5")
    claimed = await journal.claim("w")
    assert claimed is not None and claimed.id == again.id
    assert again.base_etag == "e5", "a conflict is never folded into a later save"


async def test_large_filter(journal: Journal) -> None:
    small = await save(journal, "/h/small", b"s")
    big_blob = await journal.store_blob(b"b" * 10)
    big = await journal.enqueue(Op.SAVE, "/h/big", blob=big_blob, large=True)
    claimed = await journal.claim("large-worker", large=True)
    assert claimed is not None and claimed.id == big.id
    claimed = await journal.claim("small-worker", large=False)
    assert claimed is not None and claimed.id == small.id


async def test_large_by_threshold(journal: Journal) -> None:
    journal.settings.large_threshold = 100
    e = await save(journal, "/h/x", b"z" * 100)
    assert e.large


async def test_paused_claims_nothing(journal: Journal) -> None:
    await save(journal, "/h/a", b"1")
    await journal.set_control(paused=True)
    assert await journal.claim("w") is None
    assert await journal.has_runnable()
    await journal.set_control(paused=False)
    assert await journal.claim("w") is not None


async def test_expired_lease_is_requeued_with_check(journal: Journal, clock) -> None:
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w1", lease_seconds=10)
    assert await journal.renew_lease(s.id, "w1", lease_seconds=10)
    assert not await journal.renew_lease(s.id, "someone-else")
    clock.advance(11)
    claimed = await journal.claim("w2")
    assert claimed is not None and claimed.id == s.id
    assert claimed.needs_check and claimed.lease_owner == "w2"


async def test_claim_with_nothing_runnable_does_not_wait_for_the_writer(journal: Journal, clock) -> None:
    """Every change wakes every idle worker and most of their claims find nothing: those must not take
    the writer (an enqueue committing meanwhile would wait behind each of them). A claim that has
    something to do still does, an expired lease included."""
    s = await save(journal, "/h/a", b"1")
    await journal.claim("w1", lease_seconds=10)
    async with journal.transaction():  # the writer is busy (here: until the claim returns)
        with anyio.fail_after(5):
            assert await journal.claim("w2") is None
    clock.advance(11)
    claimed = await journal.claim("w2")
    assert claimed is not None and claimed.id == s.id and claimed.needs_check


async def test_transitions_need_running(journal: Journal) -> None:
    from cs3sync.journal import InvalidTransition, UnknownEntry

    s = await save(journal, "/h/a", b"1")
    with pytest.raises(InvalidTransition):
        await journal.mark_done(s.id)
    with pytest.raises(UnknownEntry):
        await journal.entry(999)
    await journal.claim("w")
    done = await journal.mark_done(s.id, result_etag="e", result_mtime=12.5)
    assert done.state == State.DONE and done.blob is None and done.result_mtime == 12.5
    with pytest.raises(InvalidTransition):
        await journal.mark_failed(s.id, error="late")


# ------------------------------------------------------------------ property: the claim order
PATHS = ["/r", "/r/a", "/r/a/x", "/r/a/y", "/r/b", "/r/b/x", "/q"]
command = st.one_of(
    st.tuples(st.just(Op.SAVE), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just(Op.MKDIR), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just(Op.DELETE), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just(Op.RENAME), st.sampled_from(PATHS), st.sampled_from(PATHS)),
)
step = st.one_of(
    st.tuples(st.just("enqueue"), command),
    st.tuples(st.just("claim"), st.none()),
    st.tuples(st.just("finish"), st.integers(0, 5)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=25))
async def test_claim_never_overtakes_related_older_entry(tmp_path_factory, local_mounts, steps) -> None:
    """Whatever is enqueued, claimed and finished in whatever interleaving: an entry is only ever claimed
    when no older active entry touches a related path, and every entry eventually runs."""
    directory = tmp_path_factory.mktemp("prop") / "j"
    journal = await Journal.open(directory, owner=True, mounts_file=local_mounts)
    running: list[int] = []
    try:
        for kind, arg in steps:
            if kind == "enqueue":
                op, path, src = arg
                if op == Op.SAVE:
                    await save(journal, path, path.encode())
                elif op == Op.RENAME:
                    await journal.enqueue(op, path, src_path=src)
                else:
                    await journal.enqueue(op, path)
            elif kind == "claim":
                await claim_and_check(journal, running)
            elif running:
                await journal.mark_done(running.pop(arg % len(running)))
        # Drain: everything active must run eventually.
        while (await journal.active_entries()) or running:
            if not await claim_and_check(journal, running):
                assert running, "active entries left but nothing runnable and nothing running"
                await journal.mark_done(running.pop(0))
    finally:
        await journal.close()


async def claim_and_check(journal: Journal, running: list[int]) -> bool:
    before = {e.id: e for e in await journal.active_entries()}
    claimed = await journal.claim("w")
    if claimed is None:
        # Then every queued entry must have a related older active entry.
        for e in before.values():
            if e.state == State.QUEUED:
                assert any(
                    o.id < e.id and any(is_same_or_related(p, q) for p in e.paths() for q in o.paths())
                    for o in before.values()
                ), f"entry {e.id} was runnable but not claimed"
        return False
    for older in before.values():
        if older.id < claimed.id:
            assert not any(is_same_or_related(p, q) for p in claimed.paths() for q in older.paths()), (
                f"claimed {claimed.id} over older related {older.id}"
            )
    # The oldest runnable one is chosen.
    for e in before.values():
        if e.id < claimed.id and e.state == State.QUEUED:
            assert any(
                o.id < e.id and any(is_same_or_related(p, q) for p in e.paths() for q in o.paths())
                for o in before.values()
            ), f"claimed {claimed.id} while older {e.id} was runnable"
    running.append(claimed.id)
    return True


def test_claim_query_uses_indexes() -> None:
    """The claim must stay cheap with thousands of pending entries: index lookups per candidate, in
    journal order, no scan of entry_paths and no sort."""
    import sqlite3

    from cs3sync.journal import schema
    from cs3sync.journal.queries import CLAIMABLE_SQL, RUNNABLE_SQL

    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(conn)
    plan = " | ".join(
        r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + RUNNABLE_SQL, {"now": 0, "large": None})
    )
    assert "SCAN e USING INDEX entries_runnable" in plan
    assert "SCAN mine" not in plan and "SCAN theirs" not in plan and "TEMP B-TREE" not in plan, plan
    # The read that spares an idle claim its write transaction: the same, plus an index lookup.
    plan = " | ".join(
        r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + CLAIMABLE_SQL, {"now": 0, "large": None})
    )
    assert "SEARCH entries USING" in plan and "SCAN entries" not in plan, plan
    assert "SCAN mine" not in plan and "SCAN theirs" not in plan and "TEMP B-TREE" not in plan, plan


async def test_claim_skips_many_blocked_descendants(journal: Journal) -> None:
    mkdir = await journal.enqueue(Op.MKDIR, "/h/d", kind="directory")
    for i in range(30):
        await journal.enqueue(Op.MKDIR, f"/h/d/sub{i}", kind="directory")
    other = await journal.enqueue(Op.MKDIR, "/h/e", kind="directory")
    assert [(await journal.claim("w")).id for _ in range(2)] == [mkdir.id, other.id]
    assert await journal.claim("w") is None
