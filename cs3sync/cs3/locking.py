"""Locks: the lock RPCs (SetLock, GetLock, RefreshLock, Unlock) with their weakly typed failures made
precise, and the lock emulation through a metadata attribute for storages without lock RPCs
(``lock_as_attr``). `AttrLocks` is the one owner of the emulation: its key, its format, its parser, and
the ``lock`` it fills into every Stat and listing the client returns."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import uuid
from collections.abc import Iterable

import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr

from . import convert, errors
from .auth import Clock
from .parts import ClientParts
from .types import Lock, LockContext, ResourceInfo

#: Metadata key of the lock emulation; the cs3client format ("app!lock_id!expiry") for interoperability.
ATTR_LOCK_KEY = "cs3client.advlock"


class AttrLocks:
    """Lock emulation through arbitrary metadata (storages without lock RPCs). Reva has no
    compare-and-set on metadata, so a take is write-then-verify: we write our value, read it back,
    and only a reader that sees its own value holds the lock. Two racing takers both read the last
    write, so at most one of them wins."""

    def __init__(self, client: ClientParts, clock: Clock) -> None:
        self._client = client
        self._clock = clock

    def _value(self, lock_id: str, app_name: str | None, expiration: float | None) -> str:
        exp = int(
            self._clock() + (expiration if expiration is not None else self._client.config.lock_expiration)
        )
        return f"{app_name or self._client.config.lock_app_name}!{lock_id}!{exp}"

    def metadata_keys(self, keys: Iterable[str]) -> builtins.list[str]:
        """The metadata a Stat or listing asks for: with ``lock_as_attr``, the emulated lock's too."""
        wanted = list(keys)
        if self._client.config.lock_as_attr and ATTR_LOCK_KEY not in wanted:
            wanted.append(ATTR_LOCK_KEY)
        return wanted

    def with_lock(self, info: ResourceInfo) -> ResourceInfo:
        """With ``lock_as_attr``: the lock the metadata attribute emulates, as the info's ``lock``."""
        if not self._client.config.lock_as_attr or info.lock is not None:
            return info
        lock = self.parse(info.metadata.get(ATTR_LOCK_KEY))
        return dataclasses.replace(info, lock=lock) if lock is not None else info

    def parse(self, value: str | None) -> Lock | None:
        if not value:
            return None
        try:
            app, lock_id, exp_text = value.rsplit("!", 2)
            exp = float(exp_text)
        except ValueError:
            return None
        if exp <= self._clock():
            return None
        return Lock(lock_id=lock_id, app_name=app, expiration=exp)

    async def get_lock(self, path: str) -> Lock | None:
        info = await self._client.stat(path, metadata_keys=[ATTR_LOCK_KEY])
        return self.parse(info.metadata.get(ATTR_LOCK_KEY))

    async def set_lock(
        self,
        path: str,
        lock_id: str,
        app_name: str | None,
        expiration: float | None,
        *,
        refresh: bool,
        existing: str | None = None,
    ) -> Lock:
        app = app_name or self._client.config.lock_app_name
        current = await self.get_lock(path)
        mine = {lock_id, existing} - {None}
        if current is not None and not (current.lock_id in mine and current.app_name == app):
            raise errors.Locked(
                "already locked",
                holder=current.holder,
                lock=current,
                op="refresh_lock" if refresh else "set_lock",
                path=path,
            )
        if refresh and current is None:
            raise errors.Locked("no lock to refresh (expired or removed)", op="refresh_lock", path=path)
        value = self._value(lock_id, app, expiration)
        await self._client.set_metadata(path, {ATTR_LOCK_KEY: value})
        after = await self.get_lock(path)
        if after is None or after.lock_id != lock_id or after.app_name != app:
            raise errors.Locked(
                "lost a lock race",
                holder=after.holder if after else None,
                lock=after,
                op="set_lock",
                path=path,
            )
        return after

    async def unlock(self, path: str, lock_id: str, app_name: str | None) -> None:
        current = await self.get_lock(path)
        app = app_name or self._client.config.lock_app_name
        if current is None:
            raise errors.Locked("not locked", op="unlock", path=path)
        if current.lock_id != lock_id or current.app_name != app:
            raise errors.Locked(
                "locked by someone else", holder=current.holder, lock=current, op="unlock", path=path
            )
        await self._client.unset_metadata(path, [ATTR_LOCK_KEY])

    async def check_write(self, path: str, lock: LockContext) -> None:
        current = await self._client.stat_or_none(path, metadata_keys=[ATTR_LOCK_KEY])
        held = self.parse(current.metadata.get(ATTR_LOCK_KEY)) if current else None
        if held is not None and (held.lock_id != lock.lock_id or held.app_name != lock.app_name):
            raise errors.Locked(
                "locked by someone else", holder=held.holder, lock=held, op="upload", path=path
            )


