"""``python -m cs3sync <command>``: a thin dispatcher over a registry of subcommands.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
register it in ``SUBCOMMANDS``. Only the chosen command's module is imported.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "emulator": ("cs3sync.emulator.cli", "run the local CS3 gateway emulator"),
    "lab": ("contents.lab", "JupyterLab on the embedded CS3 emulator with demo data"),
    # The journal's read-side commands (never take the owner lock).
    "status": ("cs3sync.journal.cli.status", "show pending, retrying, conflicted and failed commands"),
    "retry": ("cs3sync.journal.cli.retry", "queue a failed, conflicted or blocked command again"),
    "discard": ("cs3sync.journal.cli.discard", "drop a pending or failed command (data kept until gc)"),
    "resolve": ("cs3sync.journal.cli.resolve", "mark a conflict or failure as dealt with"),
    "pause": ("cs3sync.journal.cli.pause", "stop applying commands (saves are still journaled)"),
    "resume": ("cs3sync.journal.cli.resume", "apply commands again after pause"),
    "gc": ("cs3sync.journal.cli.gc", "apply retention now and remove unreferenced spool data"),
    # The engine without Jupyter (takes the owner lock).
    "drain": ("cs3sync.drain", "apply pending commands now, then exit with the status code"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="cs3sync", description="CS3 storage for Jupyter.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    if chosen != "lab":  # JupyterLab configures logging for itself
        configure_cli_logging(logging.WARNING)
    return int(args._run(args))


def configure_cli_logging(level: int = logging.WARNING) -> None:
    """The command line: warnings and errors on stderr, one line each. Plain stdlib logging: the commands
    that log through structlog import `cs3sync.logs`, which routes their events here; `status` on a big
    journal does not pay for importing structlog (with rich, ~0.15 s of its ~0.5 s)."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
