"""What every part of the emulated storage shares: the settings, the clock, the state database and the
one re-entrant lock that serialises every mutation with its checks (docs/emulator.md, "Concurrency")."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from .clock import Clock
from .config import EmulatorConfig


@dataclass(frozen=True)
class Backing:
    config: EmulatorConfig
    clock: Clock
    db: sqlite3.Connection
    mutex: threading.RLock
    #: The emulator's own state (versions, uploads, recycle bin, tmp, the db): never reachable by a path.
    state_dir: Path
