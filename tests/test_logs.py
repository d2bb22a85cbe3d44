"""One logging pipeline: structlog events go through stdlib logging (in fresh interpreters, since the
tests' own process has its logging set up by pytest)."""

from __future__ import annotations

import subprocess
import sys


def _run(script: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", script]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)


def test_the_cli_shows_warnings_through_its_stdlib_handler() -> None:
    out = _run(
        "import logging\n"
        "from cs3sync.cli import configure_cli_logging\n"
        "from cs3sync.logs import get_logger\n"
        "configure_cli_logging(logging.WARNING)\n"
        "log = get_logger('cs3sync.engine')\n"
        "log.debug('hidden-debug'); log.info('hidden-info'); log.warning('shown-warning', path='/x')\n"
    )
    assert "WARNING cs3sync.engine: shown-warning path=/x" in out.stderr
    assert "hidden" not in out.stderr + out.stdout


def test_the_server_logger_governs_handlers_and_level() -> None:
    """What the Jupyter extension does: cs3sync's records reach the server's handler, filtered by the
    server's level (``--log-level``), also when that level changes after start."""
    out = _run(
        "import logging, sys\n"
        "from cs3sync.logs import attach_to, get_logger\n"
        "server = logging.getLogger('ServerApp'); server.propagate = False\n"
        "h = logging.StreamHandler(sys.stdout)\n"
        "h.setFormatter(logging.Formatter('[%(levelname)s %(name)s] %(message)s'))\n"
        "server.addHandler(h); server.setLevel(logging.INFO)\n"
        "log = get_logger('cs3sync.cs3.client')\n"
        "log.debug('early-debug')\n"
        "attach_to(server)\n"
        "log.debug('hidden-debug'); log.info('shown-info', op='save')\n"
        "server.setLevel(logging.DEBUG)\n"
        "log.debug('shown-debug')\n"
    )
    assert "[INFO cs3sync.cs3.client] shown-info op=save" in out.stdout
    assert "[DEBUG cs3sync.cs3.client] shown-debug" in out.stdout
    assert "hidden" not in out.stdout + out.stderr and "early" not in out.stdout + out.stderr


def test_a_logged_traceback_shows_no_local_variables() -> None:
    out = _run(
        "import logging\n"
        "from cs3sync.cli import configure_cli_logging\n"
        "from cs3sync.logs import get_logger\n"
        "configure_cli_logging(logging.WARNING)\n"
        "def login(secret):\n"
        "    raise ValueError('refused')\n"
        "try:\n"
        "    login('hunter2-token')\n"
        "except ValueError:\n"
        "    get_logger('cs3sync.cs3.auth').exception('auth.failed')\n"
    )
    assert "auth.failed" in out.stderr and "ValueError: refused" in out.stderr
    assert "hunter2" not in out.stderr
