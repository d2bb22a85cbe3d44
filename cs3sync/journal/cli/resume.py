"""`python -m cs3sync resume` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli import add_journal_arguments as add_arguments
from cs3sync.journal.cli.actions import run_resume as run

__all__ = ["add_arguments", "run"]
