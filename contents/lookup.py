"""`Lookup`: what is at a path now, for a request: the journal's pending state (`PendingView`) on top of
what the storage holds (`RemoteView`).

A read and a write look differently: for a read a path is missing (404) only when the storage said so and
nothing is pending, and an outage with nothing known is a 503; for a write a missing path is a new file,
and an outage means "write blind" (journaled; the engine checks when it applies the write).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tornado.web import HTTPError

from contents.errors import is_signed_out, is_unreachable, to_http_error
from contents.models import NOT_FOUND, Pending, Stat

if TYPE_CHECKING:
    from contents.pending import PendingView
    from contents.remote import RemoteView


class Lookup:
    """(pending state, remote info or NOT_FOUND) of a path, for a read or for a write."""

    def __init__(self, pending: PendingView, remote: RemoteView) -> None:
        self.pending = pending
        self.remote = remote

    async def read(self, api_path: str, cs3_path: str) -> tuple[Pending | None, Stat]:
        """(pending state, remote info or NOT_FOUND); raises HTTPError 404 when neither exists.

        An outage is a 503, never a 404: a path only reads as missing when the storage said so.
        """
        pending = self.pending.of(cs3_path)
        if pending is not None and pending.deleted:
            raise HTTPError(404, f"No such file or directory: {api_path}")
        if pending is not None and pending.kind == "directory" and pending.source is None:
            return pending, NOT_FOUND
        info: Stat
        try:
            if pending is not None and pending.source is not None and pending.blob_path is None:
                info = await self.remote.stat(pending.source)  # pending rename/copy: read the source
                if info is not NOT_FOUND:
                    return None, info  # info.path names where the bytes are until the rename lands
            info = await self.remote.stat(cs3_path)
        except Exception as exc:
            if pending is not None and (is_unreachable(exc) or is_signed_out(exc)):
                return pending, NOT_FOUND
            if is_unreachable(exc):
                raise HTTPError(503, f"Storage unreachable, no cached copy of {api_path}") from exc
            raise to_http_error(exc, api_path) from exc
        if info is NOT_FOUND and pending is None:
            raise HTTPError(404, f"No such file or directory: {api_path}")
        return pending, info

    async def write(self, api_path: str, cs3_path: str) -> tuple[Pending | None, Stat]:
        """Like `read`, but a missing path is fine and an outage means "write blind"
        (journaled; the engine checks when it applies the write)."""
        pending = self.pending.of(cs3_path)
        info: Stat
        try:
            info = await self.remote.stat(cs3_path)  # offline: what we last knew of it (the write's base)
        except Exception as exc:
            if is_signed_out(exc):
                # Signed out (token refused): the save is journaled like an offline one and waits in
                # the engine's auth pause; what we last knew of the file is its base.
                self.remote.mark_signed_out()
                info = await self.remote.known(cs3_path) or NOT_FOUND
            elif not is_unreachable(exc):
                raise to_http_error(exc, api_path) from exc
            else:
                info = NOT_FOUND  # offline and never seen: a new file (the engine checks on apply)
        if pending is not None and pending.deleted:
            pending = None
        return pending, info
