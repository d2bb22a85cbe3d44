"""The recycle bin: what Delete moved aside, per user, to list, restore or purge."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from cs3.rpc.v1beta1 import code_pb2

from .backing import Backing
from .config import UserSpec
from .errors import CS3Error
from .ids import Ids
from .nodes import Node


class RecycleBin:
    def __init__(self, backing: Backing, ids: Ids) -> None:
        self._b = backing
        self._ids = ids

    def list_recycle(self, user: UserSpec) -> list[sqlite3.Row]:
        with self._b.mutex:
            return self._b.db.execute(
                "SELECT * FROM recycle WHERE username=? ORDER BY deletion_time DESC", (user.username,)
            ).fetchall()

    def restore_recycle(self, user: UserSpec, key: str, target: Node | None) -> None:
        with self._b.mutex:
            row = self._b.db.execute(
                "SELECT * FROM recycle WHERE key=? AND username=?", (key, user.username)
            ).fetchone()
            if row is None:
                raise CS3Error.not_found("recycle item not found")
            dest = target.disk if target is not None and target.disk is not None else Path(row["disk"])
            if dest.exists():
                raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "restore target already exists")
            if not dest.parent.is_dir():
                raise CS3Error.not_found("path not found when restoring recycle item")
            shutil.move(str(self._b.state_dir / "recycle" / key), str(dest))
            self._b.db.execute("DELETE FROM recycle WHERE key=?", (key,))
            self._b.db.execute("INSERT OR REPLACE INTO ids (path, id) VALUES (?, ?)", (str(dest), row["id"]))
            self._ids.bump_tree(dest)

    def purge_recycle(self, user: UserSpec, key: str = "") -> None:
        with self._b.mutex:
            rows = self.list_recycle(user)
            for row in rows:
                if key and row["key"] != key:
                    continue
                target = self._b.state_dir / "recycle" / row["key"]
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                self._b.db.execute("DELETE FROM recycle WHERE key=?", (row["key"],))
