"""Path helpers: normalisation, the ordering key, and where journals live."""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path


def normalize_path(path: str) -> str:
    """A CS3 absolute path in canonical form: leading '/', no trailing '/', no '.' or '//'."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute CS3 path: {path!r}")
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # posixpath keeps a leading '//'
        norm = "/" + norm.lstrip("/")
    return norm


def parent_path(path: str) -> str:
    """The parent of a normalised path ("" for the root): the ``parent`` column of ``remote_state``."""
    return posixpath.dirname(path) if path != "/" else ""


def path_key(path: str) -> str:
    """The key stored in ``entry_paths``: the path with a trailing '/'. Two paths are the same, an
    ancestor or a descendant of each other exactly when one key is a prefix of the other ('/a/' is not
    a prefix of '/ab/'; the root '/' is a prefix of everything)."""
    norm = normalize_path(path)
    return norm if norm == "/" else norm + "/"


def path_rows(*paths: str) -> list[tuple[str, int]]:
    """The ``entry_paths`` rows of an entry touching ``paths``: (key, 1) for each path and (key, 0) for
    each of their ancestors, without duplicates (a touched path wins over an ancestor)."""
    rows: dict[str, int] = {}
    for path in paths:
        key = path_key(path)
        rows[key] = 1
        parts = key.strip("/").split("/") if key != "/" else []
        for depth in range(len(parts)):
            ancestor = "/" + "/".join(parts[:depth]) + ("/" if depth else "")
            rows.setdefault(ancestor, 0)
    return sorted(rows.items())


def is_same_or_related(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` are equal or one is an ancestor of the other."""
    ka, kb = path_key(a), path_key(b)
    return ka.startswith(kb) or kb.startswith(ka)


def is_under(path: str, prefix: str) -> bool:
    """True if ``path`` is ``prefix`` or below it."""
    return path_key(path).startswith(path_key(prefix))


def account_hash(host: str, user: str) -> str:
    """Stable short id of an account: the journal of one user on one gateway."""
    return hashlib.sha256(f"{host}\0{user}".encode()).hexdigest()[:16]


def default_journal_dir(host: str, user: str) -> Path:
    """``$CS3SYNC_JOURNAL_DIR`` if set, else ``$XDG_STATE_HOME/cs3sync/<account-hash>/``
    (``~/.local/state`` when XDG_STATE_HOME is unset)."""
    env = os.environ.get("CS3SYNC_JOURNAL_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cs3sync" / account_hash(host, user)
