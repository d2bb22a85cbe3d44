"""File versions: the content a write replaces is archived (a hard link when possible), keyed as EOS
(``<mtime>.<seq>``) or decomposedfs (``<id>.REV.<rfc3339>``) does, at most ``max_versions`` a file."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from cs3.storage.provider.v1beta1 import resources_pb2 as res

from .backing import Backing
from .errors import CS3Error
from .ids import Ids
from .nodes import REV_SEP, Node, existing, rfc3339_ns


class Versions:
    def __init__(self, backing: Backing, ids: Ids) -> None:
        self._b = backing
        self._ids = ids

    def versions_dir(self, opaque_id: str) -> Path:
        return self._b.state_dir / "versions" / opaque_id

    def list_versions(self, node: Node) -> list[res.FileVersion]:
        disk = existing(node, "path not found when listing versions")
        if disk.is_dir():
            return []
        with self._b.mutex:
            rows = self._b.db.execute(
                "SELECT * FROM versions WHERE id=? ORDER BY seq DESC", (self._ids.file_id(disk),)
            ).fetchall()
        return [
            res.FileVersion(
                key=r["key"], size=r["size"], mtime=r["mtime_ns"] // 1_000_000_000, etag=r["etag"]
            )
            for r in rows
        ]

    def version_file(self, disk: Path, key: str) -> Path:
        with self._b.mutex:
            opaque_id = self._ids.file_id(disk)
            row = self._b.db.execute(
                "SELECT key FROM versions WHERE id=? AND key=?", (opaque_id, key)
            ).fetchone()
        path = self.versions_dir(opaque_id) / key
        if row is None or not path.exists():
            raise CS3Error.not_found("version not found")
        return path

    def archive(self, disk: Path) -> None:
        """Keep the current content of ``disk`` as a version (hard link when possible)."""
        st = os.stat(disk)
        opaque_id = self._ids.file_id(disk)
        seq = self._ids.next_seq()
        if self._b.config.version_keys == "decomposedfs":
            ns = st.st_mtime_ns
            key = f"{opaque_id}{REV_SEP}{rfc3339_ns(ns)}"
            while self._b.db.execute(
                "SELECT 1 FROM versions WHERE id=? AND key=?", (opaque_id, key)
            ).fetchone():
                ns += 1  # two writes within one clock tick: keep keys unique
                key = f"{opaque_id}{REV_SEP}{rfc3339_ns(ns)}"
        else:
            key = f"{st.st_mtime_ns // 1_000_000_000}.{seq:08x}"
        vdir = self.versions_dir(opaque_id)
        vdir.mkdir(parents=True, exist_ok=True)
        try:
            os.link(disk, vdir / key)
        except OSError:
            shutil.copy2(disk, vdir / key)
        self._b.db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (opaque_id, key, st.st_size, st.st_mtime_ns, self._ids.etag(disk, st), seq),
        )
        rows = self._b.db.execute(
            "SELECT key FROM versions WHERE id=? ORDER BY seq DESC", (opaque_id,)
        ).fetchall()
        for old in rows[self._b.config.max_versions :]:
            self._b.db.execute("DELETE FROM versions WHERE id=? AND key=?", (opaque_id, old["key"]))
            (vdir / old["key"]).unlink(missing_ok=True)

    def restore_version(self, node: Node, key: str) -> None:
        disk = existing(node, "path not found when restoring file version")
        with self._b.mutex:
            source = self.version_file(disk, key)
            tmp = self._b.state_dir / "tmp" / uuid.uuid4().hex
            shutil.copyfile(source, tmp)
            self.archive(disk)
            os.replace(tmp, disk)
            now_ns = int(self._b.clock.now() * 1e9)
            os.utime(disk, ns=(now_ns, now_ns))
            self._ids.bump_content(disk)
            self._ids.bump_tree(disk)
