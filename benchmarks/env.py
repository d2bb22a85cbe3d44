"""The benchmark environment: sizes, the servers under test (targets) and their storage."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import peer
from benchmarks.emulator import Admin
from benchmarks.procs import CS3_MANAGER, LOCAL_MANAGER, EmulatorProc, JupyterServer
from benchmarks.rest import Contents

MiB = 1024 * 1024
GiB = 1024 * MiB
USER, PASSWORD = "einstein", "relativity"


@dataclass(frozen=True)
class Sizes:
    """What each measurement works on; QUICK scales everything down to finish in under 2 minutes."""

    quick: bool
    listing: tuple[int, ...]
    listing_repeats: int
    save_small: int = 100_000
    save_large: int = 5_000_000
    save_small_n: int = 50
    save_large_n: int = 20
    concurrent_saves: int = 50
    upload: tuple[int, ...] = (256 * MiB, 1 * GiB)
    busy_upload: int = 1 * GiB
    busy_uploads: int = 4
    resume: int = 256 * MiB
    journal_enqueue_n: int = 1000
    journal_pending: tuple[int, ...] = (1000, 10_000)
    storm: int = 1000
    drain_timeout: float = 300.0
    busy_save_budget_s: float = 20.0  # how long small saves are timed while big uploads push
    busy_push_s: int = 40  # the data plane is throttled so that each big push takes this long
    offline_probe_s: float | None = None  # engine_options offline_probe_interval; None = the default
    storm_budget_s: float = 120.0  # the offline saves stop after this long even if fewer than `storm`
    claims: int = 50
    claim_budget_s: float = 60.0  # claims stop after this long at each pending size
    resume_idle_wait_s: float = 30.0  # after kill -9 + restart: wait this long for a resume on its own
    kill_protocols: tuple[str, ...] = ("simple", "tus")
    status_runs: int = 2
    raw_runs: int = 2
    bulk_files: int = 2000  # small files created with bulk_in_flight PUTs in flight
    bulk_in_flight: int = 8
    get_after_save_n: int = 30
    peer_upload: int = 32 * MiB  # the chunked upload all three do (cs3-jupyter's is O(n^2))
    big_notebook_cells: int = 50_000

    @classmethod
    def full(cls) -> Sizes:
        return cls(quick=False, listing=(1000, 10_000, 50_000), listing_repeats=10)

    @classmethod
    def quick_run(cls) -> Sizes:
        return cls(
            quick=True,
            listing=(1000,),
            listing_repeats=5,
            save_small_n=12,
            save_large_n=4,
            upload=(64 * MiB,),
            busy_upload=16 * MiB,
            resume=64 * MiB,
            journal_enqueue_n=200,
            journal_pending=(1000,),
            storm=100,
            drain_timeout=45.0,
            busy_save_budget_s=3.0,
            busy_push_s=6,
            storm_budget_s=8.0,
            offline_probe_s=1.0,
            claims=3,
            resume_idle_wait_s=5.0,
            kill_protocols=("simple",),
            status_runs=1,
            raw_runs=2,
            bulk_files=300,
            get_after_save_n=12,
            peer_upload=16 * MiB,
        )

    def override(self, assignments: list[str]) -> Sizes:
        """``["listing=1000,10000", "storm=50"]`` -> a copy with those fields changed."""
        changes: dict[str, object] = {}
        fields = {f.name: f for f in dataclasses.fields(self)}
        for assignment in assignments:
            name, _, text = assignment.partition("=")
            if name not in fields or name == "quick":
                raise KeyError(f"unknown size {name!r}")
            current = getattr(self, name)
            if isinstance(current, tuple):
                changes[name] = tuple(type(current[0])(v) if current else v for v in text.split(","))
            else:
                changes[name] = type(current)(text)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def repeats_for(self, count: int) -> int:
        """Warm listings timed for a folder of ``count`` entries (fewer for the big ones)."""
        return max(2, min(self.listing_repeats, 30_000 // count))

    @property
    def stall_upload(self) -> int:
        return max(self.upload)

    @property
    def stall_listing(self) -> int:
        return 10_000 if 10_000 in self.listing else max(self.listing)


@dataclass
class Target:
    """One jupyter_server under test, its REST client, and where its files land on disk."""

    label: str
    server: JupyterServer
    rest: Contents
    disk_root: Path  # the directory that API path "" maps to
    emulator: EmulatorProc | None = None
    admin: Admin | None = None
    tus: bool = False
    journal: bool = False  # cs3sync: has the journal REST endpoint (writes reply before they land)

    @property
    def is_cs3(self) -> bool:
        return self.emulator is not None

    def disk(self, api_path: str) -> Path:
        return self.disk_root / api_path

    async def wait_visible(
        self, api_path: str, size: int, timeout: float, poll: float = 0.005
    ) -> float | None:
        """Seconds until the file at ``api_path`` has ``size`` bytes on the storage; None on timeout."""
        seen = await self.visible_at(api_path, size, timeout, poll)
        return None if seen is None else seen[1]

    async def visible_at(
        self, api_path: str, size: int, timeout: float, poll: float = 0.005
    ) -> tuple[float, float] | None:
        """(perf_counter() when the file had ``size`` bytes on the storage, seconds waited), or None."""
        started = time.perf_counter()
        path = self.disk(api_path)
        while time.perf_counter() - started < timeout:
            with contextlib.suppress(OSError):
                if path.stat().st_size == size:
                    now = time.perf_counter()
                    return now, now - started
            await asyncio.sleep(poll)
        return None

    async def settle(self, timeout: float = 120.0) -> bool:
        """Wait until cs3sync's journal has nothing pending (its writes answer once journaled, and the
        engine applies them in the background: one suite's pushes must not count in the next)."""
        if not self.journal:
            return True
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            with contextlib.suppress(Exception):
                if (await self.rest.journal())["pending"] == 0:
                    return True
            await asyncio.sleep(0.1)
        return False

    async def restart_server(self) -> float:
        await self.rest.aclose()
        seconds = await self.server.start()
        self.rest = Contents(self.server.url, self.server.token)
        return seconds


