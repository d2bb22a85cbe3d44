"""What the client's parts (namespace, locking, sharing, uploads, downloads) use of the client, as a
Protocol: they depend on this instead of on `client` (which imports them), so the package has no import
circle. They call each other through the client, so a test that replaces ``client.stat`` sees every Stat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

import cs3.storage.provider.v1beta1.resources_pb2 as spr

from . import convert, errors
from .config import CS3Config
from .gateway import Gateway
from .retry import Sleep
from .transfer import DataPlane
from .types import FileId, Lock, Quota, ResourceInfo, Version

T = TypeVar("T")

#: An absolute path, or a resource id.
Target = str | FileId


def reference(target: Target) -> spr.Reference:
    """The CS3 reference of a path or a resource id."""
    if isinstance(target, FileId):
        return convert.ref(".", target)
    return convert.ref(target)


def label(target: Target) -> str:
    """A target as errors and logs name it."""
    return target if isinstance(target, str) else str(target)


class ClientParts(Protocol):
    """The part of `CS3Client` its parts run on."""

    config: CS3Config
    gateway: Gateway
    data: DataPlane
    sleep: Sleep

    async def stat(self, target: Target, *, metadata_keys: Iterable[str] = ()) -> ResourceInfo: ...

    async def stat_or_none(
        self, target: Target, *, metadata_keys: Iterable[str] = ()
    ) -> ResourceInfo | None: ...

    async def stat_raw(self, target: Target, metadata_keys: Iterable[str] = ()) -> spr.ResourceInfo: ...

    async def get_path(self, file_id: FileId) -> str: ...

    async def home(self) -> str: ...

    async def list_versions(self, path: str) -> list[Version]: ...

    async def set_metadata(
        self, target: Target, values: dict[str, str], *, lock_id: str | None = None
    ) -> None: ...

    async def unset_metadata(
        self, target: Target, keys: Iterable[str], *, lock_id: str | None = None
    ) -> None: ...

    async def get_lock(self, path: str) -> Lock | None: ...

    async def quota(self, path: str | None = None) -> Quota: ...

    async def locked_error(self, path: str, err: errors.CS3Error) -> errors.Locked: ...

    async def retry(self, fn: Callable[[], Awaitable[T]]) -> T: ...
