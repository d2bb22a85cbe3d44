"""Quota: the total (configured, overridden by a test, or the file system's), the used bytes (the tree
size, recomputed at most every ``quota_recompute_interval``) and the checks of a write against them."""

from __future__ import annotations

import os
from pathlib import Path

from cs3.rpc.v1beta1 import code_pb2

from .backing import Backing
from .errors import CS3Error, HTTPError
from .mounts import Mounts
from .nodes import Mount, Node, tree_size


class Quota:
    def __init__(self, backing: Backing, mounts: Mounts) -> None:
        self._b = backing
        self._mounts = mounts
        self._total_override: int | None = None
        self._used_override: int | None = None
        self._used_cache: dict[str, tuple[float, int]] = {}

    def forget(self, mount: Mount) -> None:
        """The tree of ``mount`` changed: recompute its used bytes when next asked."""
        self._used_cache.pop(str(mount.disk), None)

    def quota(self, node: Node) -> tuple[int, int, int | None]:
        """(total, used, remaining or None). total 0 = unlimited (ocis) or unknown."""
        if node.virtual or node.mount is None:
            raise CS3Error.not_found("path not found when getting quota")
        used = self.used_bytes(node.mount)
        total = self._total_override
        if total is None:
            total = self._b.config.quota_total or 0
            if total == 0 and not self._b.config.quota_unlimited_when_zero:
                vfs = os.statvfs(node.mount.disk if node.mount.disk.exists() else self._b.config.root)
                total = vfs.f_blocks * vfs.f_frsize
        remaining = None
        if self._b.config.quota_unlimited_when_zero:
            if total:
                remaining = max(total - used, 0)
            else:
                vfs = os.statvfs(self._b.config.root)
                remaining = vfs.f_bavail * vfs.f_frsize
        return total, used, remaining

    def used_bytes(self, mount: Mount) -> int:
        if self._used_override is not None:
            return self._used_override
        key = str(mount.disk)
        now = self._b.clock.now()
        cached = self._used_cache.get(key)
        if cached and now - cached[0] < self._b.config.quota_recompute_interval:
            return cached[1]
        used = tree_size(mount.disk, self._b.state_dir) if mount.disk.exists() else 0
        self._used_cache[key] = (now, used)
        return used

    def check_quota_for(self, disk: Path, delta: int, *, http: bool = False) -> None:
        mount = self._mounts.mount_for_disk(disk)
        if mount is None or delta <= 0:
            return
        total = self._total_override
        if total is None:
            total = self._b.config.quota_total or 0
        if not total:
            return
        if self.used_bytes(mount) + delta > total:
            if http:
                raise HTTPError(self.quota_http_status(), "insufficient storage")
            raise CS3Error(code_pb2.CODE_INSUFFICIENT_STORAGE, "insufficient storage")

    def quota_http_status(self) -> int:
        """507 from the storage; EOS's 507 reaches the client as 500 through Reva (quota_refusal)."""
        return 500 if self._b.config.quota_refusal == "put_500" else 507

    def check_quota(self, node: Node, length: int) -> None:
        assert node.disk is not None
        old = node.disk.stat().st_size if node.disk.is_file() else 0
        self.check_quota_for(node.disk, length - old)

    def set_quota(self, total: int | None, used: int | None = None) -> None:
        """Override the quota total (bytes; None = back to config) and optionally the used bytes."""
        self._total_override = total
        self._used_override = used
        self._used_cache.clear()
