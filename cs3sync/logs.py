"""One structlog configuration for the engine, the client and the CLI.

Unconfigured, structlog prints every event (debug included) on the event loop's thread; the host decides
the level instead: the Jupyter extension follows the server's log level, the CLI shows warnings and above.
Events never carry tokens, passwords or file contents (the callers make sure); this only filters and
renders them.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: int = logging.INFO, *, json: bool = False) -> None:
    """Filter events below ``level`` before they are rendered; ``json`` for machine-read logs.

    Leaves an application's own structlog configuration alone.
    """
    if structlog.is_configured():
        return
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
