"""One idempotent executor per journal op.

Every executor starts with its postcondition ("is it already done?"), so running a command twice, or
resuming it after a crash at any point, has the effect of running it once. Executors never touch the
journal's state machine: they return an `Outcome` (done or conflict) or raise a `cs3sync.cs3.errors`
exception that the engine classifies (transient -> backoff, connectivity -> offline breaker, auth ->
auth pause, anything else -> failed). What they need from the engine comes through `CommandContext`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

import anyio
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from cs3sync.cs3 import CS3Client, errors
from cs3sync.cs3.types import LockContext, ResourceInfo, UploadSession
from cs3sync.journal import Entry
from cs3sync.logs import get_logger
from cs3sync.rebase import MergeContext, merge_foreign_change

log = get_logger(__name__)

HASH_BLOCK = 1 << 20
#: ``Entry.extra`` key of a save made where the storage had no file (`SyncEngine.submit_save`): a file
#: found there when it is applied is someone else's, never overwritten.
CREATE = "create"


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Outcome:
    """What an executor achieved. `info` is the remote state after the command (None after a delete)."""

    state: Literal["done", "conflict"]
    info: ResourceInfo | None = None
    conflict_path: str | None = None
    message: str = ""
    # True when the postcondition already held, i.e. this attempt changed nothing on the storage.
    already_done: bool = False
    # The entry as the executor left it when a merge made it carry new content (`cs3sync.rebase`).
    entry: Entry | None = None


class CommandError(Exception):
    """A permanent problem the storage did not report as a typed error (e.g. a file where a folder
    must be). The engine parks the entry as failed, keeping its data."""


# ---------------------------------------------------------------------------------------------- context


class CommandContext(MergeContext, Protocol):
    """What an executor may use besides the CS3 client. Implemented by the engine."""

    client: CS3Client

    def blob_path(self, sha256: str) -> Path: ...

    def spool_tmp_dir(self) -> Path: ...

    def now(self) -> float: ...

    def lock_for(self, path: str) -> LockContext | None: ...

    async def recorded_session(self, entry: Entry) -> UploadSession | None: ...

    async def record_session(self, entry: Entry, session: UploadSession) -> None: ...

    async def is_own_version(self, entry: Entry, info: ResourceInfo) -> bool: ...

    def progress(self, entry: Entry, sent: int, total: int) -> None: ...

    def crash_point(self, label: str) -> None: ...

    def fresh_base(self, entry: Entry) -> bool: ...

    async def requests_first(self) -> None:
        """Before the next call to the storage: wait (briefly) while a request journals a change."""
        ...


Executor = Callable[[Entry, CommandContext], Awaitable[Outcome]]


# ---------------------------------------------------------------------------------------------- helpers


def _is_transient(exc: BaseException) -> bool:
    # Connectivity failures are not retried here: the client has already retried the call, and the
    # engine's offline breaker must see them promptly.
    return isinstance(exc, errors.Transient) and not exc.connectivity


async def stat_or_none(client: CS3Client, path: str, attempts: int = 2) -> ResourceInfo | None:
    """Stat with a quick in-attempt retry (Stat is idempotent: safe to repeat); NotFound -> None."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        retry=retry_if_exception(_is_transient),
        reraise=True,
    ):
        with attempt:
            try:
                return await client.stat(path)
            except errors.NotFound:
                return None
    return None  # unreachable; keeps type checkers calm


def adler32_file(path: Path) -> int:
    """Streamed adler32 of a file (run it in a worker thread: blobs can be large)."""
    value = 1
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            value = zlib.adler32(block, value)
    return value


async def adler32_of(path: Path) -> int:
    return await anyio.to_thread.run_sync(adler32_file, path)


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


async def checksum_matches(checksum: str | None, path: Path) -> bool | None:
    """Does the storage's checksum (``"<algo>:<hex>"``) match the file at ``path``? None when there is
    no checksum we can compute: EOS reports adler32, oCIS SHA1 (docs/storage-behaviours.md row 3)."""
    algo, _, value = (checksum or "").partition(":")
    algo = algo.lower()
    if algo == "adler32":
        remote = parse_adler32(checksum)
        return None if remote is None else remote == await adler32_of(path)
    if algo in ("sha1", "md5") and value:
        return value.lower() == await anyio.to_thread.run_sync(_hash_file, path, algo)
    return None