@dataclass
class Bench:
    workdir: Path
    sizes: Sizes
    targets: dict[str, Target] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # target label -> reason
    shared: dict[str, object] = field(default_factory=dict)  # figures one suite records for another

    def target(self, label: str) -> Target | None:
        return self.targets.get(label)

    async def start_local(self) -> None:
        root = self.workdir / "local" / "root"
        server = JupyterServer(
            "local-server", self.workdir / "local", LOCAL_MANAGER, root, [], extensions={"contents": False}
        )
        await server.start()
        self.targets["local"] = Target("local", server, Contents(server.url, server.token), root)

    async def start_cs3(self, label: str, profile: str, tus: bool) -> None:
        """Emulator + jupyter_server with CS3ContentsManager; records why if either is not there yet."""
        missing = cs3_missing()
        if missing:
            self.unavailable[label] = missing
            return
        base = self.workdir / label
        emulator = EmulatorProc(f"{label}-emulator", base, base / "storage", profile)
        try:
            await emulator.start()
        except Exception as exc:
            self.unavailable[label] = f"emulator did not start: {exc}"
            return
        token_path = base / "password"
        token_path.write_text(PASSWORD)
        os.chmod(token_path, 0o600)
        journal_dir = base / "journal"
        extra = [
            f"--CS3Sync.host={emulator.grpc_address}",
            "--CS3Sync.ssl_enabled=False",
            "--CS3Sync.auth_login_type=basic",
            f"--CS3Sync.client_id={USER}",
            f"--CS3Sync.token_path={token_path}",
            f"--CS3Sync.tus_enabled={tus}",
            f"--CS3Sync.journal_dir={journal_dir}",
        ]
        config: dict[str, object] = {}
        if self.sizes.offline_probe_s is not None:
            options = {"offline_probe_interval": self.sizes.offline_probe_s}
            config["CS3ContentsManager"] = {"engine_options": options}
        server = JupyterServer(
            f"{label}-server",
            base,
            CS3_MANAGER,
            base / "server-root",
            extra,
            extensions={"contents": True},  # cs3sync's server extension: engine start/stop, REST
            config=config,
        )
        try:
            await server.start()
        except Exception as exc:
            emulator.stop()
            self.unavailable[label] = f"jupyter_server with CS3ContentsManager did not start: {exc}"[:400]
            return
        rest = Contents(server.url, server.token)
        target = Target(
            label,
            server,
            rest,
            emulator.root,
            emulator,
            Admin(emulator.http_url, emulator.admin_secret),
            tus,
            True,
        )
        try:
            target.disk_root = await locate_home(target)
        except Exception as exc:
            self.unavailable[label] = f"a save through CS3ContentsManager did not reach the storage: {exc}"
            await rest.aclose()
            server.stop()
            emulator.stop()
            return
        self.targets[label] = target

    async def start_peer(self, label: str, profile: str) -> None:
        """cs3-jupyter 0.2.0 from PyPI in its own virtualenv, on an emulator of its own (same profile as
        cs3sync's), rooted at a folder of the same user's home; records why if it cannot run."""
        try:
            python = await asyncio.to_thread(peer.ensure_venv, self.workdir / peer.VENV_NAME)
        except Exception as exc:
            self.unavailable[label] = f"{peer.PACKAGE} could not be installed: {exc}"[:400]
            return
        base = self.workdir / label
        emulator = EmulatorProc(f"{label}-emulator", base, base / "storage", profile)
        try:
            await emulator.start()
        except Exception as exc:
            self.unavailable[label] = f"emulator did not start: {exc}"
            return
        token_path = base / "password"
        token_path.write_text(PASSWORD)
        os.chmod(token_path, 0o600)
        # The emulator's disk holds each user's home under <root>/<user> (multi-user layout).
        disk_root = emulator.root / USER / "peer"
        disk_root.mkdir(parents=True, exist_ok=True)
        root_path = f"{home_of(profile, USER)}/peer"
        server = JupyterServer(
            f"{label}-server",
            base,
            peer.MANAGER,
            base / "server-root",
            peer.server_options(emulator.grpc_address, token_path, USER, root_path),
            extensions={"cs3_jupyter": False},
            python=str(python),
        )
        try:
            await server.start()
        except Exception as exc:
            emulator.stop()
            self.unavailable[label] = f"jupyter_server with {peer.MANAGER} did not start: {exc}"[:400]
            return
        rest = Contents(server.url, server.token)
        self.targets[label] = Target(
            label, server, rest, disk_root, emulator, Admin(emulator.http_url, emulator.admin_secret)
        )

    async def stop_all(self) -> None:
        for target in self.targets.values():
            await target.rest.aclose()
            target.server.stop()
            if target.emulator is not None:
                target.emulator.stop()


def home_of(profile: str, user: str) -> str:
    from cs3sync.emulator.config import EmulatorConfig

    return EmulatorConfig(root=Path("."), profile=profile).home(user)


def cs3_missing() -> str | None:
    """Why the CS3 side cannot run yet (parts still being built), or None."""
    for module, what in (
        ("contents.manager", "contents.manager (CS3ContentsManager)"),
        ("cs3sync.emulator", "cs3sync.emulator"),
        ("cs3sync.cli", "cs3sync.cli (python -m cs3sync emulator)"),
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{what} is not in the tree yet"
    return None


async def locate_home(target: Target, timeout: float = 30.0) -> Path:
    """Find the directory on the emulator's disk that the Jupyter root maps to, by saving a probe file."""
    name = "bench-probe.txt"
    await target.rest.put(name, {"type": "file", "format": "text", "content": "probe"})
    started = time.perf_counter()
    root = target.disk_root
    while time.perf_counter() - started < timeout:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if name in filenames:
                home = Path(dirpath)
                await target.rest.delete(name)
                return home
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the probe file did not appear under the emulator root within {timeout:.0f} s")
