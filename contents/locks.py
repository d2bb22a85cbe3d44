"""Document lock sessions and the ``/api/cs3sync/locks`` REST endpoints.

A document open in JupyterLab holds a CS3 lock. The labextension POSTs on open and as a heartbeat
and DELETEs on close; the server counts sessions per path, refreshes held locks in the background,
and unlocks when the last session leaves or goes stale (no heartbeat within ``lock_expiration``).
Lock ids are unique per server instance; a lock id is sent only while we hold the lock. A lock held
by someone else makes the model ``writable: false`` and a save answer 423 with the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from contents import paths as P
from contents.errors import is_offline_error, is_unreachable, to_http_error

if TYPE_CHECKING:
    from contents.manager import CS3ContentsManager
    from contents.mounts import MetaStore
    from cs3sync.cs3 import CS3Client
    from cs3sync.cs3.types import Lock, LockContext

LOCK_INSTANCE_KEY = "lock_instance"
#: Seconds between two reads of a document's lock for the editor's poll (the labextension polls every 4 s).
CHECK_INTERVAL = 3.0

#: Sessions (open documents) per path: more is a runaway client, not a person.
MAX_SESSIONS = 64


@dataclass
class LockState:
    cs3_path: str
    sessions: dict[str, float] = field(default_factory=dict)  # session -> last heartbeat (monotonic)
    lock_id: str | None = None  # set while we hold the lock
    holder: str | None = None  # foreign holder (the person's name when known), when someone else holds it
    holder_app: str | None = None  # the application they hold it with (e.g. "cernbox-office")
    refreshed_at: float = 0.0
    checked_at: float = 0.0


class LockManager:
    """Lock sessions per API path, and the background refresher."""

    def __init__(self, cm: CS3ContentsManager) -> None:
        self.cm = cm
        self.instance = uuid.uuid4().hex[:12]
        self._states: dict[str, LockState] = {}
        self._mutex: asyncio.Lock | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._people: dict[str, str | None] = {}  # lock user id -> display name (None: unknown)
        self.clock = time.monotonic  # injectable (tests move it instead of sleeping)

    # ---------------------------------------------------------------- settings
    @property
    def enabled(self) -> bool:
        return not self.cm.cs3.lock_not_impl

    @property
    def expiration(self) -> int:
        return max(10, int(self.cm.cs3.lock_expiration))

    @property
    def heartbeat(self) -> int:
        return max(10, self.expiration // 3)

    @property
    def prefix(self) -> str:
        """Every lock id we issue starts with this (per journal, so it survives restarts)."""
        return f"cs3sync-{self.instance}-"

    async def load_instance(self, store: MetaStore) -> None:
        """Take this journal's lock id prefix (or record ours): after a restart, the locks the earlier
        process took are recognised as ours, not as someone else's."""
        instance = (await store.meta()).get(LOCK_INSTANCE_KEY)
        if instance:
            self.instance = instance
        else:
            await store.set_meta(LOCK_INSTANCE_KEY, self.instance)

    def _new_lock_id(self) -> str:
        return f"{self.prefix}{uuid.uuid4().hex[:12]}"

    def _lock(self) -> asyncio.Lock:
        if self._mutex is None:
            self._mutex = asyncio.Lock()
        return self._mutex

    # ---------------------------------------------------------------- queries used by the manager
    def our_lock_ids(self) -> frozenset[str]:
        return frozenset(s.lock_id for s in self._states.values() if s.lock_id)

    def lock_id_for(self, api_path: str) -> str | None:
        state = self._states.get(P.normalize_api_path(api_path))
        return state.lock_id if state else None

    def lock_context(self, cs3_path: str) -> LockContext | None:
        """The engine's lock provider: our LockContext for a CS3 path while we hold its lock, else None."""
        for state in self._states.values():
            if state.cs3_path == cs3_path and state.lock_id:
                from cs3sync.cs3.types import LockContext

                return LockContext(state.lock_id, self.cm.cs3.lock_holder)
        return None

    def moved(self, old_api: str, new_api: str, new_cs3: str) -> None:
        """A rename of ours: the lock follows the file (CS3 locks are attached to the file id)."""
        state = self._states.pop(old_api, None)
        if state is not None:
            state.cs3_path = new_cs3
            self._states[new_api] = state

    # ---------------------------------------------------------------- sessions
    async def open(self, api_path: str, session: str) -> dict[str, Any]:
        """Open or heartbeat: take or refresh the lock, report who holds it. Only existing files are
        locked (not folders, a home or a space root); a file that does not exist takes no session."""
        api_path, cs3_path = await self.cm.locate(api_path)
        await self._require_file(api_path, cs3_path)
        async with self._lock():
            state = self._states.get(api_path) or LockState(cs3_path)
            if session not in state.sessions and len(state.sessions) >= MAX_SESSIONS:
                raise web.HTTPError(409, f"{api_path} is open in too many sessions ({MAX_SESSIONS})")
            self._states[api_path] = state
            state.sessions[session] = self.clock()
            if self.enabled:
                try:
                    await self._acquire(state)
                except web.HTTPError as exc:
                    if exc.status_code == 404 and self.cm.pending_of(cs3_path) is not None:
                        # Created by a save still on its way: the refresher locks it once it lands.
                        self._ensure_refresher()
                        return self._describe(api_path, state)
                    del state.sessions[session]
                    if not state.sessions:
                        await self._release(state)
                        self._states.pop(api_path, None)
                    raise
            self._ensure_refresher()
            return self._describe(api_path, state)

    async def _require_file(self, api_path: str, cs3_path: str) -> None:
        if not api_path or (await self.cm.get_path_map()).is_virtual(api_path):
            raise web.HTTPError(400, "Only files can be locked")
        try:
            exists = await self.cm.file_exists(api_path)
        except web.HTTPError:
            raise
        except Exception as exc:
            if is_offline_error(exc):
                return  # offline: the refresher takes the lock when the storage is back
            raise to_http_error(exc, api_path) from exc
        if not exists:
            if await self.cm.dir_exists(api_path):
                raise web.HTTPError(400, f"Only files can be locked: {api_path} is a folder")
            raise web.HTTPError(404, f"No such file: {api_path}")

    async def close(self, api_path: str | None = None, session: str | None = None) -> dict[str, Any] | None:
        """Close a session (or, without arguments, every session: server shutdown)."""
        if api_path is None:
            if self._refresher is not None:
                self._refresher.cancel()
                with contextlib.suppress(BaseException):
                    await self._refresher
            for state in list(self._states.values()):
                state.sessions.clear()
                await self._release(state)
            self._states.clear()
            return None
        api_path = P.normalize_api_path(api_path)
        async with self._lock():
            found = self._states.get(api_path)
            if found is None or session not in found.sessions:
                raise web.HTTPError(404, "No such lock session")
            state = found
            del state.sessions[session]
            if not state.sessions:
                await self._release(state)
                del self._states[api_path]
            return self._describe(api_path, state)

    def _describe(self, api_path: str, state: LockState) -> dict[str, Any]:
        return {
            "path": api_path,
            "locked": state.lock_id is not None,
            "read_only": state.holder is not None,
            "holder": state.holder,
            "holder_app": state.holder_app if state.holder else None,
            "count": len(state.sessions),
        }

    async def _acquire(self, state: LockState) -> None:
        from cs3sync.cs3 import errors

        client = await self.cm.get_client()
        holder = self.cm.cs3.lock_holder
        try:
            if state.lock_id is not None:
                await client.refresh_lock(
                    state.cs3_path, state.lock_id, app_name=holder, expiration=self.expiration
                )
            else:
                lock_id = self._new_lock_id()
                await client.set_lock(state.cs3_path, lock_id, app_name=holder, expiration=self.expiration)
                state.lock_id = lock_id
            state.holder = None
            state.refreshed_at = self.clock()
        except errors.Locked as exc:
            earlier = exc.lock.lock_id if exc.lock is not None else ""
            if state.lock_id is None and earlier.startswith(self.prefix):
                # Our own lock from before a restart: keep using it (the next sweep renews it).
                state.lock_id, state.holder, state.refreshed_at = earlier, None, 0.0
                return
            state.lock_id = None
            state.holder = await self._person(client, exc.lock) or exc.holder or "another application"
            state.holder_app = exc.lock.app_name if exc.lock is not None else None
        except (errors.Unimplemented, errors.NotFound) as exc:
            state.lock_id = None
            state.holder = None
            if isinstance(exc, errors.NotFound):
                path_map = await self.cm.get_path_map()
                raise web.HTTPError(404, f"No such file: {path_map.to_api(state.cs3_path)}") from exc
        except Exception as exc:
            if not is_unreachable(exc):
                raise to_http_error(exc, state.cs3_path) from exc
            # offline or a passing storage error (EOS: INTERNAL "error setting eos lock", storage
            # behaviours row 6): keep what we had, locking stays on; the refresher tries again
        finally:
            self.cm.invalidate(state.cs3_path)

    async def _person(self, client: CS3Client, lock: Lock | None) -> str | None:
        """The display name of the user holding ``lock`` ("Marie Curie"), or None when the storage does not
        say or the user is unknown. Looked up once per user id."""
        user = lock.user if lock is not None else ""
        if not user:
            return None
        if user not in self._people:
            found = None
            try:
                found = await client.get_user(user)
            except Exception:  # unknown id, or a gateway without GetUser: try the search
                with contextlib.suppress(Exception):
                    users = await client.find_users(user)
                    found = next((u for u in users if user in (u.opaque_id, u.username)), None)
            self._people[user] = (found.display_name or found.username) if found is not None else None
        return self._people[user]

    async def check(self, api_path: str, session: str) -> dict[str, Any]:
        """What the editor's frequent poll asks: is the document (still) ours to edit? A read of the lock
        (GetLock), at most once per CHECK_INTERVAL per document, so a lock someone takes after the document
        was opened shows within seconds without refreshing our lock that often."""
        from cs3sync.cs3 import errors

        api_path = P.normalize_api_path(api_path)
        async with self._lock():
            state = self._states.get(api_path)
            if state is None or session not in state.sessions:
                raise web.HTTPError(404, "No such lock session")
            state.sessions[session] = self.clock()
            if not self.enabled or self.clock() - state.checked_at < CHECK_INTERVAL:
                return self._describe(api_path, state)
            state.checked_at = self.clock()
            client = await self.cm.get_client()
            try:
                lock = await client.get_lock(state.cs3_path)
            except errors.NotFound:
                return self._describe(api_path, state)
            except Exception as exc:
                if not is_offline_error(exc):
                    raise to_http_error(exc, state.cs3_path) from exc
                return self._describe(api_path, state)
            if (
                lock is not None
                and lock.lock_id != state.lock_id
                and not lock.lock_id.startswith(self.prefix)
            ):
                state.lock_id = None
                state.holder = await self._person(client, lock) or lock.holder
                state.holder_app = lock.app_name or None
                self.cm.invalidate(state.cs3_path)
            elif lock is None and state.holder is not None:
                await self._acquire(state)  # released by them: take it (and become editable again)
            return self._describe(api_path, state)

    async def _release(self, state: LockState) -> None:
        if state.lock_id is None:
            return
        lock_id, state.lock_id = state.lock_id, None
        try:
            client = await self.cm.get_client()
            await client.unlock(state.cs3_path, lock_id, app_name=self.cm.cs3.lock_holder)
        except Exception as exc:
            self.cm.log.debug("cs3sync: unlock of %s failed: %s", state.cs3_path, exc)
        self.cm.invalidate(state.cs3_path)

    # ---------------------------------------------------------------- background refresh
    def _ensure_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_loop(), name="cs3sync-locks")

    async def _refresh_loop(self) -> None:
        while self._states:
            await asyncio.sleep(self.heartbeat)
            await self.sweep()

    async def sweep(self) -> None:
        """Drop sessions without a heartbeat within lock_expiration; refresh the locks still in use."""
        stale_before = self.clock() - self.expiration
        async with self._lock():
            for api_path, state in list(self._states.items()):
                for session, seen in list(state.sessions.items()):
                    if seen < stale_before:
                        del state.sessions[session]
                if not state.sessions:
                    await self._release(state)
                    del self._states[api_path]
                elif self.enabled and self.clock() - state.refreshed_at >= self.heartbeat:
                    with contextlib.suppress(web.HTTPError):
                        await self._acquire(state)


