"""`python -m cs3sync resolve` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli.actions import add_resolve_arguments as add_arguments
from cs3sync.journal.cli.actions import run_resolve as run

__all__ = ["add_arguments", "run"]
