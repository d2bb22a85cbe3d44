"""retry, discard, resolve, pause, resume, gc: small changes through short write transactions."""

from __future__ import annotations

import argparse
import sys

import anyio
import anyio.to_thread

from cs3sync.journal.cli import EXIT_OK, EXIT_PENDING, add_journal_arguments, run_with_journal
from cs3sync.journal.store import Journal


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="entry to retry (failed, conflict or blocked)")
    target.add_argument("--all-failed", action="store_true", help="retry every failed entry")
    parser.add_argument(
        "--force",
        action="store_true",
        help="retry a conflict by overwriting the remote version, or over newer commands on the same path",
    )


def run_retry(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        if args.all_failed:
            ids = await journal.retry_all_failed()
            print(f"requeued {len(ids)} failed entries" + (f": {', '.join(map(str, ids))}" if ids else ""))
            return EXIT_OK
        entry = await journal.retry(args.id, force=args.force)
        print(f"entry {entry.id} ({entry.op} {entry.path}) is queued again")
        return EXIT_OK

    return run_with_journal(args, action)


def add_discard_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    parser.add_argument("id", type=int, help="entry to discard")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def run_discard(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        entry = await journal.entry(args.id)
        if not args.yes:
            question = (
                f"Discard entry {entry.id} ({entry.op} {entry.path}, {entry.state})? It will not be applied; "
                "its data stays in the journal spool until gc removes it. [y/N] "
            )
            if not sys.stdin.isatty():
                print("cs3sync: not a terminal; pass --yes to discard", file=sys.stderr)
                return EXIT_PENDING
            answer = await anyio.to_thread.run_sync(input, question)
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing discarded")
                return EXIT_PENDING
        entry = await journal.discard(args.id)
        print(f"entry {entry.id} discarded")
        return EXIT_OK

    return run_with_journal(args, action)


def add_resolve_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    parser.add_argument("id", type=int, help="conflict or failed entry you have dealt with")


def run_resolve(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        entry = await journal.resolve(args.id)
        where = f"; your version is in {entry.conflict_path}" if entry.conflict_path else ""
        print(f"entry {entry.id} marked resolved{where}")
        return EXIT_OK

    return run_with_journal(args, action)


def run_pause(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        await journal.set_control(paused=True)
        print("paused: the engine applies no new commands until `cs3sync resume` (saves are still journaled)")
        return EXIT_OK

    return run_with_journal(args, action)


def run_resume(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        await journal.set_control(paused=False)
        print("resumed")
        return EXIT_OK

    return run_with_journal(args, action)


def add_gc_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the counters as JSON")


def run_gc(args: argparse.Namespace) -> int:
    async def action(journal: Journal) -> int:
        counters = await journal.gc()
        if args.json:
            import json

            print(json.dumps(counters, sort_keys=True))
        else:
            print(
                f"removed {counters['entries']} old entries, {counters['blobs']} blobs, "
                f"{counters['files']} stray files, {counters['staging']} abandoned uploads"
            )
        return EXIT_OK

    return run_with_journal(args, action, json_errors=args.json)