def parse_adler32(checksum: str | None) -> int | None:
    """`"adler32:<hex>"` (leading zeros may be trimmed) -> int; anything else -> None."""
    if not checksum:
        return None
    algo, _, value = checksum.partition(":")
    if algo.lower() != "adler32" or not value:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


async def same_content(info: ResourceInfo | None, blob: Path, size: int) -> bool:
    """Does the remote file `info` hold exactly the bytes of `blob`? (size, then adler32)."""
    if info is None or info.type != "file" or info.size != size:
        return False
    if size == 0:
        return True  # two empty files are the same (EOS reports no checksum for them)
    # no checksum we can compute: we cannot prove it, so we do not claim it
    return bool(await checksum_matches(info.checksum, blob))


def conflict_copy_name(path: str, when: float, taken: set[str] | None = None) -> str:
    """`<stem> (conflicted copy YYYY-MM-DD HHMMSS)<ext>` beside `path` (UTC, so it is reproducible).
    A numeric suffix keeps two conflicts of the same second apart."""
    p = PurePosixPath(path)
    stamp = dt.datetime.fromtimestamp(when, tz=dt.timezone.utc).strftime("%Y-%m-%d %H%M%S")
    suffix = p.suffix if p.stem else ""
    stem = p.stem if p.stem else p.name
    candidate = str(p.with_name(f"{stem} (conflicted copy {stamp}){suffix}"))
    n = 2
    while taken and candidate in taken:
        candidate = str(p.with_name(f"{stem} (conflicted copy {stamp} {n}){suffix}"))
        n += 1
    return candidate


async def _expected(ctx: CommandContext, entry: Entry, info: ResourceInfo, base_etag: str | None) -> bool:
    """Is the remote version one we expect: the caller's base, or one our own writes produced (an
    earlier save of this path applied while this entry waited, or a superseded save that had already
    reached the storage)? Anything else is someone else's change."""
    if base_etag is None or info.etag == base_etag:
        return True
    return await ctx.is_own_version(entry, info)


async def _ensure_parents(client: CS3Client, path: str) -> None:
    """mkdir -p the parents of `path` (the user's intent was a file there; recreating a folder someone
    removed loses nothing)."""
    parent = str(PurePosixPath(path).parent)
    missing: list[str] = []
    while parent not in ("/", "") and await stat_or_none(client, parent) is None:
        missing.append(parent)
        parent = str(PurePosixPath(parent).parent)
    for d in reversed(missing):
        try:
            await client.mkdir(d)
        except errors.AlreadyExists:
            pass


# ---------------------------------------------------------------------------------------------- uploads


async def upload_blob(
    ctx: CommandContext,
    entry: Entry,
    path: str,
    blob: Path,
    size: int,
    *,
    if_match: str | None,
    resumable: bool = True,
) -> Any:
    """Upload `blob` to `path`, resuming a recorded tus session when there is one, and recording new
    sessions so a restart resumes rather than restarts. The client re-initiates by itself on an expired
    transfer token (HTTP 403) and recognises a PUT that landed although its reply was lost. Returns the
    Stat after the upload. The journal keeps one session per entry, for its target path: uploads to
    any other path (conflict copies) are not `resumable` and start afresh after a failure."""
    client = ctx.client
    session = await ctx.recorded_session(entry) if resumable else None

    async def on_session(s: UploadSession) -> None:
        if resumable:
            await ctx.record_session(entry, s)
        # After the first confirmed tus chunk: a crash here must resume from the server's offset.
        if s.protocol == "tus" and 0 < s.offset < size:
            ctx.crash_point("mid_patch")

    crossed_half = False

    def on_progress(sent: int, total: int) -> None:
        nonlocal crossed_half
        ctx.progress(entry, sent, total)
        if not crossed_half and total and total // 2 <= sent < total:
            crossed_half = True
            ctx.crash_point("mid_put")

    kwargs: dict[str, Any] = {
        "if_match": if_match,
        "lock": ctx.lock_for(path),
        "session": session,
        "on_session": on_session,
        "precheck": False,  # we compared the etag ourselves just before (EOS ignores if_match)
        "on_progress": on_progress,
    }
    try:
        info = await client.upload(path, blob, size, **kwargs)
    except errors.NotFound:
        if session is not None:
            raise
        # Missing parent (removed by someone else): recreate it, then try once more.
        await _ensure_parents(client, path)
        info = await client.upload(path, blob, size, **kwargs)
    ctx.crash_point("upload_finished_not_marked")
    return info


