"""Checkpoints as journaled snapshots, plus the storage's own versions, read-only.

* ``create_checkpoint`` stores the file's current bytes as a snapshot blob in the journal and enqueues
  a ``checkpoint`` command that writes it to ``<dir>/.ipynb_checkpoints/<stem>-checkpoint<ext>`` on
  the storage. As with Jupyter's file checkpoints there is one snapshot per file, id ``checkpoint``:
  creating another replaces it. Listing, restoring and deleting answer from the journal, so they work
  offline.
* ``restore_checkpoint`` is a normal journaled save of the snapshot (lock-aware, conflict-checked).
* Where the storage keeps versions (``ListFileVersions``), they are listed too (``CS3Sync.
  checkpoint_versions``) with ids ``v-<urlsafe base64 of the key>`` (ids match ``[\\w-]+``); they are
  read-only and restored through ``RestoreFileVersion`` with our lock id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import posixpath
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from tornado.web import HTTPError
from traitlets import Bool

from contents.errors import http_error
from contents.models import datetime_from_ns
from cs3sync.journal import Blob, JournalError

if TYPE_CHECKING:
    from contents.manager import CS3ContentsManager
    from cs3sync.journal.types import CheckpointRow

CHECKPOINT_ID = "checkpoint"
VERSION_PREFIX = "v-"


def checkpoint_remote_path(cs3_path: str, checkpoint_id: str = CHECKPOINT_ID) -> str:
    directory, name = posixpath.split(cs3_path)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    else:
        ext = "." + ext
    return posixpath.join(directory, ".ipynb_checkpoints", f"{stem}-{checkpoint_id}{ext}")


def version_id(key: str) -> str:
    return VERSION_PREFIX + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def version_key(checkpoint_id: str) -> str | None:
    if not checkpoint_id.startswith(VERSION_PREFIX):
        return None
    raw = checkpoint_id[len(VERSION_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _timestamp(value: float | int | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    return datetime_from_ns(int(value * 1_000_000_000)) if value < 1e12 else datetime_from_ns(int(value))


class CS3Checkpoints(AsyncCheckpoints):
    """Checkpoints kept in the journal (offline-capable) and mirrored to the storage."""

    list_versions = Bool(
        True, config=True, help="Also list the storage's own file versions as read-only checkpoints."
    )

    @property
    def manager(self) -> CS3ContentsManager:
        """The contents manager these checkpoints belong to (traitlets sets it as ``parent``)."""
        return cast("CS3ContentsManager", self.parent)

    async def create_checkpoint(self, contents_mgr: object, path: str) -> dict[str, Any]:
        cm = self.manager  # (the same object as contents_mgr: these checkpoints' parent)
        api_path, cs3_path = await cm.locate(path)
        pending, info = await cm.lookup(api_path, cs3_path)
        # The snapshot goes to the file's folder on the storage: refused there, refused here (403).
        await cm.require_writable(api_path, cs3_path, None)
        engine = await cm.get_engine()
        journal = engine.journal
        snapshot: bytes | Blob | None = None
        if (
            pending is not None
            and pending.sha256
            and pending.blob_path is not None
            and pending.size is not None
        ):
            # The save that created the notebook is still pending (its first save makes this checkpoint):
            # its spool blob is the snapshot, not a second copy written and fsynced again.
            with contextlib.suppress(JournalError):
                snapshot = await journal.reuse_blob(pending.sha256, pending.size)
        if snapshot is None:
            snapshot = await cm.read_content(api_path, cs3_path, pending, info)
        remote = checkpoint_remote_path(cs3_path)
        with http_error(api_path):
            with contextlib.suppress(Exception):
                await journal.delete_checkpoint(cs3_path, CHECKPOINT_ID)
            await engine.submit_checkpoint(cs3_path, remote, snapshot, checkpoint_id=CHECKPOINT_ID)
            row = next(r for r in await journal.checkpoints(cs3_path) if r.checkpoint_id == CHECKPOINT_ID)
        return {"id": CHECKPOINT_ID, "last_modified": _timestamp(row.created_at)}

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        """The storage's versions oldest first, then our journaled ``checkpoint`` LAST.

        The order matters: JupyterLab takes the last listed checkpoint as the newest one (``Context.
        restoreCheckpoint()`` without an id restores ``list[-1]``; "Revert to checkpoint" offers
        ``reversed(list)`` and preselects its first item). Listing the storage's versions after ours
        (newest first, as the storage answers) made Lab revert to the OLDEST version, e.g. the empty
        notebook from creation time after a rename, instead of "Save and create checkpoint"."""
        cm = self.manager
        api_path, cs3_path = await cm.locate(path)
        rows = await self._journaled(cm, api_path, cs3_path)
        result: list[dict[str, Any]] = []
        if self.list_versions and not (await cm.get_path_map()).is_virtual(api_path):
            result.extend(await self._versions(cm, api_path, cs3_path))
        result.extend({"id": row.checkpoint_id, "last_modified": _timestamp(row.created_at)} for row in rows)
        return result

    async def _journaled(self, cm: CS3ContentsManager, api_path: str, cs3_path: str) -> list[CheckpointRow]:
        """Our own snapshots of ``cs3_path`` (journal rows), without asking the storage."""
        engine = await cm.get_engine()
        with http_error(api_path):
            return list(await engine.journal.checkpoints(cs3_path))

    async def has_checkpoint(self, path: str) -> bool:
        """Whether ``path`` has a journaled checkpoint (storage versions do not count: a notebook's
        first save makes one even where the storage keeps versions, so that Lab can revert to it)."""
        cm = self.manager
        api_path, cs3_path = await cm.locate(path)
        return bool(await self._journaled(cm, api_path, cs3_path))

    async def _versions(self, cm: CS3ContentsManager, api_path: str, cs3_path: str) -> list[dict[str, Any]]:
        """Storage versions, oldest first; none when the storage has none, is unreachable or the file is
        new, and none while a delete or rename of the path is pending (they are another path's then)."""
        if cm.remote.storage_unreachable():
            return []
        pending = cm.pending_of(cs3_path)
        if pending is not None and (pending.deleted or pending.source is not None):
            return []
        try:
            client = await cm.get_client()
            versions = await client.list_versions(cs3_path)
        except Exception:
            return []
        versions = sorted(versions, key=lambda v: (v.mtime or 0, v.key))
        return [{"id": version_id(v.key), "last_modified": _timestamp(v.mtime)} for v in versions]

    async def restore_checkpoint(self, contents_mgr: object, checkpoint_id: str, path: str) -> None:
        cm = self.manager  # (the same object as contents_mgr: these checkpoints' parent)
        api_path, cs3_path = await cm.locate(path)
        key = version_key(checkpoint_id)
        if key is not None:
            client = await cm.get_client()
            with http_error(api_path):
                await client.restore_version(cs3_path, key, lock_id=cm.locks.lock_id_for(api_path))
            cm.invalidate(cs3_path)
            return
        row = await self._row(cm, api_path, cs3_path, checkpoint_id)
        engine = await cm.get_engine()
        blob_path = engine.journal.blob_path(row.blob)
        await cm.save_bytes(api_path, cs3_path, blob_path, sha256=row.blob)

    async def _row(
        self, cm: CS3ContentsManager, api_path: str, cs3_path: str, checkpoint_id: str
    ) -> CheckpointRow:
        for row in await self._journaled(cm, api_path, cs3_path):
            if row.checkpoint_id == checkpoint_id:
                return row
        raise HTTPError(404, f"Checkpoint does not exist: {api_path}@{checkpoint_id[:40]}")

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        await self.rename_all_checkpoints(old_path, new_path)

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        cm = self.manager
        _, old_cs3 = await cm.locate(old_path)
        new_api, new_cs3 = await cm.locate(new_path)
        engine = await cm.get_engine()
        with http_error(new_api):
            await engine.journal.move_checkpoints(old_cs3, new_cs3)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        cm = self.manager
        api_path, cs3_path = await cm.locate(path)
        if version_key(checkpoint_id) is not None:
            raise HTTPError(400, "Storage versions are read-only")
        await self._row(cm, api_path, cs3_path, checkpoint_id)
        engine = await cm.get_engine()
        with http_error(api_path):
            await engine.journal.delete_checkpoint(cs3_path, checkpoint_id)

    async def delete_all_checkpoints(self, path: str) -> None:
        cm = self.manager
        api_path, cs3_path = await cm.locate(path)
        engine = await cm.get_engine()
        with http_error(api_path):
            for row in await engine.journal.checkpoints(cs3_path):
                await engine.journal.delete_checkpoint(cs3_path, row.checkpoint_id)
