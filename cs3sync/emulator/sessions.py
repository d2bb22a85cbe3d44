"""Upload sessions created by InitiateFileUpload (one id for simple and tus, as localfs): their row,
their partial data file, their expiry."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .backing import Backing
from .config import UserSpec
from .nodes import Node, Session


class UploadSessions:
    def __init__(self, backing: Backing) -> None:
        self._b = backing

    def gc_sessions(self) -> None:
        """Drop upload sessions whose transfer token has expired (and their partial data)."""
        with self._b.mutex:
            rows = self._b.db.execute(
                "SELECT id FROM uploads WHERE expires <= ?", (self._b.clock.now(),)
            ).fetchall()
        for row in rows:
            self.finish_session(row["id"])

    def create_session(self, node: Node, user: UserSpec, length: int, **fields: Any) -> Session:
        self.gc_sessions()
        session = Session(
            id=uuid.uuid4().hex,
            username=user.username,
            disk=node.disk,  # type: ignore[arg-type]
            path=node.path,
            length=length,
            offset=0,
            expires=self._b.clock.now() + fields.pop("ttl"),
            lock_id=fields.get("lock_id", ""),
            mtime=fields.get("mtime", ""),
            if_match=fields.get("if_match", ""),
            if_not_exist=fields.get("if_not_exist", False),
            if_unmodified_since=fields.get("if_unmodified_since", 0.0),
            adler=1,
            state="open",
            checksum=fields.get("checksum", ""),
        )
        with self._b.mutex:
            self._b.db.execute(
                "INSERT INTO uploads (id, username, disk, path, length, offset, expires, lock_id, mtime,"
                " if_match, if_not_exist, if_unmodified_since, adler, state, checksum)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.username,
                    str(session.disk),
                    session.path,
                    session.length,
                    0,
                    session.expires,
                    session.lock_id,
                    session.mtime,
                    session.if_match,
                    int(session.if_not_exist),
                    session.if_unmodified_since,
                    1,
                    "open",
                    session.checksum,
                ),
            )
        self.upload_file(session.id).touch()
        return session

    def upload_file(self, session_id: str) -> Path:
        return self._b.state_dir / "uploads" / f"{session_id}.bin"

    def session(self, session_id: str) -> Session | None:
        """An open, unexpired session (expired ones are garbage-collected here)."""
        with self._b.mutex:
            row = self._b.db.execute("SELECT * FROM uploads WHERE id=?", (session_id,)).fetchone()
            if row is None or row["state"] != "open":
                return None
            session = Session.from_row(row)
            if session.expires <= self._b.clock.now():
                self.finish_session(session_id)
                return None
            return session

    def claim_session(self, session_id: str) -> Session | None:
        """For a simple PUT: the session is consumed whatever happens next."""
        with self._b.mutex:
            session = self.session(session_id)
            if session is not None:
                self._b.db.execute("UPDATE uploads SET state='used' WHERE id=?", (session_id,))
            return session

    def record_progress(self, session_id: str, offset: int, adler: int) -> None:
        with self._b.mutex:
            self._b.db.execute("UPDATE uploads SET offset=?, adler=? WHERE id=?", (offset, adler, session_id))

    def reopen_session(self, session_id: str) -> None:
        """A replayable (EOS) session after a PUT: ready for another one until its token expires."""
        self.upload_file(session_id).touch()

    def finish_session(self, session_id: str) -> None:
        with self._b.mutex:
            self._b.db.execute("DELETE FROM uploads WHERE id=?", (session_id,))
        self.upload_file(session_id).unlink(missing_ok=True)
