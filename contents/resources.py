"""`ResourceIds`: Jupyter paths <-> CS3 resource ids, for RTC's file ids (contents/fileids.py).

A CS3 resource keeps its id across renames, by anyone: the file id manager asks here which resource a
path holds and where a resource is now. Asked synchronously (on the event loop), it answers from what this
process saw; asked asynchronously, it asks the storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tornado.web import HTTPError

from contents.models import NOT_FOUND
from cs3sync.cs3.types import FileId

if TYPE_CHECKING:
    import logging

    from contents.pending import PendingView
    from contents.places import Places
    from contents.remote import RemoteView
    from contents.runtime import Runtime


class ResourceIds:
    """The `ResourceIndex` the file id manager needs (contents/fileids.py)."""

    def __init__(
        self,
        places: Places,
        runtime: Runtime,
        remote: RemoteView,
        pending: PendingView,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.places = places
        self.runtime = runtime
        self.remote = remote
        self.pending = pending
        self.log = log

    def seen_file_id(self, api_path: str) -> FileId | None:
        """The CS3 resource id this process last saw at a Jupyter path, without asking the storage
        (jupyter_server_fileid asks synchronously, on the event loop); None if it saw none."""
        path_map = self.places.path_map
        if path_map is None:
            return None
        try:
            cs3_path = path_map.to_cs3(api_path)
        except HTTPError:
            return None
        seen = self.remote.cached_or_known(cs3_path)
        return FileId.parse(str(seen.file_id)) if seen is not NOT_FOUND and seen.file_id else None

    async def file_id_of(self, api_path: str) -> FileId | None:
        """The CS3 resource id at a Jupyter path now (one Stat, asked even in the moments after an
        outage when reads answer from what we know: the file id manager asks in the background, for a
        file whose creation was journaled while the storage was away); None when nothing is there yet
        or the storage cannot say."""
        try:
            _, cs3_path = await self.places.locate(api_path)
            client = await self.runtime.get_client()
            info = await client.stat(cs3_path)
        except Exception as exc:  # unreachable, not there yet, refused: asked again later
            self.log.debug("cs3sync: resource id of %s unknown: %s", api_path, exc)
            return None
        return FileId.parse(str(info.file_id)) if info.file_id else None

    async def api_path_of(self, file_id: FileId) -> str | None:
        """Where a resource is now, as a Jupyter path (a Stat by resource id): it follows a rename made
        by anyone. None when it is gone, outside what this server shows, or the storage cannot say."""
        client = await self.runtime.get_client()
        path_map = await self.places.get_path_map()
        try:
            info = await client.stat(file_id)
        except Exception as exc:
            self.log.debug("cs3sync: no path for resource %s: %s", file_id, exc)
            return None
        return path_map.to_api(info.path)

    def has_pending(self, api_path: str) -> bool:
        """Whether a journaled change of ours at this Jupyter path has not reached the storage yet."""
        path_map = self.places.path_map
        if path_map is None:
            return False
        try:
            return self.pending.of(path_map.to_cs3(api_path)) is not None
        except HTTPError:
            return False