class LockOps:
    """The client's lock operations (``client.set_lock`` ...), over the RPCs or the emulation."""

    def __init__(self, client: ClientParts, attr: AttrLocks, clock: Clock) -> None:
        self._client = client
        self._attr = attr
        self._clock = clock

    async def locked_error(self, path: str, err: errors.CS3Error) -> errors.Locked:
        """A Locked error naming the holder when the storage tells us (best effort)."""
        holder_lock: Lock | None = None
        with contextlib.suppress(errors.CS3Error):
            holder_lock = await self._client.get_lock(path)
        return errors.Locked(
            err.message,
            holder=holder_lock.holder if holder_lock else None,
            lock=holder_lock,
            op=err.op,
            path=path,
            code=err.code,
        )

    def new_lock_id(self) -> str:
        """A lock id unique to this process (never a shared constant)."""
        return f"cs3sync-{uuid.uuid4().hex}"

    def _lock_msg(self, lock_id: str, app_name: str | None, expiration: float | None) -> spr.Lock:
        exp = self._clock() + (expiration if expiration is not None else self._client.config.lock_expiration)
        return spr.Lock(
            lock_id=lock_id,
            type=spr.LOCK_TYPE_WRITE,
            app_name=app_name or self._client.config.lock_app_name,
            expiration=convert.timestamp(exp),
        )

    async def _lock_failure(self, path: str, err: errors.CS3Error, *, probe: bool = True) -> errors.CS3Error:
        """Lock RPCs are weakly typed: INTERNAL for a missing file (EOS), for no lock support at all
        (localfs), and for an EOS failure on an existing file ("eosfs: error setting eos lock", storage
        behaviours row 6). A Stat and a GetLock tell them apart: only a storage whose GetLock fails as
        well lacks locks; a one-off INTERNAL is transient and never switches locking off."""
        if not isinstance(err, errors.ServerError):
            return err
        op, code = err.op, err.code
        if await self._client.stat_or_none(path) is None:
            return errors.NotFound(err.message, op=op, path=path, code=code)
        if probe and await self._get_lock_answers(path):
            message = f"the storage could not handle the lock ({err.message})"
            return errors.Transient(message, op=op, path=path, code=code)
        return errors.Unimplemented(
            f"locks unsupported by this storage? ({err.message})", op=op, path=path, code=code
        )

    async def _get_lock_answers(self, path: str) -> bool:
        """Does GetLock work on ``path`` (any answer but INTERNAL)? A storage without locks fails it."""
        try:
            await self._client.gateway.call(
                "GetLock", sp.GetLockRequest(ref=convert.ref(path)), op="get_lock", path=path
            )
        except errors.ServerError:
            return False
        except errors.CS3Error:
            return True
        return True

    async def set_lock(
        self, path: str, lock_id: str, *, app_name: str | None = None, expiration: float | None = None
    ) -> Lock:
        """Take a write lock. Raises Locked (with holder) if someone else holds one."""
        if self._client.config.lock_not_impl:
            return Lock(lock_id, app_name or self._client.config.lock_app_name)
        if self._client.config.lock_as_attr:
            return await self._attr.set_lock(path, lock_id, app_name, expiration, refresh=False)
        msg = self._lock_msg(lock_id, app_name, expiration)
        try:
            await self._client.gateway.call(
                "SetLock", sp.SetLockRequest(ref=convert.ref(path), lock=msg), op="set_lock", path=path
            )
        except errors.Locked as exc:
            raise await self._client.locked_error(path, exc) from None
        except errors.ServerError as exc:
            raise await self._lock_failure(path, exc) from None
        return convert.lock(msg) or Lock(lock_id, msg.app_name)

    async def get_lock(self, path: str) -> Lock | None:
        """The current lock, or None. NotFound only when the file itself is missing."""
        if self._client.config.lock_not_impl:
            return None
        if self._client.config.lock_as_attr:
            return await self._attr.get_lock(path)
        try:
            resp = await self._client.gateway.call(
                "GetLock", sp.GetLockRequest(ref=convert.ref(path)), op="get_lock", path=path, idempotent=True
            )
        except errors.NotFound:
            # "reference or lock not found": EOS and decomposedfs say the same for both cases.
            if await self._client.stat_or_none(path) is None:
                raise
            return None
        except errors.ServerError as exc:
            raise await self._lock_failure(path, exc, probe=False) from None
        found = convert.lock(resp.lock) if resp.HasField("lock") else None
        if found is not None and found.expiration is not None and found.expiration <= self._clock():
            return None
        return found

    async def refresh_lock(
        self,
        path: str,
        lock_id: str,
        *,
        existing_lock_id: str | None = None,
        app_name: str | None = None,
        expiration: float | None = None,
    ) -> Lock:
        """Extend our lock (optionally swapping its id from ``existing_lock_id``). Raises Locked when
        the lock is gone or held by someone else, whatever the driver's code for it."""
        if self._client.config.lock_not_impl:
            return Lock(lock_id, app_name or self._client.config.lock_app_name)
        if self._client.config.lock_as_attr:
            return await self._attr.set_lock(
                path, lock_id, app_name, expiration, refresh=True, existing=existing_lock_id
            )
        msg = self._lock_msg(lock_id, app_name, expiration)
        req = sp.RefreshLockRequest(ref=convert.ref(path), lock=msg, existing_lock_id=existing_lock_id or "")
        try:
            await self._client.gateway.call("RefreshLock", req, op="refresh_lock", path=path)
        except errors.Locked as exc:
            raise await self._client.locked_error(path, exc) from None
        except errors.ServerError as exc:
            raise await self._lock_failure(path, exc) from None
        return convert.lock(msg) or Lock(lock_id, msg.app_name)

    async def unlock(self, path: str, lock_id: str, *, app_name: str | None = None) -> None:
        if self._client.config.lock_not_impl:
            return
        if self._client.config.lock_as_attr:
            await self._attr.unlock(path, lock_id, app_name)
            return
        msg = spr.Lock(
            lock_id=lock_id, type=spr.LOCK_TYPE_WRITE, app_name=app_name or self._client.config.lock_app_name
        )
        try:
            await self._client.gateway.call(
                "Unlock", sp.UnlockRequest(ref=convert.ref(path), lock=msg), op="unlock", path=path
            )
        except errors.Locked as exc:
            raise await self._client.locked_error(path, exc) from None
        except errors.ServerError as exc:
            raise await self._lock_failure(path, exc) from None
