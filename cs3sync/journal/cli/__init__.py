"""Read-side CLI of the journal: ``python -m cs3sync status | retry | discard | resolve | pause | resume |
gc``. These commands never take the owner lock: they open the journal read-only and make their few
changes through short write transactions (see docs/decisions.md), so they work while a server runs.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` for the registry in
``cs3sync/cli.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio

from cs3sync.journal.errors import JournalError, JournalUnreadable
from cs3sync.journal.ownership import owner_alive
from cs3sync.journal.paths import default_journal_dir
from cs3sync.journal.store import Journal

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_PROBLEMS = 2
EXIT_UNREADABLE = 3
#: The object ``--json`` prints instead of a result when the command fails.
ERROR_SCHEMA = "cs3sync.error/1"

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


#: Where journals live under ``$XDG_STATE_HOME/cs3sync/``: one per account (``<account-hash>/``), and those
#: of ``python -m cs3sync lab`` (``lab/journal/<profile>/<user>/``, see contents/lab.py).
JOURNAL_GLOBS = ("*/journal.db", "lab/journal/*/*/journal.db")


def find_journals(base: Path) -> list[Path]:
    """Every journal directory under ``base``, in a stable order."""
    if not base.is_dir():
        return []
    return sorted({db.parent for pattern in JOURNAL_GLOBS for db in base.glob(pattern)})


def journal_dir(args: argparse.Namespace) -> Path:
    """--journal-dir, else $CS3SYNC_JOURNAL_DIR, else the account's default, else under
    $XDG_STATE_HOME/cs3sync/: the journal a running server owns (a lab, a notebook server, a drain) if
    exactly one is owned, else the only journal there."""
    if args.journal_dir:
        return Path(args.journal_dir).expanduser()
    if os.environ.get("CS3SYNC_JOURNAL_DIR"):
        return Path(os.environ["CS3SYNC_JOURNAL_DIR"]).expanduser()
    if args.host and args.user:
        return default_journal_dir(args.host, args.user)
    base = default_journal_dir("", "").parent
    found = find_journals(base)
    if len(found) == 1:
        return found[0]
    if not found:
        raise JournalUnreadable(f"no journal found under {base}; pass --journal-dir")
    running = [p for p in found if owner_alive(p / "journal.lock") is not None]
    if len(running) == 1:
        return running[0]
    listing = ", ".join(f"{p}{' (in use)' if p in running else ''}" for p in found)
    raise JournalUnreadable(f"several journals found ({listing}); pass --journal-dir or --host/--user")


def run_with_journal(
    args: argparse.Namespace, action: Callable[[Journal], Awaitable[int]], *, json_errors: bool = False
) -> int:
    """Open the journal read-only, run ``action``; exit code 3 when the journal cannot be read.
    ``json_errors``: report errors as one JSON object on stdout (schema ``cs3sync.error/1``), so a
    script reading ``--json`` output always gets JSON."""

    def report(exc: Exception, kind: str, code: int) -> int:
        if json_errors:
            error = {"schema": ERROR_SCHEMA, "error": kind, "message": str(exc), "exit_code": code}
            print(json.dumps(error, indent=2, sort_keys=True))
        else:
            prefix = "journal unreadable: " if kind == "journal_unreadable" else ""
            print(f"cs3sync: {prefix}{exc}", file=sys.stderr)
        return code

    async def main() -> int:
        try:
            journal = await Journal.open(journal_dir(args), owner=False)
        except JournalUnreadable as exc:
            return report(exc, "journal_unreadable", EXIT_UNREADABLE)
        async with journal:
            try:
                return await action(journal)
            except JournalError as exc:
                return report(exc, "journal_error", EXIT_PENDING)

    try:
        return anyio.run(main)
    except KeyboardInterrupt:
        return 130
