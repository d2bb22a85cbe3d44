"""The worker engine: applies journaled commands to CS3, durably and in order.

`SyncEngine` (sync_engine.py) is the facade the contents manager codes against (docs/engine.md). Its
parts, each one job, reach the engine through the `EngineHost` protocol (host.py):

- workers.py: the worker tasks (claim, run the executor under a renewed lease);
- outcomes.py: each result or failure becomes one journal transition (done, conflict, retrying with
  backoff, failed, blocked);
- connectivity.py: the offline breaker with its probe, and the auth pause;
- control.py: the cross-process control poll (`cs3sync pause/resume/retry`) and the heartbeat;
- progress.py: upload progress; context.py: what executors may use; journal_health.py: journal writes
  retried until they land; errors.py: what `SyncEngine.wait` raises.
"""

from cs3sync.clock import Clock, ManualClock, Signal
from cs3sync.engine.errors import ConflictError, EngineError, FailedError
from cs3sync.engine.outcomes import MAX_ATTEMPTS, MAX_INTERNAL_ERRORS
from cs3sync.engine.progress import Progress
from cs3sync.engine.sync_engine import Health, SyncEngine
from cs3sync.overlay import Overlay

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_INTERNAL_ERRORS",
    "Clock",
    "ConflictError",
    "EngineError",
    "FailedError",
    "Health",
    "ManualClock",
    "Overlay",
    "Progress",
    "Signal",
    "SyncEngine",
]
