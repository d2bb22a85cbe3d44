"""The journal schema and its forward migrations.

The version lives in ``meta('schema_version')``. ``MIGRATIONS[n]`` takes a database from version n-1 to
n; version 1 creates everything. Migrations only ever move forward; a database newer than this code is
refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_OPS = "'save','mkdir','delete','rename','copy','checkpoint'"
_STATES = "'queued','running','retrying','blocked','conflict','failed','done','superseded','cancelled'"


def _refcount_triggers(table: str, column: str) -> list[str]:
    """Keep ``blobs.refcount`` equal to the number of rows referencing each blob, whatever writes them."""
    return [
        f"""CREATE TRIGGER {table}_{column}_ins AFTER INSERT ON {table} WHEN NEW.{column} IS NOT NULL
            BEGIN UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = NEW.{column}; END""",
        f"""CREATE TRIGGER {table}_{column}_del AFTER DELETE ON {table} WHEN OLD.{column} IS NOT NULL
            BEGIN UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = OLD.{column}; END""",
        f"""CREATE TRIGGER {table}_{column}_upd AFTER UPDATE OF {column} ON {table}
            WHEN OLD.{column} IS NOT NEW.{column}
            BEGIN
                UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = OLD.{column};
                UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = NEW.{column};
            END""",
    ]


_V1 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        refcount INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL)""",
    "CREATE INDEX blobs_unreferenced ON blobs(refcount) WHERE refcount <= 0",
    f"""CREATE TABLE entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL CHECK (op IN ({_OPS})),
        path TEXT NOT NULL,
        src_path TEXT,
        kind TEXT NOT NULL DEFAULT 'file',
        state TEXT NOT NULL CHECK (state IN ({_STATES})),
        blocked_reason TEXT,
        blob TEXT REFERENCES blobs(sha256),
        sha256 TEXT,
        size INTEGER,
        base_etag TEXT,
        base_fileid TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        claims INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        lease_owner TEXT,
        lease_expires REAL,
        last_error TEXT,
        last_error_kind TEXT,
        result_etag TEXT,
        result_mtime REAL,
        result_fileid TEXT,
        presented_mtime REAL,
        superseded_by INTEGER,
        conflict_path TEXT,
        resolution TEXT,
        needs_check INTEGER NOT NULL DEFAULT 0,
        large INTEGER NOT NULL DEFAULT 0,
        prior_blobs TEXT,
        extra TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL)""",
    "CREATE INDEX entries_state ON entries(state, id)",
    # Candidates of the claim in journal order, so it stops at the first runnable one.
    "CREATE INDEX entries_runnable ON entries(id) WHERE state IN ('queued', 'retrying')",
    "CREATE INDEX entries_path ON entries(path)",
    # The paths an entry touches (self = 1) and all their ancestors (self = 0), as keys with a trailing
    # '/' (see paths.path_rows). Two entries are related (same path, ancestor or descendant) exactly
    # when one's self key equals any key of the other: equality joins on an index, so the claim costs
    # O(depth) lookups per candidate instead of a scan of every pending path.
    """CREATE TABLE entry_paths (
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        self INTEGER NOT NULL,
        PRIMARY KEY (entry_id, key))""",
    "CREATE INDEX entry_paths_key ON entry_paths(key, entry_id)",
    "CREATE INDEX entry_paths_self_key ON entry_paths(key, entry_id) WHERE self = 1",
    """CREATE TABLE uploads (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        endpoint TEXT,
        url TEXT NOT NULL,
        token TEXT,
        token_expires REAL,
        total INTEGER NOT NULL,
        chunk_size INTEGER,
        offset INTEGER NOT NULL DEFAULT 0,
        sent INTEGER NOT NULL DEFAULT 0,
        checksum TEXT,
        resets INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE upload_staging (
        path TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE upload_staging_chunks (
        path TEXT NOT NULL REFERENCES upload_staging(path) ON DELETE CASCADE,
        chunk INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL,
        PRIMARY KEY (path, chunk))""",
    """CREATE TABLE remote_state (
        path TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        fileid TEXT,
        etag TEXT,
        size INTEGER,
        mtime REAL,
        checksum TEXT,
        kind TEXT NOT NULL DEFAULT 'file',
        presented_mtime REAL,
        cached_blob TEXT REFERENCES blobs(sha256),
        updated_at REAL NOT NULL)""",
    "CREATE INDEX remote_state_parent ON remote_state(parent)",
    """CREATE TABLE checkpoints (
        path TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        blob TEXT NOT NULL REFERENCES blobs(sha256),
        size INTEGER NOT NULL,
        remote_path TEXT,
        entry_id INTEGER,
        created_at REAL NOT NULL,
        PRIMARY KEY (path, checkpoint_id))""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        entry_id INTEGER,
        kind TEXT NOT NULL,
        message TEXT,
        data TEXT)""",
    "CREATE INDEX events_entry ON events(entry_id)",
    """CREATE TABLE control (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        paused INTEGER NOT NULL DEFAULT 0,
        engine_state TEXT NOT NULL DEFAULT 'stopped',
        last_error TEXT,
        owner_pid INTEGER,
        heartbeat REAL,
        generation INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL DEFAULT 0)""",
    "INSERT INTO control (id) VALUES (1)",
    *_refcount_triggers("entries", "blob"),
    *_refcount_triggers("checkpoints", "blob"),
    *_refcount_triggers("remote_state", "cached_blob"),
]

MIGRATIONS: dict[int, list[str]] = {1: _V1}


def current_version(conn: sqlite3.Connection) -> int:
    """0 for an empty database."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn`` (a plain sqlite3 connection in autocommit mode) to ``SCHEMA_VERSION``, one
    transaction per step. Returns the version found before migrating."""
    found = current_version(conn)
    if found > SCHEMA_VERSION:
        raise ValueError(f"journal schema version {found} is newer than this cs3sync ({SCHEMA_VERSION})")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
