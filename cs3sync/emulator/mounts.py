"""The spaces of the namespace (one mount per personal or project space) and confinement: which CS3 path
lives where on disk, and nothing outside a mount (symlinks included) or inside the state dir is reachable."""

from __future__ import annotations

import os
from pathlib import Path

from .backing import Backing
from .config import STATE_DIR_NAME, UserSpec
from .errors import CS3Error
from .nodes import Mount


class Mounts:
    def __init__(self, backing: Backing) -> None:
        self._b = backing
        self.mounts = self.build()

    def build(self) -> list[Mount]:
        cfg = self._b.config
        mounts: list[Mount] = []
        for user in cfg.users:
            if cfg.single_user is not None and user.username != cfg.single_user:
                continue
            disk = cfg.root if cfg.single_user else cfg.root / user.username
            mounts.append(Mount(cfg.home(user.username), disk, "personal", user.username, user))
        for name, directory in cfg.projects.items():
            disk = Path(directory)
            if not disk.is_absolute():
                state_dir = cfg.state_dir or cfg.root / STATE_DIR_NAME
                disk = (state_dir / "projects" / directory) if cfg.single_user else cfg.root / directory
            mounts.append(Mount(cfg.project_path(name), disk, "project", name, None))
        return mounts

    def home_mount(self, user: UserSpec) -> Mount | None:
        return next((m for m in self.mounts if m.kind == "personal" and m.owner == user), None)

    def ensure_home(self, user: UserSpec) -> None:
        """Reva creates the home on the first (non-machine) login."""
        mount = self.home_mount(user)
        if mount is not None:
            mount.disk.mkdir(parents=True, exist_ok=True)

    def ensure_projects(self) -> None:
        for mount in self.mounts:
            if mount.kind == "project":
                mount.disk.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def is_ancestor(parent: str, child: str) -> bool:
        return parent == "/" or child == parent or child.startswith(parent + "/")

    def mount_for_path(self, cs3_path: str) -> Mount | None:
        best: Mount | None = None
        for m in self.mounts:
            if (cs3_path == m.prefix or cs3_path.startswith(m.prefix + "/")) and (
                best is None or len(m.prefix) > len(best.prefix)
            ):
                best = m
        return best

    def mount_for_disk(self, disk: Path) -> Mount | None:
        best: Mount | None = None
        for m in self.mounts:
            if (disk == m.disk or m.disk in disk.parents) and (
                best is None or len(str(m.disk)) > len(str(best.disk))
            ):
                best = m
        return best

    def cs3_path(self, mount: Mount, disk: Path) -> str:
        rel = disk.relative_to(mount.disk).as_posix()
        return mount.prefix if rel == "." else f"{mount.prefix}/{rel}"

    def confine(self, disk: Path, mount: Mount) -> None:
        """Nothing outside the mount (symlinks included) and nothing in the state dir is reachable."""
        real = Path(os.path.realpath(disk))
        mount_real = Path(os.path.realpath(mount.disk))
        if real != mount_real and mount_real not in real.parents:
            raise CS3Error.denied("path outside the namespace")
        state_real = Path(os.path.realpath(self._b.state_dir))
        in_state = real == state_real or state_real in real.parents
        mount_in_state = mount_real == state_real or state_real in mount_real.parents
        if in_state and not mount_in_state:
            raise CS3Error.denied("path outside the namespace")

    def visible(self, disk: Path, mount: Mount) -> bool:
        try:
            self.confine(disk, mount)
        except CS3Error:
            return False
        return True

    def visible_names(self, directory: Path, mount: Mount) -> list[str]:
        """The sorted names in ``directory`` that `visible` lets through and that exist (a dangling symlink
        does not). One realpath per folder, not per entry: an entry that is not a symlink resolves to its
        folder's real path plus its name; a symlink gets the full `confine`."""
        folder_real = os.path.realpath(directory)
        mount_real = os.path.realpath(mount.disk)
        state_real = os.path.realpath(self._b.state_dir)
        # A plain entry's real path is below the folder's, so it is inside the mount when the folder is,
        # and in the state dir when it is the state dir or the folder is in it.
        folder_in_mount = _within(folder_real, mount_real)
        folder_in_state = _within(folder_real, state_real)
        mount_in_state = _within(mount_real, state_real)
        names = []
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_symlink():
                    visible = self.visible(Path(entry.path), mount) and os.path.exists(entry.path)
                else:
                    in_state = folder_in_state or os.path.join(folder_real, entry.name) == state_real
                    visible = folder_in_mount and (mount_in_state or not in_state)
                if visible:
                    names.append(entry.name)
        names.sort()
        return names

    def visible_mounts(self, user: UserSpec | None) -> list[Mount]:
        if user is None:
            return list(self.mounts)
        return [m for m in self.mounts if m.kind == "project" or m.owner == user]


def _within(path: str, ancestor: str) -> bool:
    """``path`` is ``ancestor`` or below it (both real, normalised paths)."""
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")
