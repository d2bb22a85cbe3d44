"""The hosts' structlog configuration filters by level (in a fresh interpreter: tests configure theirs)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, structlog
from cs3sync.logs import configure_logging
configure_logging(logging.WARNING)
log = structlog.get_logger("t")
log.debug("hidden-debug"); log.info("hidden-info"); log.warning("shown-warning", path="/x")
"""


def test_events_below_the_level_are_dropped() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert "shown-warning" in out.stderr and "path=/x" in out.stderr
    assert "hidden" not in out.stderr + out.stdout
