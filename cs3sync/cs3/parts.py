"""What the upload and download orchestration use of the client, as a Protocol: `uploads` and `downloads`
depend on this instead of on `client` (which imports them), so the package has no import circle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from . import errors
from .config import CS3Config
from .gateway import Gateway
from .retry import Sleep
from .transfer import DataPlane
from .types import FileId, Lock, Quota, ResourceInfo

T = TypeVar("T")

#: An absolute path, or a resource id.
Target = str | FileId


class ClientParts(Protocol):
    """The part of `CS3Client` an upload or a download runs on."""

    config: CS3Config
    gateway: Gateway
    data: DataPlane
    sleep: Sleep

    async def stat(self, target: Target, *, metadata_keys: Iterable[str] = ()) -> ResourceInfo: ...

    async def stat_or_none(
        self, target: Target, *, metadata_keys: Iterable[str] = ()
    ) -> ResourceInfo | None: ...

    async def get_lock(self, path: str) -> Lock | None: ...

    async def quota(self, path: str | None = None) -> Quota: ...

    async def locked_error(self, path: str, err: errors.CS3Error) -> errors.Locked: ...

    async def retry(self, fn: Callable[[], Awaitable[T]]) -> T: ...
