"""``python -m benchmarks [--quick] [--only listing,save,...] [--report]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks import machine, peer, report
from benchmarks.env import Bench, Sizes
from benchmarks.results import SCHEMA, Measurement
from benchmarks.suites import derived, journal, listing, resume, save, storm, upload, writes

WORKDIR = Path(__file__).resolve().parent / ".work"

Suite = Callable[[Bench], Awaitable[Measurement]]
# Run order: the storm stops the emulator and resume kills the server, so they come last.
SUITES: dict[str, Suite] = {
    "listing": listing.run,
    "save": save.run,
    "writes": writes.run,
    "upload": upload.run,
    "journal": journal.run,
    "resume": resume.run,
    "storm": storm.run,
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(sizes: Sizes, only: set[str] | None, workdir: Path) -> dict[str, object]:
    started = time.perf_counter()
    empty_workdir(workdir)
    bench = Bench(workdir, sizes)
    measurements: list[Measurement] = []
    try:
        log(
            "starting servers (local manager; CS3 manager on the emulator, cernbox and ocis profiles; "
            f"{peer.LABEL} on the emulator, cernbox profile, installed first if needed)"
        )
        await bench.start_local()
        await asyncio.gather(
            bench.start_cs3("cs3", "cernbox", tus=False),
            bench.start_cs3("cs3-tus", "ocis", tus=True),
            bench.start_peer("cs3-jupyter", "cernbox"),
        )
        for label, reason in bench.unavailable.items():
            log(f"{label}: not available: {reason.splitlines()[0] if reason else ''}")
        for key, suite in SUITES.items():
            if only and key not in only:
                continue
            for target in bench.targets.values():
                if not await target.settle():
                    log(f"{target.label}: the journal still had pending entries after 120 s")
            log(f"{key} ...")
            t0 = time.perf_counter()
            try:
                measurement = await suite(bench)
            except Exception as exc:
                traceback.print_exc()
                measurement = Measurement(key, key, "", "")
                measurement.not_available("run", f"{type(exc).__name__}: {exc}")
            measurement.seconds = time.perf_counter() - t0
            log(f"{key} done in {measurement.seconds:.1f} s")
            measurements.append(measurement)
        if not only or "upload" in only or "listing" in only or "save" in only:
            measurements.append(derived.stall(bench))
        if not only or "upload" in only:
            measurements.append(derived.memory(bench))
    finally:
        await bench.stop_all()
        await asyncio.to_thread(clean_workdir, workdir)
    return {
        "schema": SCHEMA,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": sizes.quick,
        "duration_s": time.perf_counter() - started,
        "machine": machine.describe(),
        "sizes": {k: v for k, v in sizes.__dict__.items()},
        "unavailable": bench.unavailable,
        "measurements": [m.to_json() for m in measurements],
    }


def empty_workdir(workdir: Path) -> None:
    """Everything from the last run goes, except the peer package's virtualenv (installed once)."""
    os.makedirs(workdir, exist_ok=True)
    for child in workdir.iterdir():
        if child.name == peer.VENV_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def clean_workdir(workdir: Path) -> None:
    """Free the disk (the full run leaves GiBs of uploads, spools and storage); keep the servers' logs
    and the peer package's virtualenv."""
    for dirpath, dirnames, filenames in os.walk(workdir, topdown=False):
        if Path(dirpath).relative_to(workdir).parts[:1] == (peer.VENV_NAME,):
            continue
        for name in filenames:
            if not name.endswith(".log"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(dirpath, name))  # only succeeds when empty


def results_path(quick: bool) -> Path:
    day = dt.date.today().isoformat()
    host = socket.gethostname().split(".")[0] or "host"
    return report.RESULTS_DIR / f"{day}-{host}{'-quick' if quick else ''}.json"


def run_snapshot(argv: list[str]) -> int:
    """Run the benchmarks on ``git archive HEAD`` (others may be editing the shared work tree), record the
    results here and regenerate the tables here."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=report.REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="cs3sync-bench-") as tmp:
        source = Path(tmp)
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=report.REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
        log(f"measuring commit {commit[:10]} from a snapshot of HEAD")
        env = dict(os.environ, PYTHONPATH=str(source), CS3SYNC_BENCH_COMMIT=commit)
        if not any(a.startswith("--workdir") for a in argv):
            argv = [*argv, "--workdir", str(WORKDIR)]
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", *argv, "--results-dir", str(report.RESULTS_DIR)],
            cwd=source,
            env=env,
        )
    if done.returncode == 0 and "--only" not in argv and "--no-save" not in argv:
        latest = report.latest_results()
        if latest is not None:
            report.write_reports(latest)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes; finishes in under 2 minutes")
    parser.add_argument("--only", help="comma-separated suites: " + ",".join(SUITES))
    parser.add_argument(
        "--report", action="store_true", help="only regenerate the tables from the latest results"
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print the results JSON instead of recording it"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one size (e.g. listing=10000,50000 or storm=50); see benchmarks/env.py Sizes",
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="measure the last commit (git archive HEAD into a scratch directory), not the work tree",
    )
    parser.add_argument("--results-dir", type=Path, default=report.RESULTS_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help="scratch directory (emptied first)")
    args = parser.parse_args(argv)

    if args.snapshot:
        return run_snapshot([a for a in (argv if argv is not None else sys.argv[1:]) if a != "--snapshot"])

    if args.report:
        latest = report.latest_results()
        if latest is None:
            print("no results recorded yet", file=sys.stderr)
            return 1
        report.write_reports(latest)
        log(f"tables regenerated from {latest.name}")
        return 0

    only = {s.strip() for s in args.only.split(",")} if args.only else None
    if only and not only <= set(SUITES):
        parser.error(f"unknown suite(s): {', '.join(sorted(only - set(SUITES)))}")
    sizes = Sizes.quick_run() if args.quick else Sizes.full()
    try:
        sizes = sizes.override(args.set)
    except (KeyError, ValueError) as exc:
        parser.error(f"--set: {exc}")
    results = asyncio.run(run(sizes, only, args.workdir))
    text = json.dumps(results, indent=2, default=str) + "\n"
    if args.no_save or only or args.set:
        print(text)
        if (only or args.set) and not args.no_save:
            log("partial or resized run (--only/--set): results printed, not recorded")
        return 0
    path = args.results_dir / results_path(sizes.quick).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if args.results_dir == report.RESULTS_DIR:
        report.write_reports(path)
    log(f"results in benchmarks/results/{path.name}; tables in benchmarks/README.md and docs/performance.md")
    log(f"total {results['duration_s']:.0f} s")
    return 0
