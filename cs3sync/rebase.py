"""A pending save that finds a foreign change: merge instead of a conflict copy where possible.

The save executor (`cs3sync.commands`) calls `merge_foreign_change` when the storage holds a version
other than the one the save was based on. It fetches the three versions (the base from what the
journal kept of our last write, else from the storage's version history; theirs from the storage;
ours from the spool), merges them (`cs3sync.merge`, in a worker thread) and, when nothing overlaps,
makes the running journal entry carry the merge, based on the storage's current version
(`Journal.rebase_save`, one transaction). The executor then uploads it like any save: conflict-checked
against that version, so a third change in the meantime is merged again or ends in a conflict copy.

Durability: before the rebase commits, a crash leaves the entry as it was (the merge is redone after
restart); after it, the entry is an ordinary save of the merged content (the upload's postcondition
check recognises a merge that already landed). Nothing here writes to the storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cs3sync.cs3 import CS3Client, errors
from cs3sync.cs3.types import ResourceInfo
from cs3sync.journal import Entry
from cs3sync.logs import get_logger
from cs3sync.merge import MergeResult, describe, merge3_in_thread, why_not

log = get_logger(__name__)

#: Larger files are not merged (the diff would take too long): conflict copy as before.
MAX_MERGE_BYTES = 32 * 1024 * 1024


class MergeContext(Protocol):
    """What the merge needs from the engine (part of `commands.CommandContext`)."""

    client: CS3Client

    @property
    def merge_enabled(self) -> bool: ...

    def now(self) -> float: ...

    def crash_point(self, label: str) -> None: ...

    async def read_blob(self, sha256: str) -> bytes: ...

    async def kept_content(self, path: str, etag: str) -> bytes | None: ...

    async def rebase(self, entry: Entry, data: bytes, info: ResourceInfo, merge: dict[str, Any]) -> Entry: ...

    async def note_merge(self, entry: Entry, merge: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class MergeAttempt:
    """``entry``: the rebased entry (carrying the merge) when merged, else None; ``note``: why not, short,
    for the conflict message ("" when merged or no merge was tried)."""

    entry: Entry | None = None
    note: str = ""


async def merge_foreign_change(ctx: MergeContext, entry: Entry, info: ResourceInfo) -> MergeAttempt:
    """Try to merge the pending save ``entry`` with the foreign version ``info`` (a fresh Stat)."""
    if not ctx.merge_enabled or not entry.base_etag or not entry.blob:
        return MergeAttempt()
    path = entry.path
    if max(entry.size or 0, info.size or 0) > MAX_MERGE_BYTES:
        why = "the file is too large to merge"
        return await _not_merged(ctx, entry, _reason(why), why)
    base = await _base_content(ctx, path, entry.base_etag)
    if base is None:
        why = "the version it was based on is no longer known"
        return await _not_merged(ctx, entry, _reason(why), why)
    try:
        async with ctx.client.download(path) as stream:
            theirs = await stream.read()
            theirs_info = stream.info  # the version these bytes are: the merge will be based on it
    except errors.NotFound:
        return MergeAttempt()  # removed since the Stat: the caller's conflict handling decides
    assert theirs_info is not None, "download() Stats before it reads"
    ours = await ctx.read_blob(entry.blob)
    ours_newer = entry.created_at >= theirs_info.mtime_ns / 1e9
    result = await merge3_in_thread(path, base, ours, theirs, ours_newer=ours_newer)
    who = await _author(ctx.client, theirs_info)
    note = _note(result, who, theirs_info)
    if result.merged is None:
        return await _not_merged(ctx, entry, note, why_not(result))
    ctx.crash_point("merge_computed")
    rebased = await ctx.rebase(entry, result.merged, theirs_info, note)
    ctx.crash_point("merge_recorded")
    log.info("save.merged", entry_id=entry.id, path=path, kind=result.kind, changes=result.theirs_changes)
    return MergeAttempt(rebased)


async def _base_content(ctx: MergeContext, path: str, etag: str) -> bytes | None:
    """The bytes of version ``etag``: the journal's copy of our last write, else the storage's
    version history. Versions are matched by etag only: Reva reports a version's own etag
    (pkg/storage/fs/eos/revisions.go, convertToRevision: ``Etag: md.Etag`` of the version file); a
    storage whose version etags differ from the live file's simply has no match, and a wrong base
    would silently undo someone's change, so then there is no merge."""
    kept = await ctx.kept_content(path, etag)
    if kept is not None:
        return kept
    try:
        versions = await ctx.client.list_versions(path)
        for version in versions:
            if version.etag and _same_etag(version.etag, etag):
                data: bytes = await ctx.client.read_bytes(path, version_key=version.key)
                return data
    except (errors.Transient, errors.Unauthenticated):
        raise  # the engine retries or pauses: the merge is tried again then
    except errors.CS3Error:
        return None  # no history we may read (or it expired meanwhile): a conflict copy, as before
    return None


def _same_etag(a: str, b: str) -> bool:
    return a.strip('"') == b.strip('"')


async def _author(client: CS3Client, info: ResourceInfo) -> str | None:
    """Whose change this is, as far as CS3 tells: the file's owner when that is someone else (a file
    shared with us). CS3 records no last modifier, so a change to our own file is "someone else's"."""
    owner = info.owner
    if not owner:
        return None
    try:
        me = await client.whoami()
        if owner == me.opaque_id:
            return None
        user = await client.get_user(owner)
    except errors.CS3Error:
        return None
    return user.display_name or user.username or None


def _note(result: MergeResult, who: str | None, info: ResourceInfo) -> dict[str, Any]:
    """What `status` and the sync panel show of a merge (``extra['merge']`` of the entry)."""
    return {
        "merged": result.clean,
        "kind": result.kind,
        "with": who,
        "changes": result.theirs_changes,
        "unit": result.unit,
        "collisions": list(result.collisions),
        "theirs_etag": info.etag,
        "message": describe(result, who),
    }


def _reason(why: str) -> dict[str, Any]:
    return {"merged": False, "collisions": [], "message": f"not merged: {why}"}


async def _not_merged(ctx: MergeContext, entry: Entry, note: dict[str, Any], why: str) -> MergeAttempt:
    await ctx.note_merge(entry, note)
    log.info("save.not_merged", entry_id=entry.id, path=entry.path, reason=note["message"])
    return MergeAttempt(None, why)