async def _write_content(
    ctx: CommandContext,
    entry: Entry,
    path: str,
    blob: Path,
    size: int,
    base_etag: str | None,
    *,
    conflict_check: bool = True,
) -> Outcome:
    """The save algorithm, shared by save, copy and checkpoint.

    1. Stat: same size + checksum -> done (covers a lost reply on a completed PUT and a crash
       between the upload and the journal update; nothing is uploaded twice).
    2. The etag moved under us (someone else wrote) -> merge (`cs3sync.rebase`): the entry now carries
       the merge, based on the version found, and we go round again; where the merge is not possible,
       conflict: leave the remote alone and put our bytes beside it as a conflict copy.
    3. Otherwise upload with if_match (honoured by oCIS, ignored by EOS, hence step 2).
    """
    client = ctx.client
    merged: Any = None  # the entry as rebased by a merge
    for _ in range(3):  # a PreconditionFailed race (oCIS) sends us back to the Stat once or twice
        await ctx.requests_first()
        info = await stat_or_none(client, path)
        if info is not None and info.type != "file":
            raise CommandError(f"a folder exists at {path}")
        if await same_content(info, blob, size):
            return Outcome("done", info, already_done=True, entry=merged)
        if conflict_check and info is None and base_etag is not None:
            # The version the user edited was deleted by someone else: recreating it would undo their
            # delete without a word (our own deletes leave the save without a base, engine.submit_save).
            return await _conflict_copy(ctx, entry, path, blob, size, deleted=True)
        if (
            conflict_check
            and info is not None
            and base_etag is None
            and entry.extra.get(CREATE)
            and not await ctx.is_own_version(entry, info)
        ):
            # Created where the storage had no file, and now it has one that is not ours (an earlier
            # save of ours that landed is): someone else made it meanwhile. Theirs stays.
            return await _conflict_copy(ctx, entry, path, blob, size, created=True)
        if conflict_check and info is not None and not await _expected(ctx, entry, info, base_etag):
            attempt = await merge_foreign_change(ctx, entry, info)
            if attempt.entry is None:
                return await _conflict_copy(ctx, entry, path, blob, size, attempt.note)
            entry = merged = attempt.entry
            (blob, size), base_etag = _content(ctx, entry), entry.base_etag
            continue
        await ctx.requests_first()
        try:
            info = await upload_blob(
                ctx,
                entry,
                path,
                blob,
                size,
                if_match=info.etag if info is not None and conflict_check else None,
            )
        except errors.PreconditionFailed:
            continue
        return Outcome("done", info, entry=merged)
    return await _conflict_copy(ctx, entry, path, blob, size)


async def _conflict_copy(
    ctx: CommandContext,
    entry: Entry,
    path: str,
    blob: Path,
    size: int,
    note: str = "",
    *,
    deleted: bool = False,
    created: bool = False,
) -> Outcome:
    """Keep the user's bytes beside the foreign version, leaving the foreign version untouched.

    The name comes from the entry's creation time (when the user made this version), so a retry after a
    crash finds the copy it already wrote (same name, same content) instead of scattering copies."""
    taken: set[str] = set()
    while True:
        target = conflict_copy_name(path, entry.created_at, taken)
        existing = await stat_or_none(ctx.client, target)
        if existing is None:
            await upload_blob(ctx, entry, target, blob, size, if_match=None, resumable=False)
            break
        if await same_content(existing, blob, size):
            break
        taken.add(target)
    remote = await stat_or_none(ctx.client, path)
    what = "deleted" if deleted else "created" if created else "changed"
    return Outcome(
        "conflict",
        remote,
        conflict_path=target,
        message=f"{path} was {what} on the storage{f' ({note})' if note else ''}; "
        f"your version is in {target}",
    )


# ---------------------------------------------------------------------------------------------- executors


