"""`python -m cs3sync pause` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli import add_journal_arguments as add_arguments
from cs3sync.journal.cli.actions import run_pause as run

__all__ = ["add_arguments", "run"]
