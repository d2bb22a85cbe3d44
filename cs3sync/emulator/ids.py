"""Stable resource ids (assigned on first sight, kept across renames), the content and tree generations
behind etags, and cached checksums, in the ``ids`` table."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
import zlib
from pathlib import Path

from .backing import Backing
from .mounts import Mounts
from .nodes import adler32_hex
from .quota import Quota


class Ids:
    def __init__(self, backing: Backing, mounts: Mounts, quota: Quota) -> None:
        self._b = backing
        self._mounts = mounts
        self._quota = quota

    def file_id(self, disk: Path) -> str:
        """The stable opaque id of ``disk``, assigned on first sight."""
        with self._b.mutex:
            row = self._b.db.execute("SELECT id FROM ids WHERE path=?", (str(disk),)).fetchone()
            if row:
                return str(row["id"])
            new_id = uuid.uuid4().hex
            self._b.db.execute("INSERT INTO ids (path, id) VALUES (?, ?)", (str(disk), new_id))
            return new_id

    def rows(self, disks: list[str]) -> dict[str, sqlite3.Row]:
        """The ``ids`` rows of many paths at once, assigning ids to those never seen (as `file_id`):
        one query and one insert for a whole folder, where `row` per entry took a ListContainer of
        50,000 entries past a client's deadline."""
        with self._b.mutex:
            db = self._b.db
            wanted = json.dumps(disks)
            query = "SELECT * FROM ids WHERE path IN (SELECT value FROM json_each(?))"
            found = {row["path"]: row for row in db.execute(query, (wanted,))}
            new = {disk: uuid.uuid4().hex for disk in disks if disk not in found}
            if new:
                db.execute(
                    "INSERT INTO ids (path, id) SELECT key, value FROM json_each(?)", (json.dumps(new),)
                )
                added = json.dumps(list(new))
                found.update((row["path"], row) for row in db.execute(query, (added,)))
            return found

    def disk_for_id(self, opaque_id: str) -> Path | None:
        with self._b.mutex:
            row = self._b.db.execute("SELECT path FROM ids WHERE id=?", (opaque_id,)).fetchone()
        if row is None:
            return None
        disk = Path(row["path"])
        return disk if os.path.lexists(disk) else None

    def row(self, disk: Path) -> sqlite3.Row:
        self.file_id(disk)
        row: sqlite3.Row = self._b.db.execute("SELECT * FROM ids WHERE path=?", (str(disk),)).fetchone()
        return row

    def bump_content(self, disk: Path) -> None:
        with self._b.mutex:
            self.file_id(disk)
            self._b.db.execute("UPDATE ids SET content_gen = content_gen + 1 WHERE path=?", (str(disk),))

    def bump_tree(self, disk: Path) -> None:
        """A server-side change at ``disk``: every ancestor directory up to its mount root gets a new
        tree generation, so directory etags change all the way up to the home."""
        mount = self._mounts.mount_for_disk(disk)
        if mount is None:
            return
        with self._b.mutex:
            node = disk
            while True:
                if node != disk or node.is_dir():
                    self.file_id(node)
                    self._b.db.execute("UPDATE ids SET tree_gen = tree_gen + 1 WHERE path=?", (str(node),))
                if node == mount.disk:
                    break
                node = node.parent
            self._quota.forget(mount)

    def rename(self, src: Path, dst: Path) -> None:
        s = str(src)
        rows = self._b.db.execute(
            "SELECT path FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/")
        ).fetchall()
        self._b.db.execute("DELETE FROM ids WHERE path=?", (str(dst),))
        for row in rows:
            new = str(dst) + row["path"][len(s) :]
            self._b.db.execute("DELETE FROM ids WHERE path=?", (new,)) if row["path"] != s else None
            self._b.db.execute("UPDATE ids SET path=? WHERE path=?", (new, row["path"]))

    def drop(self, disk: Path) -> list[str]:
        s = str(disk)
        rows = self._b.db.execute(
            "SELECT id FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/")
        ).fetchall()
        self._b.db.execute("DELETE FROM ids WHERE path=? OR substr(path, 1, ?)=?", (s, len(s) + 1, s + "/"))
        return [r["id"] for r in rows]

    def etag(self, disk: Path, st: os.stat_result | None = None) -> str:
        st = st or os.stat(disk)
        with self._b.mutex:
            row = self.row(disk)
        return self.etag_of(row, st, os.path.isdir(disk))

    @staticmethod
    def etag_of(row: sqlite3.Row, st: os.stat_result, is_dir: bool) -> str:
        """The etag from the item's ``ids`` row and its stat: a folder's changes with its tree generation,
        a file's with its content (mtime, size, inode, content generation)."""
        if is_dir:
            raw = f"{row['id']}:{st.st_mtime_ns}:{row['tree_gen']}"
        else:
            raw = f"{row['id']}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}:{row['content_gen']}"
        return '"' + hashlib.md5(raw.encode()).hexdigest() + '"'

    def checksum(self, disk: Path, st: os.stat_result) -> str:
        """adler32 of the content, cached against (mtime_ns, size); external files are hashed lazily."""
        with self._b.mutex:
            row = self.row(disk)
            cached = self.cached_checksum(row, st)
        if cached is not None:
            return cached
        value = self.adler32_of(disk)
        self.store_checksum(disk, value, st)
        return value

    @staticmethod
    def cached_checksum(row: sqlite3.Row, st: os.stat_result) -> str | None:
        """The row's adler32 if it was computed for this content (same mtime and size)."""
        if row["checksum"] and row["ck_mtime_ns"] == st.st_mtime_ns and row["ck_size"] == st.st_size:
            return str(row["checksum"])
        return None

    @staticmethod
    def adler32_of(disk: Path | str) -> str:
        value = 1
        with open(disk, "rb") as f:
            while chunk := f.read(1 << 20):
                value = zlib.adler32(chunk, value)
        return adler32_hex(value)

    def store_checksum(self, disk: Path, checksum: str, st: os.stat_result) -> None:
        with self._b.mutex:
            self.file_id(disk)
            self._b.db.execute(
                "UPDATE ids SET checksum=?, ck_mtime_ns=?, ck_size=? WHERE path=?",
                (checksum, st.st_mtime_ns, st.st_size, str(disk)),
            )

    def store_checksums(self, computed: list[tuple[str, str, os.stat_result]]) -> None:
        """`store_checksum` for many (disk path, checksum, stat) at once, in one transaction."""
        if not computed:
            return
        with self._b.mutex:
            db = self._b.db
            db.execute("BEGIN")  # the connection autocommits: one transaction, not one per row
            try:
                db.executemany(
                    "UPDATE ids SET checksum=?, ck_mtime_ns=?, ck_size=? WHERE path=?",
                    [(checksum, st.st_mtime_ns, st.st_size, disk) for disk, checksum, st in computed],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def next_seq(self) -> int:
        with self._b.mutex:
            self._b.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0)")
            self._b.db.execute("UPDATE meta SET value = value + 1 WHERE key='seq'")
            return int(self._b.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