# -------------------------------------------------------------------- REST


class LocksHandler(APIHandler):
    """``GET`` settings, or with ``?path=&session=`` a quick check of the lock; ``POST`` open/heartbeat;
    ``DELETE`` close. Path and session come from the query
    (``?path=&session=``) or, for POST, from a JSON body ``{"path", "session"}``."""

    def _manager(self) -> LockManager:
        # (imported here: the manager imports this module)
        from contents.manager import CS3ContentsManager

        cm = self.contents_manager
        if not isinstance(cm, CS3ContentsManager):
            raise web.HTTPError(503, "cs3sync contents manager is not active")
        return cm.locks

    def _args(self) -> tuple[str, str]:
        body: dict[str, object] = {}
        if self.request.body:
            try:
                parsed = json.loads(self.request.body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise web.HTTPError(400, "Invalid JSON body") from None
            if not isinstance(parsed, dict):
                raise web.HTTPError(400, "The body must be a JSON object {path, session}")
            body = parsed
        queried = _query(self, "path")
        path = queried if queried is not None else body.get("path")
        session = _query(self, "session") or body.get("session")
        if path is None or not session:
            raise web.HTTPError(400, "path and session are required")
        if not isinstance(path, str) or not isinstance(session, str):
            raise web.HTTPError(400, "path and session must be strings")
        if len(session) > 200 or not session.isprintable():
            raise web.HTTPError(400, "session must be at most 200 printable characters")
        return path, session

    @web.authenticated
    async def get(self) -> None:
        locks = self._manager()
        if self.get_query_argument("session", None):
            path, session = self._args()
            self.finish(json.dumps(await locks.check(path, session)))
            return
        self.finish(
            json.dumps(
                {"enabled": locks.enabled, "heartbeat": locks.heartbeat, "expiration": locks.expiration}
            )
        )

    @web.authenticated
    async def post(self) -> None:
        locks = self._manager()
        path, session = self._args()
        self.finish(json.dumps(await locks.open(path, session)))

    @web.authenticated
    async def delete(self) -> None:
        locks = self._manager()
        path, session = self._args()
        await locks.close(path, session)
        self.set_status(204)
        self.finish()


def _query(handler: APIHandler, name: str) -> str | None:
    """A query argument as sent (tornado's getter would turn a NUL into a space)."""
    values = handler.request.query_arguments.get(name)
    if not values:
        return None
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPError(400, f"'{name}' is not valid UTF-8") from None


def setup_lock_handlers(web_app: Any) -> None:
    """Register ``<base_url>/api/cs3sync/locks``."""
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(url_path_join(base_url, "api/cs3sync/locks"), LocksHandler)])
