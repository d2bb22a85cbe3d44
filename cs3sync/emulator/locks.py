"""CS3 locks with per-profile codes.

``eos`` codes are the CERNBox contract: FAILED_PRECONDITION throughout, a refresh without
``existing_lock_id`` silently replaces the id, INTERNAL for a missing file, holder-based write checks
(``X-Lock-Holder`` + user, HTTP 409). ``decomposedfs`` codes are oCIS': ABORTED/LOCKED/PERMISSION_DENIED
and ``lock_id`` checks on every mutation. An expired lock counts as absent and is deleted on access,
judged by the emulator's clock. Every operation runs under the storage mutex, so SetLock races are atomic.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .backing import Backing
from .config import UserSpec
from .errors import CS3Error, HTTPError
from .ids import Ids
from .nodes import Node, WriteContext

FP = code_pb2.CODE_FAILED_PRECONDITION


def same_holder(a: res.Lock, b: res.Lock) -> bool:
    """EOS: compare app names if either lock has one, else the users (eos/locks.go:425-434)."""
    if a.app_name or b.app_name:
        return bool(a.app_name == b.app_name)
    return bool(a.user.opaque_id == b.user.opaque_id)


class LockTable:
    def __init__(self, backing: Backing, ids: Ids) -> None:
        self._b = backing
        self._ids = ids
        self._eos = backing.config.lock_codes == "eos"

    # ------------------------------------------------------------------ table
    def get(self, opaque_id: str, *, keep_expired: bool = False) -> res.Lock | None:
        """The current lock, or None (an expired one is deleted here, unless ``keep_expired``: EOS's Stat
        still shows it)."""
        return self.get_many([opaque_id], keep_expired=keep_expired).get(opaque_id)

    def get_many(self, opaque_ids: list[str], *, keep_expired: bool = False) -> dict[str, res.Lock]:
        """`get` for many ids at once (a listing): id -> its current lock, for those that have one."""
        s = self._b
        with s.mutex:
            rows = s.db.execute(
                "SELECT * FROM locks WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(opaque_ids),)
            ).fetchall()
            now = s.clock.now()
            expired = [r["id"] for r in rows if r["expiration"] and r["expiration"] <= now]
            if expired and not keep_expired:
                s.db.executemany("DELETE FROM locks WHERE id=?", [(i,) for i in expired])
                rows = [r for r in rows if r["id"] not in expired]
        return {row["id"]: self._lock_of(row) for row in rows}

    @staticmethod
    def _lock_of(row: sqlite3.Row) -> res.Lock:
        lock = res.Lock(lock_id=row["lock_id"], type=row["type"], app_name=row["app_name"] or "")
        if row["user_opaque"]:
            lock.user.opaque_id = row["user_opaque"]
            lock.user.idp = row["user_idp"] or ""
            lock.user.type = 1
        if row["expiration"]:
            lock.expiration.CopyFrom(types_pb2.Timestamp(seconds=int(row["expiration"])))
        lock.creation_time.CopyFrom(types_pb2.Timestamp(seconds=int(row["creation_time"])))
        return lock

    def put(self, opaque_id: str, lock: res.Lock, creation_time: float | None = None) -> None:
        s = self._b
        with s.mutex:
            s.db.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    opaque_id,
                    lock.lock_id,
                    lock.type,
                    lock.user.idp,
                    lock.user.opaque_id,
                    lock.app_name,
                    float(lock.expiration.seconds) if lock.HasField("expiration") else 0.0,
                    creation_time if creation_time is not None else s.clock.now(),
                ),
            )

    def delete(self, opaque_id: str) -> None:
        with self._b.mutex:
            self._b.db.execute("DELETE FROM locks WHERE id=?", (opaque_id,))

    # ------------------------------------------------------------------ RPCs
    def _target(self, node: Node) -> str:
        disk = node.disk
        if node.virtual or disk is None or not disk.exists():
            if self._b.config.missing_file_on_lock_ops == "internal":
                # EOS wraps the not-found error, so Reva's type switch misses it (eos/locks.go:60-62).
                raise CS3Error.internal("error: not found: " + node.path)
            raise CS3Error.not_found("path not found when handling lock")
        return self._ids.file_id(disk)

    def _with_caller(self, lock: res.Lock, caller: UserSpec) -> res.Lock:
        out = res.Lock()
        out.CopyFrom(lock)
        if not out.user.opaque_id:
            out.user.opaque_id = caller.opaque_id
            out.user.idp = caller.idp
            out.user.type = 1
        return out

    def set_lock(self, node: Node, lock: res.Lock, caller: UserSpec) -> None:
        with self._b.mutex:
            opaque_id = self._target(node)
            if lock.type == res.LOCK_TYPE_SHARED and self._eos:
                raise CS3Error.internal("error: not supported: shared lock not supported")
            if self.get(opaque_id) is not None:
                raise CS3Error(FP, "reference already locked")
            self.put(opaque_id, self._with_caller(lock, caller))

    def get_lock(self, node: Node) -> res.Lock:
        with self._b.mutex:
            lock = self.get(self._target(node))
        if lock is None:
            raise CS3Error.not_found("reference or lock not found")
        return lock

    def refresh_lock(self, node: Node, lock: res.Lock, existing_lock_id: str, caller: UserSpec) -> None:
        with self._b.mutex:
            opaque_id = self._target(node)
            current = self.get(opaque_id)
            new = self._with_caller(lock, caller)
            if current is None:
                raise CS3Error(FP, "reference not locked")
            if self._eos:
                if not same_holder(current, new):
                    raise CS3Error(FP, "cannot refresh lock: lock held by another holder")
                if existing_lock_id and existing_lock_id != current.lock_id:
                    raise CS3Error(FP, "cannot refresh lock: mismatching existing lock id")
                # Without existing_lock_id a new lock_id silently replaces the old one (eos/locks.go).
            else:
                if current.user.opaque_id and current.user.opaque_id != new.user.opaque_id:
                    raise CS3Error(code_pb2.CODE_PERMISSION_DENIED, "cannot refresh lock of another holder")
                if existing_lock_id:
                    if existing_lock_id != current.lock_id:
                        raise CS3Error(code_pb2.CODE_ABORTED, "mismatching lock ID")
                elif new.lock_id != current.lock_id:
                    raise CS3Error(code_pb2.CODE_ABORTED, "mismatching lock ID")
            row = self._b.db.execute("SELECT creation_time FROM locks WHERE id=?", (opaque_id,)).fetchone()
            self.put(opaque_id, new, creation_time=row["creation_time"] if row else None)

    def unlock(self, node: Node, lock: res.Lock, caller: UserSpec) -> None:
        with self._b.mutex:
            opaque_id = self._target(node)
            current = self.get(opaque_id)
            request = self._with_caller(lock, caller)
            if self._eos:
                if current is None:
                    raise CS3Error(FP, "reference not locked")
                if current.lock_id != request.lock_id:
                    raise CS3Error(FP, "cannot unlock: mismatching lock id")
                if not same_holder(current, request):
                    raise CS3Error(FP, "cannot unlock: lock held by another holder")
            else:
                if current is None:
                    raise CS3Error(code_pb2.CODE_ABORTED, "lock does not exist")
                if current.lock_id != request.lock_id:
                    raise CS3Error(code_pb2.CODE_LOCKED, "mismatching lock ID")
                if current.user.opaque_id and current.user.opaque_id != request.user.opaque_id:
                    raise CS3Error(code_pb2.CODE_PERMISSION_DENIED, "cannot unlock lock of another holder")
            self.delete(opaque_id)

    # ------------------------------------------------------------------ enforcement
    def check_mutation(self, disk: Path, lock_id: str) -> None:
        """decomposedfs CheckLock on upload, move, delete, metadata and restore (gRPC side). On EOS the
        request's lock_id is ignored."""
        if self._b.config.lock_enforcement != "lock_id" or not disk.exists():
            return
        current = self.get(self._ids.file_id(disk))
        if current is None:
            if lock_id:
                raise CS3Error(code_pb2.CODE_ABORTED, "lock does not exist")
            return
        if not lock_id:
            raise CS3Error(code_pb2.CODE_LOCKED, "file is locked")
        if lock_id != current.lock_id:
            raise CS3Error(code_pb2.CODE_ABORTED, "mismatching lock ID")

    def check_data_write(self, disk: Path, ctx: WriteContext) -> None:
        """A data-plane write. holder (EOS): a lock exists and X-Lock-Holder differs from its app name,
        or the writer is not its user -> ``locked_write_status`` (500 on cernbox, see config).
        lock_id (oCIS): no id -> 423, wrong id -> 409."""
        if not disk.exists():
            return
        current = self.get(self._ids.file_id(disk))
        if current is None:
            return
        if self._b.config.lock_enforcement == "holder":
            holder_ok = (ctx.lock_holder or "") == current.app_name if current.app_name else True
            user_ok = not current.user.opaque_id or current.user.opaque_id == ctx.user.opaque_id
            if not (holder_ok and user_ok):
                # EmulatorConfig.locked_write_status: 500 in the cernbox profile (EOS EBUSY, unmapped).
                raise HTTPError(self._b.config.locked_write_status or 409, "file is locked")
            return
        if not ctx.lock_id:
            raise HTTPError(423, "file is locked")
        if ctx.lock_id != current.lock_id:
            raise HTTPError(409, "mismatching lock ID")
