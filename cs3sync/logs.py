"""One logging pipeline: structlog events become records of the stdlib logger of the same name.

Modules log key=value events with ``get_logger(__name__)`` from here. `route_structlog_to_stdlib` (run when
this module is imported) drops an event the stdlib logger would not emit before rendering it, renders the
rest to one line (``event key=value ...``) and hands it to ``logging.getLogger(name)``. So whatever governs
stdlib logging governs cs3sync: Jupyter's handlers and ``--log-level`` (`attach_to`), the CLI's handler
(`cs3sync.cli.configure_cli_logging`), pytest's log capture. Events never carry tokens, passwords or file
contents (the callers make sure); this only routes and renders them.
"""

from __future__ import annotations

import logging

import structlog

#: The logger every cs3sync module logs under (``cs3sync.engine``, ``cs3sync.cs3.client``, ...).
ROOT = "cs3sync"

#: Libraries whose per-operation debug records we silence: aiosqlite logs every statement it runs, with
#: its parameters (which can hold transfer tokens), from its worker thread.
_CHATTY = ("aiosqlite",)


def route_structlog_to_stdlib() -> None:
    """Configure structlog to render through stdlib logging. Leaves a host's own structlog config alone."""
    for name in _CHATTY:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            # plain tracebacks: the default (rich) one prints local variables, which may hold secrets
            structlog.dev.ConsoleRenderer(
                colors=False, pad_event_to=0, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def attach_to(parent: logging.Logger) -> None:
    """Send cs3sync's records through ``parent`` (the Jupyter server's logger): its handlers, its level.

    jupyter_server hooks tornado's loggers up to its own the same way. The level stays unset here, so it
    follows ``parent`` (``--log-level``)."""
    logger = logging.getLogger(ROOT)
    logger.parent = parent
    logger.propagate = True
    logger.setLevel(logging.NOTSET)  # also clears the loggers' cached levels, which the new parent changes


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The structlog logger of a cs3sync module (``name`` = its ``__name__``)."""
    return structlog.stdlib.get_logger(name)


route_structlog_to_stdlib()
