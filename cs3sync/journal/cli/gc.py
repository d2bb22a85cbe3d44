"""`python -m cs3sync gc` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli.actions import add_gc_arguments as add_arguments
from cs3sync.journal.cli.actions import run_gc as run

__all__ = ["add_arguments", "run"]