def _content(ctx: CommandContext, entry: Entry) -> tuple[Path, int]:
    """The spool blob of a save, a checkpoint or a copy of pending content, and its size."""
    assert entry.blob is not None and entry.size is not None, "enqueue gives it a blob"
    return ctx.blob_path(entry.blob), entry.size


def _source(entry: Entry) -> str:
    """A rename's or a copy's source path."""
    assert entry.src_path is not None, "enqueue refuses a rename or copy without one"
    return entry.src_path


async def run_save(entry: Entry, ctx: CommandContext) -> Outcome:
    blob, size = _content(ctx, entry)
    return await _write_content(ctx, entry, entry.path, blob, size, entry.base_etag)


async def run_checkpoint(entry: Entry, ctx: CommandContext) -> Outcome:
    """A checkpoint is our own file: written unconditionally (no one else edits it), as a save."""
    blob, size = _content(ctx, entry)
    return await _write_content(ctx, entry, entry.path, blob, size, None, conflict_check=False)


async def run_mkdir(entry: Entry, ctx: CommandContext) -> Outcome:
    client = ctx.client
    try:
        await client.mkdir(entry.path)
    except errors.AlreadyExists:
        pass
    except errors.NotFound:
        await _ensure_parents(client, entry.path)
        try:
            await client.mkdir(entry.path)
        except errors.AlreadyExists:
            pass
    except errors.CS3Error as exc:
        # EOS reports most namespace errors untyped: verify with a Stat before believing them.
        info = await stat_or_none(client, entry.path)
        if info is None:
            raise
        if info.type != "directory":
            raise CommandError(f"a file exists at {entry.path}") from exc
        return Outcome("done", info, already_done=True)
    info = await stat_or_none(client, entry.path)
    if info is None:
        raise errors.Transient("folder not visible after CreateContainer", connectivity=False)
    if info.type != "directory":
        return Outcome("conflict", info, message=f"a file already exists at {entry.path}")
    return Outcome("done", info)


async def run_delete(entry: Entry, ctx: CommandContext) -> Outcome:
    client = ctx.client
    if ctx.fresh_base(entry):
        # The caller Stat'ed the item a moment ago and passed its base: delete without a second Stat.
        try:
            await client.delete(entry.path, lock_id=_lock_id(ctx, entry.path))
            return Outcome("done", None)
        except errors.NotFound:
            return Outcome("done", None, already_done=True)
        except errors.CS3Error:
            pass  # fall through to the full check
    info = await stat_or_none(client, entry.path)
    if info is None:
        return Outcome("done", None, already_done=True)
    base_fileid = entry.base_fileid
    if base_fileid and str(info.file_id) != base_fileid:
        return Outcome("conflict", info, message=f"{entry.path} was replaced on the storage; not deleted")
    # A folder's etag moves with every change below it, our own included, so only files are compared.
    if info.type == "file" and not await _expected(ctx, entry, info, entry.base_etag):
        return Outcome("conflict", info, message=f"{entry.path} was changed on the storage; not deleted")
    try:
        await client.delete(entry.path, lock_id=_lock_id(ctx, entry.path))
    except errors.CS3Error:
        if await stat_or_none(client, entry.path) is None:
            return Outcome("done", None)
        raise
    return Outcome("done", None)


