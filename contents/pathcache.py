"""`PathCache`: values by CS3 path, where forgetting a path *and everything below it* costs what is
below it, not the size of the cache.

`RemoteView` forgets the cached Stats of a path, its descendants and its folder after each of our writes
(and after each landing). Scanning every cached path for the prefix made that O(cache) per write, and
the cache holds every path Stat'ed or listed recently: creating 2,000 files in a folder scanned a
cache that grew by one path per file, for every file (quadratic in a burst). Here each cached path is
linked to its folder, and each folder to its own, so a subtree is found by walking down from its root.
"""

from __future__ import annotations

import posixpath
from typing import Generic, TypeVar

V = TypeVar("V")


class PathCache(Generic[V]):
    """A dict of path -> value with a tree index; cleared when it would hold more than ``limit`` paths
    (a cache: whatever it forgets is asked again)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[str, V] = {}
        # folder -> the names below it that are cached or lead to a cached path (as full paths)
        self._children: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, path: str) -> bool:
        return path in self._items

    def get(self, path: str) -> V | None:
        return self._items.get(path)

    def put(self, path: str, value: V) -> None:
        if path not in self._items and len(self._items) >= self.limit:
            self.clear()
        self._items[path] = value
        child, parent = path, posixpath.dirname(path)
        while parent != child:  # link the path up to the first folder that already leads to it
            linked = self._children.setdefault(parent, set())
            if child in linked:
                break
            linked.add(child)
            child, parent = parent, posixpath.dirname(parent)

    def pop(self, path: str) -> V | None:
        """Forget this path only (what is below it stays)."""
        value = self._items.pop(path, None)
        if value is not None and not self._children.get(path):
            self._unlink(path)
        return value

    def drop_tree(self, path: str) -> None:
        """Forget ``path`` and every path below it."""
        root = path.rstrip("/") or "/"
        stack = [root]
        while stack:
            current = stack.pop()
            self._items.pop(current, None)
            stack.extend(self._children.pop(current, ()))
        self._unlink(root)

    def clear(self) -> None:
        self._items.clear()
        self._children.clear()

    def _unlink(self, path: str) -> None:
        """Remove ``path`` from its folder's children, and folders left leading nowhere from theirs."""
        child, parent = path, posixpath.dirname(path)
        while parent != child:
            linked = self._children.get(parent)
            if linked is None:
                return
            linked.discard(child)
            if linked:
                return
            del self._children[parent]
            if parent in self._items:
                return
            child, parent = parent, posixpath.dirname(parent)
