"""Opening the SQLite database: connections with the journal's pragmas, the integrity check, quarantine of
a broken database (renamed aside, never deleted), creation and migration."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiosqlite
import anyio.to_thread

from cs3sync.journal import schema
from cs3sync.journal.fs import FILE_MODE, ensure_private_file

BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")


async def connect(db: Path, *, readonly: bool) -> aiosqlite.Connection:
    """A connection with the journal's pragmas. Autocommit mode: transactions are explicit."""
    if readonly:
        conn = await aiosqlite.connect(f"file:{quote(str(db))}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = await aiosqlite.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        await conn.close()  # its thread would otherwise keep the process alive
        raise
    return conn


async def run_on(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(connection)`` on the connection's own thread: several statements in one round trip from
    the event loop instead of one each (a save's enqueue was about ten, and each round trip waits for
    the loop when something else runs on it). aiosqlite has no public call for this; ``_execute`` is
    what each of its own methods calls with the underlying ``sqlite3.Connection``."""
    result: T = await conn._execute(fn, conn._conn)  # type: ignore[no-untyped-call]
    return result


async def fetchall(
    conn: aiosqlite.Connection, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()
) -> list[sqlite3.Row]:
    """Every row of one statement (aiosqlite types its result as a bare iterable)."""
    return list(await conn.execute_fetchall(sql, params))


def quick_check(db: Path) -> str | None:
    """None if the database is sound, else the reason. Blocking."""
    try:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            schema.current_version(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if rows != [("ok",)]:
        return "; ".join(str(r[0]) for r in rows[:5])
    return None


def quarantine(db: Path, stamp: str) -> Path:
    """Rename a broken database (and its WAL/SHM) aside. Never deletes it."""
    aside = db.with_name(f"{db.name}.corrupt-{stamp}")
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    os.replace(db, aside)
    return aside


def prepare_owner_db(db: Path, stamp: str) -> tuple[Path | None, str | None]:
    """quick_check (quarantining a broken db), create with 0600, WAL, migrate. Blocking.
    Returns (quarantined path, reason) when the db had to be set aside."""
    quarantined: Path | None = None
    reason: str | None = None
    if db.exists() and db.stat().st_size > 0:
        reason = quick_check(db)
        if reason is not None:
            quarantined = quarantine(db, stamp)
    ensure_private_file(db)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        schema.migrate(conn)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            side.chmod(FILE_MODE)
    return quarantined, reason


#: Result sets with more rows are turned into values in a worker thread (~5-10 µs a row on the loop).
CONVERT_INLINE_ROWS = 200


async def convert_rows(rows: list[sqlite3.Row], fn: Callable[[sqlite3.Row], T]) -> list[T]:
    """``[fn(r) for r in rows]``, off the event loop for big result sets (a 1,000-entry folder's
    remote_state, a big queue)."""
    if len(rows) < CONVERT_INLINE_ROWS:
        return [fn(r) for r in rows]
    return await anyio.to_thread.run_sync(lambda: [fn(r) for r in rows])


def record_converter(cls: type[T]) -> Callable[[sqlite3.Row], T]:
    """A row -> dataclass converter for tables whose columns carry the dataclass's field names."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return lambda r: cls(**{name: r[name] for name in names})
