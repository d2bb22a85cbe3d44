"""Read-side CLI of the journal: ``python -m cs3sync status | retry | discard | resolve | pause | resume |
gc``. These commands never take the owner lock: they open the journal read-only and make their few
changes through short write transactions (see docs/decisions.md), so they work while a server runs.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` for the registry in
``cs3sync/cli.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio

from cs3sync.journal.errors import JournalError, JournalUnreadable
from cs3sync.journal.paths import default_journal_dir
from cs3sync.journal.store import Journal

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_PROBLEMS = 2
EXIT_UNREADABLE = 3

T = TypeVar("T")


def add_journal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal-dir",
        type=Path,
        help="journal directory (default: $CS3SYNC_JOURNAL_DIR, else $XDG_STATE_HOME/cs3sync/<account-hash>/ "
        "for --host/--user, else the only journal found there)",
    )
    parser.add_argument("--host", help="gateway host of the account (to locate its journal)")
    parser.add_argument("--user", help="user name of the account (to locate its journal)")


def journal_dir(args: argparse.Namespace) -> Path:
    """--journal-dir, else $CS3SYNC_JOURNAL_DIR, else the account's default, else the single journal
    under $XDG_STATE_HOME/cs3sync/."""
    if args.journal_dir:
        return Path(args.journal_dir).expanduser()
    if os.environ.get("CS3SYNC_JOURNAL_DIR"):
        return Path(os.environ["CS3SYNC_JOURNAL_DIR"]).expanduser()
    if args.host and args.user:
        return default_journal_dir(args.host, args.user)
    base = default_journal_dir("", "").parent
    found = sorted(p.parent for p in base.glob("*/journal.db")) if base.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise JournalUnreadable(f"no journal found under {base}; pass --journal-dir")
    listing = ", ".join(str(p) for p in found)
    raise JournalUnreadable(f"several journals found ({listing}); pass --journal-dir or --host/--user")


def run_with_journal(args: argparse.Namespace, action: Callable[[Journal], Awaitable[int]]) -> int:
    """Open the journal read-only, run ``action``; exit code 3 when the journal cannot be read."""

    async def main() -> int:
        try:
            journal = await Journal.open(journal_dir(args), owner=False)
        except JournalUnreadable as exc:
            print(f"cs3sync: journal unreadable: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
        async with journal:
            try:
                return await action(journal)
            except JournalError as exc:
                print(f"cs3sync: {exc}", file=sys.stderr)
                return EXIT_PENDING

    try:
        return anyio.run(main)
    except KeyboardInterrupt:
        return 130
