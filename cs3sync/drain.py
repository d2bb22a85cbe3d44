"""``python -m cs3sync drain``: apply the journal's pending commands without Jupyter.

Runs the engine as the journal's owner until nothing is queued, running or retrying (blocked entries
wait for the network or a new token, so they end the drain too), showing progress, then exits with the
code of ``status``: 0 nothing pending, 1 pending (blocked, or the timeout hit), 2 a conflict or failure is
present, 3 the journal cannot be opened (e.g. a server owns it: then that server applies the queue).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from cs3sync.journal.cli import EXIT_UNREADABLE, add_journal_arguments, journal_dir
from cs3sync.journal.cli.status import exit_code
from cs3sync.journal.errors import JournalError, JournalLocked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    parser.add_argument(
        "--token-path", help="file holding the secret/token for --user (basic/bearer/machine)"
    )
    parser.add_argument("--auth-login-type", default="basic", choices=["basic", "bearer", "machine"])
    parser.add_argument("--insecure", action="store_true", help="plain-text gRPC (the local emulator)")
    parser.add_argument("--no-tus", action="store_true", help="never use tus uploads")
    parser.add_argument(
        "--upload-chunk-size", type=int, default=16 * 1024 * 1024, help="tus chunk size (default 16 MiB)"
    )
    parser.add_argument(
        "--tus-threshold", type=int, default=8 * 1024 * 1024, help="use tus from this size (default 8 MiB)"
    )
    parser.add_argument("--workers", type=int, default=4, help="parallel commands (default 4)")
    parser.add_argument(
        "--large-upload-limit", type=int, default=2, help="parallel large uploads (default 2)"
    )
    parser.add_argument(
        "--probe-interval", type=float, default=15.0, help="first offline probe delay in seconds (default 15)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after this many seconds (default: never)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def run(args: argparse.Namespace) -> int:
    try:
        return anyio.run(drain, args)
    except KeyboardInterrupt:
        return 130


async def drain(args: argparse.Namespace) -> int:
    # Imported here so `python -m cs3sync --help` stays fast and import errors name the command.
    from cs3sync.cs3 import CS3Client, CS3Config
    from cs3sync.engine import SyncEngine

    console = Console(stderr=True, quiet=args.quiet)
    try:
        jdir = journal_dir(args)
    except JournalError as exc:
        console.print(f"cs3sync drain: {exc}")
        return EXIT_UNREADABLE
    if not args.host or not args.user:
        console.print("cs3sync drain: --host and --user are needed to reach the storage")
        return EXIT_UNREADABLE
    config = CS3Config(
        host=args.host,
        client_id=args.user,
        token_path=args.token_path or "",
        auth_login_type=args.auth_login_type,
        ssl_enabled=not args.insecure,
        tus_enabled=not args.no_tus,
        upload_chunk_size=args.upload_chunk_size,
        tus_threshold=args.tus_threshold,
    )
    async with CS3Client(config) as client:
        engine = SyncEngine(
            client,
            journal_dir=jdir,
            workers=args.workers,
            large_upload_limit=args.large_upload_limit,
            offline_probe_interval=args.probe_interval,
        )
        try:
            await engine.start()
        except JournalLocked as exc:
            console.print(f"cs3sync drain: {exc}; that process applies the queue")
            return EXIT_UNREADABLE
        except JournalError as exc:
            console.print(f"cs3sync drain: journal unreadable: {exc}")
            return EXIT_UNREADABLE
        try:
            if engine.paused:
                console.print("cs3sync drain: the journal is paused (`python -m cs3sync resume`)")
            else:
                await _run_until_idle(engine, console, args.timeout)
            counts = await engine.journal.counts()
        finally:
            await engine.stop()
    code = exit_code(counts)
    if engine.state != "online":
        console.print(f"cs3sync drain: stopped, storage {engine.state}: {engine.last_error or ''}")
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    console.print(f"cs3sync drain: {summary or 'journal empty'}")
    return code


async def _run_until_idle(engine: Any, console: Console, timeout: float | None) -> None:  # noqa: ASYNC109
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bars:
        overall = bars.add_task("pending", total=None)
        tasks: dict[int, Any] = {}
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                since = engine.changed.generation
                busy = [e for e in engine.active_entries() if e.state in ("queued", "running", "retrying")]
                bars.update(overall, description=f"{len(busy)} pending")
                progress = engine.progress()
                for entry_id, p in progress.items():
                    if entry_id not in tasks:
                        tasks[entry_id] = bars.add_task(p.path.rsplit("/", 1)[-1], total=p.total)
                    bars.update(tasks[entry_id], completed=p.sent, total=p.total)
                for entry_id in [i for i in tasks if i not in progress]:
                    bars.remove_task(tasks.pop(entry_id))
                if not busy:
                    return
                await engine.changed.wait(since)
    if sys.stderr.isatty():
        console.print()
