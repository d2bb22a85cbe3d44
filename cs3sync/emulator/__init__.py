"""A wire-faithful local CS3 gateway (gRPC GatewayAPI + HTTP data plane) with fault injection.

Imported only by tests and the CLI; nothing in ``cs3sync.cs3`` or ``contents`` may import it.
"""

from .config import DEMO_USERS, PROFILES, EmulatorConfig, UserSpec
from .faults import (
    Deadline,
    Delay,
    DropAfter,
    DropReply,
    GrpcAbort,
    Hang,
    Rule,
    StallAfter,
    Status,
    Throttle,
    Unavailable,
    WrongLength,
)
from .server import Emulator, EmulatorThread

__all__ = [
    "DEMO_USERS",
    "PROFILES",
    "Deadline",
    "Delay",
    "DropAfter",
    "DropReply",
    "Emulator",
    "EmulatorConfig",
    "EmulatorThread",
    "GrpcAbort",
    "Hang",
    "Rule",
    "StallAfter",
    "Status",
    "Throttle",
    "Unavailable",
    "UserSpec",
    "WrongLength",
]
