"""`python -m cs3sync retry` (see cs3sync.journal.cli.actions)."""

from cs3sync.journal.cli.actions import add_retry_arguments as add_arguments
from cs3sync.journal.cli.actions import run_retry as run

__all__ = ["add_arguments", "run"]
