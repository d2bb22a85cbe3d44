"""Jupyter API paths: validation, confinement under ``root_path``, and mapping to CS3 paths.

An API path is ``/``-separated, relative to the root, without a leading slash; ``""`` is the root.
Anything that could leave the root or confuse the storage is refused with 400 before it reaches CS3:
``..`` and ``.`` components, NUL and other control characters, backslashes (Windows separators),
over-long names and paths.
"""

from __future__ import annotations

import posixpath

from tornado.web import HTTPError

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def _bad(message: str) -> HTTPError:
    return HTTPError(400, message, reason="bad path")


def normalize_api_path(path: str) -> str:
    """Validated, canonical form of an API path (no leading/trailing or doubled slashes)."""
    if not isinstance(path, str):
        raise _bad("Path must be a string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise _bad("Path contains control characters")
    if "\\" in path:
        raise _bad("Path contains a backslash")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _bad("Path is too long")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        if part in (".", ".."):
            raise _bad("Path contains '.' or '..'")
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad("Path is not valid UTF-8") from None
        if len(encoded) > MAX_NAME_BYTES:
            raise _bad("File name is too long")
    return "/".join(parts)


def api_parent(path: str) -> str:
    return path.rpartition("/")[0]


def api_name(path: str) -> str:
    return path.rpartition("/")[2]


def api_join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def is_hidden_api_path(path: str) -> bool:
    """Any component starting with a dot (the name rule; costs no call)."""
    return any(part.startswith(".") for part in path.split("/") if part)


class PathMapper:
    """Maps API paths to CS3 absolute paths under a root and back.

    Besides the root, virtual top-level folders (e.g. ``Spaces``, ``Shared with me``) can mount other
    CS3 trees: ``set_mounts("Spaces", {name: cs3_path})``. A path under the root always maps to the
    root; otherwise the longest mount prefix wins.
    """

    def __init__(self, root: str) -> None:
        self.root = posixpath.normpath("/" + root.strip("/"))
        self.mounts: dict[str, dict[str, str]] = {}

    def set_mounts(self, folder: str, mounts: dict[str, str]) -> None:
        """Mount these trees under ``folder``; with none, the folder is not virtual (a real folder of
        that name under the root stays reachable)."""
        if not mounts:
            self.mounts.pop(folder, None)
            return
        self.mounts[folder] = {name: posixpath.normpath("/" + p.strip("/")) for name, p in mounts.items()}

    def is_virtual(self, api_path: str) -> bool:
        """A mount folder itself (listing of its mounts, read-only)."""
        return api_path in self.mounts

    def space_of(self, api_path: str) -> tuple[str, str]:
        """Which tree an API path lies in: ("", "") for the root, (folder, name) for a mount."""
        head, _, rest = normalize_api_path(api_path).partition("/")
        if head in self.mounts and rest:
            return head, rest.partition("/")[0]
        return "", ""

    def to_cs3(self, api_path: str) -> str:
        api_path = normalize_api_path(api_path)
        if not api_path:
            return self.root
        head, _, rest = api_path.partition("/")
        if head in self.mounts and rest:
            name, _, below = rest.partition("/")
            base = self.mounts[head].get(name)
            if base is None:
                raise HTTPError(404, f"No such file or directory: {api_path}")
            return posixpath.join(base, below) if below else base
        return posixpath.join(self.root, api_path)

    def to_api(self, cs3_path: str) -> str | None:
        """API path of a CS3 path (under the root or a mount); None for anything outside."""
        cs3_path = posixpath.normpath("/" + cs3_path.lstrip("/"))
        relative = _relative(cs3_path, self.root)
        if relative is not None:
            return relative
        best: tuple[int, str] | None = None
        for folder, mounts in self.mounts.items():
            for name, base in mounts.items():
                below = _relative(cs3_path, base)
                if below is not None and (best is None or len(base) > best[0]):
                    best = (len(base), api_join(folder, name, below))
        return best[1] if best else None


def _relative(path: str, base: str) -> str | None:
    if path == base:
        return ""
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None
