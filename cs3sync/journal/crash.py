"""Named crash points for kill -9 tests.

``CS3SYNC_CRASH_AT=<label>:<n>`` makes the process die with ``os._exit(137)`` (no cleanup, no flush,
like SIGKILL) on the n-th time ``crash_point(label)`` is reached. Several rules may be given separated
by commas. Without the variable this is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
from collections import Counter

ENV = "CS3SYNC_CRASH_AT"

_hits: Counter[str] = Counter()


def _rules() -> dict[str, int]:
    rules: dict[str, int] = {}
    for part in os.environ.get(ENV, "").split(","):
        label, _, n = part.strip().rpartition(":")
        if label and n.isdigit():
            rules[label] = int(n)
    return rules


def crash_point(label: str) -> None:
    """Die like kill -9 if ``CS3SYNC_CRASH_AT`` asks for this label at this hit count."""
    if ENV not in os.environ:
        return
    wanted = _rules().get(label)
    if wanted is None:
        return
    _hits[label] += 1
    if _hits[label] == wanted:
        os._exit(137)
