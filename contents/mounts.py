"""Stable names of the virtual mounts: ``Spaces/<name>`` and ``Shared with me/<name>``.

A mount's name is what an open editor writes through, so it must never start meaning another folder:

* A name is assigned once per mounted resource (a received share's resource id, a space's id) and kept
  while it exists, across panel refreshes and server restarts (the assignment lives in the journal's
  ``meta`` table).
* A name that is taken gets a suffix naming the owner, e.g. ``radium (marie)``; whoever had the name first
  keeps it, whatever the order in which the storage lists the shares.
* When a share or space disappears its name stays reserved for that resource (a tombstone): a write through
  ``Shared with me/radium`` then finds nothing (404) instead of landing in someone else's folder that
  happens to have the same name. The same resource shared again gets its old name back.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

SPACES_FOLDER = "Spaces"
SHARES_FOLDER = "Shared with me"

#: Tombstones kept per folder (oldest dropped first): enough for years of shares coming and going.
MAX_TOMBSTONES = 1000


class MetaStore(Protocol):
    """Where assignments are kept (the owner journal's ``meta`` table)."""

    async def meta(self) -> dict[str, str]: ...

    async def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Mountable:
    """One resource a virtual folder can mount."""

    key: str  # stable identity: the resource id of a shared folder, the id of a space
    name: str  # the name it would like (the folder's or space's name)
    path: str  # its CS3 path
    owner: str = ""  # the owner's user id, for the suffix that tells colliding names apart


def under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def clean_name(name: str, path: str) -> str:
    """A usable single-component folder name."""
    base = (name or posixpath.basename(path.rstrip("/")) or "storage").replace("/", "_")
    base = "".join(c if c.isprintable() and c != "\\" else "_" for c in base).strip() or "storage"
    if base.startswith("."):
        base = "_" + base[1:]
    return base[:200]


class MountNames:
    """The assignment of one virtual folder: key -> name (live or reserved) and the live paths."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.names: dict[str, str] = {}  # key -> name, live and reserved (insertion order = age)
        self.paths: dict[str, str] = {}  # key -> CS3 path, live only

    @property
    def meta_key(self) -> str:
        return f"mounts:{self.folder}"

    def load(self, text: str | None) -> None:
        if not text:
            return
        try:
            data = json.loads(text)
            names = {str(k): str(v) for k, v in data.get("names", {}).items()}
            paths = {str(k): str(v) for k, v in data.get("paths", {}).items() if k in names}
        except (ValueError, AttributeError, TypeError):
            return  # unreadable: names are assigned afresh (nothing is written through a stale one)
        self.names, self.paths = names, paths

    def dump(self) -> str:
        return json.dumps({"names": self.names, "paths": self.paths}, sort_keys=True)

    def live(self) -> dict[str, str]:
        """{name: CS3 path} of the mounts that exist."""
        return {self.names[key]: path for key, path in self.paths.items()}

    async def update(self, items: Iterable[Mountable], owner_name: Callable[[str], Awaitable[str]]) -> bool:
        """Take the current listing; True when the assignment changed (and must be saved)."""
        before = self.dump()
        current: dict[str, Mountable] = {}
        for item in items:
            current.setdefault(item.key, item)
        taken = set(self.names.values())
        self.paths = {}
        for key in sorted(current):  # a deterministic order for names assigned in the same refresh
            item = current[key]
            if key not in self.names:
                base = clean_name(item.name, item.path)
                name = base
                if name in taken:
                    owner = clean_name(await owner_name(item.owner), "") if item.owner else "shared"
                    name, n = f"{base} ({owner})", 2
                    while name in taken:
                        name, n = f"{base} ({owner} {n})", n + 1
                self.names[key] = name
                taken.add(name)
            self.paths[key] = item.path
        reserved = [key for key in self.names if key not in self.paths]
        for key in reserved[: max(0, len(reserved) - MAX_TOMBSTONES)]:
            del self.names[key]
        return self.dump() != before


class MountTable:
    """The virtual folders' assignments, loaded from and saved to the journal."""

    def __init__(self) -> None:
        self.folders: dict[str, MountNames] = {}
        self.loaded = False

    def folder(self, folder: str) -> MountNames:
        if folder not in self.folders:
            self.folders[folder] = MountNames(folder)
        return self.folders[folder]

    async def load(self, store: MetaStore, folders: Iterable[str]) -> None:
        meta = await store.meta()
        for folder in folders:
            self.folder(folder).load(meta.get(self.folder(folder).meta_key))
        self.loaded = True

    async def update(
        self,
        store: MetaStore | None,
        folder: str,
        items: Iterable[Mountable],
        owner_name: Callable[[str], Awaitable[str]],
    ) -> dict[str, str]:
        """Assign names to the current listing of ``folder``; {name: CS3 path} of the live mounts."""
        names = self.folder(folder)
        if await names.update(items, owner_name) and store is not None:
            await store.set_meta(names.meta_key, names.dump())
        return names.live()
