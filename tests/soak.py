"""The kill -9 soak (``make soak``; not part of ``make test``): a real Jupyter server on CS3ContentsManager,
a random REST workload of one user (save, overwrite, read, rename, delete), and SIGKILL of the server at
random moments, again and again, against an emulator in a process of its own. Then the invariant:

- lost: an acknowledged change (a 2xx) missing from what the server shows, or from the storage at the end
- wrong: our file holds other bytes than our last acknowledged save (a read, or the storage at the end)
- duplicated: an item on the storage the model does not have (both names of a rename, a resurrected delete)
- transient 404/409: a 404 or 409 on one of our own files that the model says exists (read-your-writes)
- false conflicts: a conflict or a conflict copy, when nobody else touches the storage
- failed: entries parked as failed, and answers other than the expected ones (5xx included)

A request cut off by the kill was not acknowledged: its effect may or may not be there; the first read
after the restart settles it, and it must be one of the two. Everything must be 0. Exit status 1 if not.

    python tests/soak.py --cycles 20 [--profile cernbox|ocis] [--seconds 600] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

FOLDER = "soak"
NAMES = [f"f{i}.txt" for i in range(8)]
ABSENT = None  # a name the model holds no file under


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """``python -m cs3sync emulator`` in a process of its own (it outlives every server we kill)."""

    def __init__(self, root: Path, profile: str) -> None:
        self.root = root
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cs3sync", "emulator", "--root", str(root), "--profile", profile],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        info: dict[str, str] = {}
        for _ in range(3):
            key, _, value = self.proc.stdout.readline().strip().partition(": ")
            info[key] = value
        self.grpc, self.http = info["grpc"], info["http"]
        admin = httpx.get(f"{self.http}/_admin/info", timeout=10).json()
        self.home = admin["homes"]["einstein"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Server:
    """``jupyter_server`` with CS3ContentsManager on one journal; killed with SIGKILL, started again."""

    def __init__(self, work: Path, emulator: Emulator, write_through: float) -> None:
        self.work = work
        self.token = os.urandom(12).hex()  # a per-run secret
        secret = work / "einstein.secret"
        secret.write_text("relativity\n")
        secret.chmod(0o600)
        config = work / "config" / "jupyter_server_config.json"
        config.parent.mkdir(parents=True)
        config.write_text(
            json.dumps(
                {
                    "ServerApp": {
                        "contents_manager_class": "contents.manager.CS3ContentsManager",
                        "jpserver_extensions": {"contents": True},
                    },
                    "CS3Sync": {
                        "host": emulator.grpc, "ssl_enabled": False, "auth_login_type": "basic",
                        "client_id": "einstein", "token_path": str(secret), "root_path": emulator.home,
                        "journal_dir": str(work / "journal"), "write_through_timeout": write_through,
                    },
                    "CS3ContentsManager": {
                        "engine_options": {
                            "backoff_base": 0.1, "backoff_max": 1.0,
                            "offline_probe_interval": 0.5, "offline_probe_max": 2.0,
                        }
                    },
                }
            )
        )  # fmt: skip
        self.config_dir = config.parent
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
        env["JUPYTER_CONFIG_DIR"] = str(self.config_dir)
        env["JUPYTER_RUNTIME_DIR"] = str(self.work / "runtime")
        cmd = [sys.executable, "-m", "jupyter_server", f"--port={self.port}", "--ip=127.0.0.1",
               "--no-browser", f"--IdentityProvider.token={self.token}"]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = (self.work / f"server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.work, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited"
            try:
                if self.request("GET", "status")[0] == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # waiting for a process we just started
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def request(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        """(status, JSON body); raises httpx.TransportError when the server dies under the request."""
        reply = httpx.request(
            method,
            f"http://127.0.0.1:{self.port}/api/{path}",
            params=params,
            json=body,
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            trust_env=False,
        )
        try:
            return reply.status_code, reply.json()
        except ValueError:
            return reply.status_code, None  # an empty or HTML answer


class Soak:
    def __init__(self, server: Server, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.model: dict[str, bytes | None] = dict.fromkeys(NAMES, ABSENT)
        # Names whose last change was cut off by a kill: either value may be there.
        self.uncertain: dict[str, set[bytes | None]] = {}
        self.figures: Counter[str] = Counter()
        self.problems: list[str] = []
        self.seq = 0

    def problem(self, kind: str, message: str) -> None:
        self.figures[kind] += 1
        self.problems.append(f"{kind}: {message}")

    # ------------------------------------------------------------------ one step of the workload
    def step(self) -> None:
        """One random request; a transport error (the kill) leaves its names uncertain and re-raises."""
        known = [n for n, v in self.model.items() if v is not None and n not in self.uncertain]
        free = [n for n, v in self.model.items() if v is None and n not in self.uncertain]
        choice = self.rng.random()
        if choice < 0.4 or not known:
            name = self.rng.choice(known + free) if self.rng.random() < 0.7 or not free else free[0]
            if name in self.uncertain:
                return
            self.seq += 1
            data = f"{name} save {self.seq} {self.rng.random()}\n".encode()
            self.cut_off({name: {self.model[name], data}})
            code, _ = self.server.request("PUT", f"contents/{FOLDER}/{name}", _file(data))
            self.uncertain.pop(name)
            if code in (200, 201):
                self.model[name] = data
                self.figures["acknowledged"] += 1
            else:
                self.unexpected("PUT", name, code)
        elif choice < 0.75:
            name = self.rng.choice(known)
            self.read(name)
        elif choice < 0.88 and free:
            src, dst = self.rng.choice(known), self.rng.choice(free)
            self.cut_off({src: {self.model[src], None}, dst: {None, self.model[src]}})
            code, _ = self.server.request("PATCH", f"contents/{FOLDER}/{src}", {"path": f"{FOLDER}/{dst}"})
            self.uncertain.pop(src), self.uncertain.pop(dst)
            if code == 200:
                self.model[dst], self.model[src] = self.model[src], None
                self.figures["acknowledged"] += 1
            else:
                self.unexpected("PATCH", src, code)
        else:
            name = self.rng.choice(known)
            self.cut_off({name: {self.model[name], None}})
            code, _ = self.server.request("DELETE", f"contents/{FOLDER}/{name}")
            self.uncertain.pop(name)
            if code == 204:
                self.model[name] = None
                self.figures["acknowledged"] += 1
            else:
                self.unexpected("DELETE", name, code)

    def cut_off(self, outcomes: dict[str, set[bytes | None]]) -> None:
        """What the next request may leave behind if the kill cuts it off (before its answer)."""
        self.uncertain.update(outcomes)

    def unexpected(self, method: str, name: str, code: int) -> None:
        if code == 404:
            self.problem("transient_404", f"{method} {name} -> 404")
        elif code == 409:
            self.problem("transient_409", f"{method} {name} -> 409")
        else:
            self.problem("failed", f"{method} {name} -> {code}")

    def read(self, name: str) -> None:
        """Read-your-writes: our file with our last acknowledged bytes, or a 404 for a name we freed."""
        code, model = self.server.request("GET", f"contents/{FOLDER}/{name}", format="text", type="file")
        want = self.model[name]
        if want is None:
            if code != 404:
                self.problem("duplicated", f"GET {name}: {code}, expected 404 (deleted or renamed away)")
            return
        if code != 200:
            self.unexpected("GET", name, code)
        elif model["content"].encode() != want:
            self.problem("wrong", f"GET {name}: other bytes than our last save")
        self.figures["reads"] += 1

    def settle_uncertain(self) -> None:
        """After a restart: a change the kill cut off is there or not, nothing else."""
        for name, options in sorted(self.uncertain.items()):
            code, model = self.server.request("GET", f"contents/{FOLDER}/{name}", format="text", type="file")
            got = model["content"].encode() if code == 200 else None if code == 404 else b"?"
            if got not in options:
                kind = "lost" if got is None else "wrong"
                self.problem(kind, f"{name} after a kill: {code}, neither of the two possible states")
            self.model[name] = got if got in options else self.model[name]
            self.figures["cut_off"] += 1
        self.uncertain.clear()

    def check_all(self) -> None:
        for name in NAMES:
            self.read(name)

    # ------------------------------------------------------------------ the end
    def drained(self, timeout: float = 180.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, journal = self.server.request("GET", "cs3sync/journal")
            if code == 200 and journal["pending"] == 0:
                counts = journal["counts"]
                self.figures["conflict_entries"] = counts.get("conflict", 0)
                self.figures["failed_entries"] = counts.get("failed", 0)
                return True
            time.sleep(0.5)  # waiting for the engine to apply what is left
        return False

    def check_storage(self, disk: Path) -> None:
        on_disk = {p.name: p.read_bytes() for p in disk.iterdir() if p.is_file()} if disk.exists() else {}
        for name, want in self.model.items():
            got = on_disk.pop(name, None)
            if want is not None and got is None:
                self.problem("lost", f"{name} missing from the storage")
            elif want is not None and got != want:
                self.problem("wrong", f"{name} on the storage holds other bytes")
            elif want is None and got is not None:
                self.problem("duplicated", f"{name} on the storage, deleted or renamed away by us")
        for name in on_disk:
            kind = "false_conflicts" if "conflicted copy" in name else "duplicated"
            self.problem(kind, f"{name} on the storage, not ours")


def _file(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": data.decode()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=20, help="kill -9 cycles (default 20)")
    parser.add_argument("--seconds", type=float, default=900, help="stop starting cycles after this long")
    parser.add_argument("--profile", choices=["cernbox", "ocis"], default="cernbox")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--write-through", type=float, default=0.5, help="write_through_timeout (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, journal)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="cs3sync-soak-"))
    print(f"soak: profile {args.profile}, seed {seed}, {args.cycles} kill -9 cycles, work dir {work}")
    emulator = Emulator(work / "root", args.profile)
    server = Server(work, emulator, args.write_through)
    soak = Soak(server, rng)
    started = time.monotonic()
    try:
        server.start()
        code, _ = server.request("PUT", f"contents/{FOLDER}", {"type": "directory"})
        assert code in (200, 201), code
        cycles = 0
        while cycles < args.cycles and time.monotonic() - started < args.seconds:
            killer = threading.Timer(rng.uniform(0.3, 3.0), server.kill)
            killer.start()
            try:
                while True:
                    soak.step()
            except httpx.TransportError:
                pass  # the kill cut the request off
            killer.join()
            cycles += 1
            soak.figures["kills"] += 1
            server.start()
            soak.settle_uncertain()
            soak.check_all()  # right after the restart: everything acknowledged reads back
            print(f"  cycle {cycles}: {dict(soak.figures)}", flush=True)
        if not soak.drained():
            soak.problem("failed", "the queue did not drain in 180 s")
        soak.check_all()
        server.stop()
        soak.check_storage(work / "root" / "einstein" / FOLDER)
    finally:
        server.kill()
        emulator.stop()
    f = soak.figures
    f["false_conflicts"] += f["conflict_entries"]
    f["failed"] += f["failed_entries"]
    print(
        f"soak: {f['kills']} kill -9 cycles in {time.monotonic() - started:.0f} s, {f['acknowledged']} "
        f"acknowledged changes, {f['reads']} reads, {f['cut_off']} requests cut off by a kill; "
        f"lost {f['lost']}, wrong {f['wrong']}, duplicated {f['duplicated']}, transient 404 "
        f"{f['transient_404']}, transient 409 {f['transient_409']}, false conflicts {f['false_conflicts']}, "
        f"failed {f['failed']}"
    )
    for line in soak.problems[:50]:
        print("  " + line)
    if not args.keep and not soak.problems:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 1 if soak.problems else 0


if __name__ == "__main__":
    sys.exit(main())
