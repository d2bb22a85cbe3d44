"""`CS3Client`: the one object the engine and the contents manager use to talk to CS3.

One client per server process and user. It owns one lazily connected grpc.aio channel (`Gateway`) and
one httpx client (`DataPlane`); creating it does no I/O, so it never blocks or fails when the gateway is
down. All methods are coroutines with deadlines, raise only `errors.CS3Error` subclasses, and return
`types` values.

The client is a thin facade over its parts, each one short method per gateway operation (a request
built, sent through the gateway, converted by `convert`):

- `NamespaceOps` (namespace.py): Stat, listings, create, delete, move, metadata, versions, quota, spaces;
- `LockOps` and `AttrLocks` (locking.py): locks, and their emulation through a metadata attribute;
- `SharingOps` (sharing.py): shares and public links;
- uploads.py / downloads.py: the transfers; identity (users, groups, home) is here.

The parts reach each other through the client (`parts.ClientParts`), never directly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
import cs3.gateway.v1beta1.gateway_api_pb2 as gw
import cs3.identity.group.v1beta1.group_api_pb2 as groupapi
import cs3.identity.group.v1beta1.resources_pb2 as grouppb
import cs3.identity.user.v1beta1.resources_pb2 as userpb
import cs3.identity.user.v1beta1.user_api_pb2 as userapi
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp

from cs3sync.logs import get_logger

from . import convert, errors
from .auth import Clock
from .config import CS3Config
from .downloads import DownloadStream
from .gateway import Gateway
from .locking import ATTR_LOCK_KEY, AttrLocks, LockOps
from .namespace import LIST_CONVERT_INLINE, NamespaceOps
from .retry import Sleep, retry_idempotent
from .sharing import SharingOps
from .transfer import DataPlane, Source
from .types import Group, LockContext, ResourceInfo, UploadSession, User
from .uploads import OnProgress, OnSession, Upload

log = get_logger(__name__)

T = TypeVar("T")

__all__ = ["ATTR_LOCK_KEY", "LIST_CONVERT_INLINE", "CS3Client"]


class CS3Client:
    def __init__(self, config: CS3Config, *, clock: Clock = time.time, sleep: Sleep | None = None) -> None:
        self.config = config
        self._clock = clock
        self.sleep: Sleep = sleep or anyio.sleep
        self.gateway = Gateway(config, clock=clock, sleep=sleep)
        self.data = DataPlane(config)
        self._home: str | None = None
        # The parts.
        self.lock_emulation = AttrLocks(self, clock)
        self.namespace = NamespaceOps(self, self.lock_emulation)
        self.locks = LockOps(self, self.lock_emulation, clock)
        self.sharing = SharingOps(self)
        # The facade: every part's public methods, under the client's name.
        n = self.namespace
        self.stat, self.stat_raw, self.stat_or_none, self.exists = (
            n.stat,
            n.stat_raw,
            n.stat_or_none,
            n.exists,
        )
        self.get_path, self.list = n.get_path, n.list
        self.mkdir, self.touch, self.delete, self.move = n.mkdir, n.touch, n.delete, n.move
        self.set_metadata, self.unset_metadata = n.set_metadata, n.unset_metadata
        self.list_versions, self.restore_version = n.list_versions, n.restore_version
        self.quota, self.spaces = n.quota, n.spaces
        k = self.locks
        self.new_lock_id, self.locked_error = k.new_lock_id, k.locked_error
        self.set_lock, self.get_lock, self.refresh_lock, self.unlock = (
            k.set_lock,
            k.get_lock,
            k.refresh_lock,
            k.unlock,
        )
        s = self.sharing
        self.create_share, self.update_share, self.remove_share = (
            s.create_share,
            s.update_share,
            s.remove_share,
        )
        self.list_outgoing_shares, self.list_incoming_shares = s.list_outgoing_shares, s.list_incoming_shares
        self.update_received_share = s.update_received_share
        self.create_link, self.update_link, self.remove_link = s.create_link, s.update_link, s.remove_link
        self.list_links = s.list_links

    def __repr__(self) -> str:
        return f"CS3Client(host={self.config.host!r}, user={self.config.client_id!r})"

    async def aclose(self) -> None:
        await self.data.aclose()
        await self.gateway.aclose()

    async def __aenter__(self) -> CS3Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def retry(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Retry an idempotent call on transient errors (config.retry_*; injectable sleep)."""
        cfg = self.config
        return await retry_idempotent(
            fn,
            attempts=cfg.retry_attempts,
            initial_wait=cfg.retry_initial_wait,
            max_wait=cfg.retry_max_wait,
            sleep=self.sleep,
        )

    # --- identity -----------------------------------------------------------------------------------

    async def login(self) -> None:
        """Log in now (otherwise the first call does). Raises AuthBlocked on bad credentials."""
        await self.gateway.auth.token()

    async def whoami(self) -> User:
        # WhoAmI wants the token in the request as well as in the metadata.
        resp = await self.gateway.call(
            "WhoAmI", lambda token: gw.WhoAmIRequest(token=token), op="whoami", idempotent=True
        )
        return convert.user(resp.user)

    async def home(self) -> str:
        if self._home is None:
            resp = await self.gateway.call("GetHome", sp.GetHomeRequest(), op="home", idempotent=True)
            self._home = resp.path
        return self._home

    async def find_users(self, query: str) -> list[User]:
        req = userapi.FindUsersRequest(
            filters=[userapi.Filter(type=userapi.Filter.TYPE_QUERY, query=query)],
            skip_fetching_user_groups=True,
        )
        resp = await self.gateway.call("FindUsers", req, op="find_users", idempotent=True)
        return [convert.user(u) for u in resp.users]

    async def find_groups(self, query: str) -> list[Group]:
        req = groupapi.FindGroupsRequest(
            filters=[groupapi.Filter(type=groupapi.Filter.TYPE_QUERY, query=query)],
            skip_fetching_members=True,
        )
        resp = await self.gateway.call("FindGroups", req, op="find_groups", idempotent=True)
        return [convert.group(g) for g in resp.groups]

    async def get_user(self, opaque_id: str, idp: str = "") -> User:
        req = userapi.GetUserRequest(
            user_id=userpb.UserId(idp=idp, opaque_id=opaque_id), skip_fetching_user_groups=True
        )
        resp = await self.gateway.call("GetUser", req, op="get_user", path=opaque_id, idempotent=True)
        return convert.user(resp.user)

    async def get_group(self, opaque_id: str, idp: str = "") -> Group:
        req = groupapi.GetGroupRequest(
            group_id=grouppb.GroupId(idp=idp, opaque_id=opaque_id), skip_fetching_members=True
        )
        resp = await self.gateway.call("GetGroup", req, op="get_group", path=opaque_id, idempotent=True)
        return convert.group(resp.group)

    # --- data ---------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def download(self, path: str, version_key: str | None = None) -> AsyncIterator[DownloadStream]:
        """``async with client.download(p) as stream: async for chunk in stream: ...``.

        Stats first (``stream.info`` is what is being read; a missing file raises NotFound here),
        checks the length, resumes after drops.
        """
        info = await self.stat(path)
        if info.is_dir:
            raise errors.InvalidArgument("is a directory", op="download", path=path)
        stream = DownloadStream(self, path, info, version_key)
        try:
            yield stream
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def read_bytes(self, path: str, version_key: str | None = None) -> bytes:
        async with self.download(path, version_key) as stream:
            return await stream.read()

    async def upload(
        self,
        path: str,
        source: Path | bytes,
        size: int | None = None,
        *,
        checksum_sha256: str | None = None,
        if_match: str | None = None,
        if_not_exist: bool = False,
        lock: LockContext | None = None,
        session: UploadSession | None = None,
        on_session: OnSession | None = None,
        mtime: float | None = None,
        precheck: bool = True,
        on_progress: OnProgress | None = None,
    ) -> ResourceInfo:
        """Upload ``source`` (a file, read off the loop, or bytes) to ``path`` and return its Stat.

        ``if_match``/``if_not_exist`` are sent and also checked with a Stat of ours (skip that Stat
        with ``precheck=False`` when the caller has just compared the etag itself). ``lock`` only while
        holding the lock. ``on_session`` receives the session after initiate and every confirmed tus
        offset; pass a recorded ``session`` back to resume it. ``on_progress(sent, total)`` is called
        synchronously as body bytes go out (simple PUT and tus PATCH alike). ``checksum_sha256`` is
        accepted for the caller's bookkeeping; Reva does not take sha256 upload checksums.
        """
        del checksum_sha256
        src = Source(source)
        if size is None:
            size = await src.size()
        if self.config.lock_as_attr and lock is not None:
            await self.lock_emulation.check_write(path, lock)
            lock = None  # the storage knows nothing of emulated locks; never send their id
        if self.config.lock_not_impl:
            lock = None
        up = Upload(
            self,
            path,
            src,
            size,
            if_match=if_match,
            if_not_exist=if_not_exist,
            lock=lock,
            mtime=mtime,
            on_session=on_session,
            precheck=precheck,
            on_progress=on_progress,
        )
        return await up.run(session)
