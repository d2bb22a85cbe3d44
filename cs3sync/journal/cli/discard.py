"""`python -m cs3sync discard` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli.actions import add_discard_arguments as add_arguments
from cs3sync.journal.cli.actions import run_discard as run

__all__ = ["add_arguments", "run"]