async def run_rename(entry: Entry, ctx: CommandContext) -> Outcome:
    client = ctx.client
    src, dst = _source(entry), entry.path
    base_fileid = entry.base_fileid
    if ctx.fresh_base(entry):
        # The caller Stat'ed source and destination a moment ago: Move straight away. The moved item
        # keeps its etag, so no Stat afterwards either (remote_state is re-keyed by the engine).
        try:
            await client.move(src, dst, lock_id=_lock_id(ctx, src))
        except errors.CS3Error:
            pass  # fall through to the full check, which also recognises a Move that happened
        else:
            ctx.crash_point("move_returned_not_recorded")
            if entry.kind == "directory" and (nested := await _undo_nesting(ctx, entry)) is not None:
                return nested
            return Outcome("done", None)
    s = await stat_or_none(client, src)
    d = await stat_or_none(client, dst)
    if s is None:
        if d is not None and (not base_fileid or str(d.file_id) == base_fileid):
            return Outcome("done", d, already_done=True)
        if d is None:
            return Outcome("conflict", None, message=f"{src} no longer exists on the storage; not renamed")
        return Outcome("conflict", d, message=f"{src} is gone and {dst} is another item; not renamed")
    if base_fileid and str(s.file_id) != base_fileid:
        return Outcome("conflict", s, message=f"{src} was replaced on the storage; not renamed")
    if d is not None and str(d.file_id) != str(s.file_id):
        return Outcome("conflict", d, message=f"{dst} already exists on the storage; not renamed")
    try:
        await client.move(src, dst, lock_id=_lock_id(ctx, src))
    except errors.CS3Error:
        # Move is not idempotent and EOS types its errors weakly: check whether it happened anyway.
        if await stat_or_none(client, src) is None and (after := await stat_or_none(client, dst)):
            return Outcome("done", after)
        raise
    ctx.crash_point("move_returned_not_recorded")
    if entry.kind == "directory" and (nested := await _undo_nesting(ctx, entry, str(s.file_id))) is not None:
        return nested
    # A Move keeps the item's etag (and on most drivers its id): no Stat needed, the engine re-keys
    # what it knows about `src` to `dst`.
    return Outcome("done", None)


async def _undo_nesting(ctx: CommandContext, entry: Entry, moved_id: str | None = None) -> Outcome | None:
    """EOS moves a folder *into* a folder that already exists at the destination (storage behaviours
    row 5), e.g. one someone created after our last look. Recognise it by the moved folder's id (kept
    by the Move), move it back and report the conflict; None when the Move did what we meant."""
    client = ctx.client
    src, dst = _source(entry), entry.path
    moved_id = moved_id or entry.base_fileid
    if not moved_id:
        return None
    d = await stat_or_none(client, dst)
    if d is None or str(d.file_id) == moved_id:
        return None
    inner = f"{dst.rstrip('/')}/{PurePosixPath(src).name}"
    i = await stat_or_none(client, inner)
    if i is None or str(i.file_id) != moved_id:
        return None
    await client.move(inner, src)
    return Outcome("conflict", d, message=f"{dst} already exists on the storage; not renamed")


async def run_copy(entry: Entry, ctx: CommandContext) -> Outcome:
    """There is no Copy RPC: upload the local blob (when the source had a pending save) or download
    the source into the spool's tmp dir and upload that."""
    if entry.blob:
        blob, size = _content(ctx, entry)
        return await _write_content(ctx, entry, entry.path, blob, size, None, conflict_check=False)
    client = ctx.client
    src = _source(entry)
    src_info = await stat_or_none(client, src)
    dst_info = await stat_or_none(client, entry.path)
    if src_info is None:
        if dst_info is not None:
            return Outcome("done", dst_info, already_done=True)
        return Outcome("conflict", None, message=f"{src} no longer exists; not copied")
    if src_info.type != "file":
        raise CommandError("copying folders is not supported")
    if (
        dst_info is not None
        and dst_info.size == src_info.size
        and dst_info.checksum
        and dst_info.checksum.lower() == (src_info.checksum or "").lower()
    ):
        return Outcome("done", dst_info, already_done=True)
    tmp = Path(await anyio.to_thread.run_sync(_new_tmp_file, ctx.spool_tmp_dir()))
    try:
        size = 0
        async with await anyio.open_file(tmp, "wb") as out, client.download(src) as stream:
            async for chunk in stream:
                await out.write(chunk)
                size += len(chunk)
        return await _write_content(ctx, entry, entry.path, tmp, size, None, conflict_check=False)
    finally:
        await anyio.Path(tmp).unlink(missing_ok=True)


def _new_tmp_file(tmp_dir: Path) -> str:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="copy-", dir=tmp_dir)
    os.close(fd)
    return name


def _lock_id(ctx: CommandContext, path: str) -> str | None:
    lock = ctx.lock_for(path)
    return lock.lock_id if lock is not None else None


EXECUTORS: dict[str, Executor] = {
    "save": run_save,
    "mkdir": run_mkdir,
    "delete": run_delete,
    "rename": run_rename,
    "copy": run_copy,
    "checkpoint": run_checkpoint,
}
