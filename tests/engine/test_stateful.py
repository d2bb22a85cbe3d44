"""A hypothesis state machine over the engine: save / rename / delete / mkdir / copy / checkpoint, network
down and up, remote edits, crash + restart, against the emulator (both profiles).

Invariant, checked at every quiescence: the storage equals the model of acknowledged commands, or every
divergence is a recorded conflict (and a save's conflict copy holds the user's bytes), and nothing was
uploaded twice (committed PUTs <= uploads the journal asked for).

Remote edits happen at a quiescent moment and are not seen by the "user" until the next settle, so the
next save or delete of that path must conflict: the model expects exactly that. Paths that await such a
conflict are not renamed or copied (their content is ambiguous by design until the user resolves it).

Budget: `CS3SYNC_HYPOTHESIS_EXAMPLES` (default 6 per profile) examples of up to 14 steps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cs3sync.cs3 import CS3Client
from cs3sync.emulator import Emulator, EmulatorConfig
from cs3sync.engine import ManualClock, SyncEngine
from cs3sync.journal import Op, State

from .conftest import client_config, no_sleep

EXAMPLES = int(os.environ.get("CS3SYNC_HYPOTHESIS_EXAMPLES", "6"))
NAMES = ["a.txt", "b.txt", "c.txt"]
CONTENT = st.binary(min_size=0, max_size=64)


class EngineMachine(RuleBasedStateMachine):
    profile = "cernbox"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="cs3sync-stateful-"))
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        self.emu = Emulator(EmulatorConfig(root=self.tmp / "root", profile=self.profile))
        self.portal.call(self.emu.start)
        secret = self.tmp / "secret"
        secret.write_text("relativity\n")
        # Simple uploads only: every committed upload is one PUT 200 in the http log.
        config = client_config(self.emu, secret, tus_enabled=False)
        self.client = CS3Client(config, sleep=no_sleep)
        self.home = self.portal.call(self.client.home)
        self.dir = f"{self.home}/h"
        self.portal.call(self.client.mkdir, self.dir)
        self.clock = ManualClock()
        self.engine = self._new_engine()
        self.portal.call(self.engine.start)
        self.network_up = True
        # The model: path -> expected bytes (None = absent), for files under self.dir.
        self.expected: dict[str, bytes | None] = {}
        self.dirs: set[str] = set()
        # The etag the user last saw (passed as base_etag), and paths whose next save/delete must
        # conflict because someone else changed them unseen.
        self.user_etag: dict[str, str] = {}
        self.stale: set[str] = set()
        self.must_conflict: set[str] = set()
        self.checkpoints = 0

    # ------------------------------------------------------------------ plumbing

    def _new_engine(self) -> SyncEngine:
        return SyncEngine(
            self.client, journal_dir=self.tmp / "journal", clock=self.clock, backoff_jitter=0.0,
            offline_probe_interval=15.0, control_poll_interval=3600.0,
        )  # fmt: skip

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def exists(self, name: str) -> bool:
        return self.expected.get(self.path(name)) is not None

    def teardown(self) -> None:
        try:
            self.portal.call(self.engine.stop)
            self.portal.call(self.client.aclose)
            self.portal.call(self.emu.stop)
        finally:
            self._portal_cm.__exit__(None, None, None)
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ user commands

    @rule(name=st.sampled_from(NAMES), data=CONTENT)
    def save(self, name: str, data: bytes) -> None:
        p = self.path(name)
        self.portal.call(self.engine.submit_save, p, data, self.user_etag.get(p))
        self.expected[p] = data
        if p in self.stale:
            self.must_conflict.add(p)

    @precondition(lambda self: any(self.exists(n) for n in NAMES))
    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        p = self.path(name)
        if not self.exists(name):
            return
        self.portal.call(self.engine.submit_delete, p, self.user_etag.get(p), None)
        self.expected[p] = None
        if p in self.stale:
            self.must_conflict.add(p)

    @rule(src=st.sampled_from(NAMES), dst=st.sampled_from(NAMES))
    def rename(self, src: str, dst: str) -> None:
        s, d = self.path(src), self.path(dst)
        if (
            src == dst
            or not self.exists(src)
            or self.exists(dst)
            or {s, d} & (self.stale | self.must_conflict)
        ):
            return
        self.portal.call(self.engine.submit_rename, s, d, None)
        self.expected[d], self.expected[s] = self.expected[s], None
        self.user_etag.pop(s, None)
        self.user_etag.pop(d, None)

    @rule(src=st.sampled_from(NAMES), dst=st.sampled_from(NAMES))
    def copy(self, src: str, dst: str) -> None:
        s, d = self.path(src), self.path(dst)
        if (
            src == dst
            or not self.exists(src)
            or self.exists(dst)
            or {s, d} & (self.stale | self.must_conflict)
        ):
            return
        self.portal.call(self.engine.submit_copy, s, d)
        self.expected[d] = self.expected[s]
        self.user_etag.pop(d, None)

    @rule(name=st.sampled_from(["d1", "d2"]))
    def mkdir(self, name: str) -> None:
        self.portal.call(self.engine.submit_mkdir, self.path(name))
        self.dirs.add(self.path(name))

    @rule(name=st.sampled_from(NAMES), data=CONTENT)
    def checkpoint(self, name: str, data: bytes) -> None:
        self.checkpoints += 1
        cp = f"{self.dir}/.ipynb_checkpoints/{name}-{self.checkpoints}"
        self.portal.call(self.engine.submit_checkpoint, self.path(name), cp, data)
        self.expected[cp] = data

    # ------------------------------------------------------------------ the world

    @precondition(lambda self: self.network_up)
    @rule()
    def network_down(self) -> None:
        self.portal.call(self.emu.faults.outage)
        self.network_up = False

    @precondition(lambda self: not self.network_up)
    @rule()
    def network_up_again(self) -> None:
        self._restore_network()

    @rule()
    def crash_and_restart(self) -> None:
        """Cut the engine off mid-flight (whatever ran is requeued and re-checked on restart)."""
        self.portal.call(self.engine.stop)
        self.engine = self._new_engine()
        self.portal.call(self.engine.start)

    @precondition(lambda self: any(self.exists(n) for n in NAMES))
    @rule(name=st.sampled_from(NAMES), data=CONTENT)
    def remote_edit(self, name: str, data: bytes) -> None:
        p = self.path(name)
        if not self.exists(name) or p in self.must_conflict:
            return
        self.settle()
        if self.expected.get(p) is None:
            return
        self.emu.storage.external_write(p, data + b" (theirs)")
        self.expected[p] = data + b" (theirs)"
        if p in self.user_etag:
            self.stale.add(p)

    @rule()
    def settle(self) -> None:
        """Quiescence: network up, time advanced until nothing is queued, running or retrying; then
        check the invariant and let the user see the storage again."""
        self._restore_network()

        async def drain() -> None:
            with anyio.fail_after(60):
                while True:
                    since = self.engine.changed.generation
                    busy = [
                        e for e in self.engine.active_entries()
                        if e.state in (State.QUEUED, State.RUNNING, State.RETRYING)
                        or e.state == State.BLOCKED
                    ]  # fmt: skip
                    if not busy and self.engine.state == "online":
                        return
                    if not any(e.state == State.RUNNING for e in busy):
                        self.clock.advance(301.0)  # due retries and probes run now
                    await self.engine.changed.wait(since, timeout=1.0)

        self.portal.call(drain)
        self.check()

    def _restore_network(self) -> None:
        if not self.network_up:
            self.portal.call(self.emu.faults.restart)
            self.network_up = True

            async def reconnect() -> None:
                channel = self.client.gateway._channel
                if channel is not None:
                    with anyio.fail_after(15):
                        await channel.channel_ready()

            self.portal.call(reconnect)

    # ------------------------------------------------------------------ the invariant

    def check(self) -> None:
        journal = self.engine.journal
        parked = self.portal.call(journal.entries, [State.CONFLICT, State.FAILED])
        failed = [e for e in parked if e.state == State.FAILED]
        assert not failed, [(e.op, e.path, e.last_error) for e in failed]
        conflicted = {e.src_path if e.op == Op.RENAME else e.path: e for e in parked}
        for e in parked:
            if e.op == Op.SAVE and e.conflict_path:  # the user's bytes are kept beside
                copy = self.portal.call(self.client.read_bytes, e.conflict_path)
                assert copy == journal.blob_path(e.blob).read_bytes()
        assert set(conflicted) >= self.must_conflict, (self.must_conflict, list(conflicted))

        for p, want in self.expected.items():
            info = self.portal.call(self.client.stat_or_none, p)
            got = None if info is None else self.portal.call(self.client.read_bytes, p)
            if got != want:
                assert p in conflicted, f"{p}: storage {got!r} != model {want!r} and no conflict recorded"
                self.expected[p] = got  # the user now sees the storage's version
        for d in self.dirs:
            assert self.portal.call(self.client.stat, d).type == "directory"

        # Nothing applied twice: committed uploads <= uploads the journal asked for.
        # A save superseded or cancelled after it was claimed may have reached the storage (a crash cut
        # it off before it was recorded): it counts as asked too.
        done = self.portal.call(journal.entries, [State.DONE, State.SUPERSEDED, State.CANCELLED])
        asked = sum(
            1
            for e in done
            if e.op in (Op.SAVE, Op.COPY, Op.CHECKPOINT) and (e.state == State.DONE or e.claims > 0)
        ) + sum(1 for e in parked if e.conflict_path)
        committed = sum(1 for r in self.emu.http_log if r.method == "PUT" and r.status == 200)
        assert committed <= asked, f"{committed} uploads committed for {asked} commands"

        for e in parked:
            self.portal.call(journal.resolve, e.id)
        self.stale.clear()
        self.must_conflict.clear()
        for p in self.expected:
            info = self.portal.call(self.client.stat_or_none, p)
            if info is not None:
                self.user_etag[p] = info.etag
            else:
                self.user_etag.pop(p, None)

    @invariant()
    def engine_alive(self) -> None:
        assert self.engine._host is not None and not self.engine._host.done()


def _machine(profile: str) -> Any:
    machine = type(f"EngineMachine_{profile}", (EngineMachine,), {"profile": profile})

    # Every example ends quiescent, so the invariant is checked at least once.
    original = machine.teardown

    def teardown(self: EngineMachine) -> None:
        try:
            self.settle()
        finally:
            original(self)

    machine.teardown = teardown
    machine.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=14,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=os.environ.get("CS3SYNC_HYPOTHESIS_EXAMPLES") is None,
    )
    return machine


@pytest.mark.parametrize("profile", ["cernbox", "ocis"])
def test_engine_state_machine(profile: str) -> None:
    _machine(profile).TestCase("runTest").runTest()
