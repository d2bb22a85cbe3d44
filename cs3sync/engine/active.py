"""The active entries as the engine last saw them, and the overlay view folded from them: what reads
overlay on the storage (read-your-writes) and what waiters check before asking the journal.

After a change, only the entries this process's commits changed are applied (`Journal.take_changes`), by id
and by path; everything is reloaded at start, on another journal, and after another process wrote to the
journal (`full`). A queue of 2,000 creates made every enqueue, claim and landing cost O(queue) when each
change reloaded and refolded them all."""

from __future__ import annotations

import anyio

from cs3sync import overlay
from cs3sync.engine.host import EngineHost
from cs3sync.journal import Entry, Journal, State
from cs3sync.overlay import Overlay


class ActiveEntries:
    def __init__(self, host: EngineHost) -> None:
        self._host = host
        #: id -> state of the active entries.
        self.states: dict[int, str] = {}
        self._entries: list[Entry] | None = []  # `entries`, None until asked again after a change
        # The entries folded into path -> pending state, once per refresh: every read of a path asks
        # for its overlay (several times per request), and folding hundreds of pending entries each time
        # made 600 creates in flight spend a third of the event loop's time in fold().
        self.view: dict[str, Overlay] = {}
        # The same entries by id and by path, and how many of them depend on others (see
        # overlay.depends_on_others), to apply a refresh's changes without reloading and refolding them all.
        self._by_id: dict[int, Entry] = {}
        self._ids_by_path: dict[str, set[int]] = {}
        self._dependent = 0
        self._tracked: Journal | None = None  # the journal that records which entries our writes change
        # Refresh requests and the newest request a completed refresh covers (see refresh).
        self._wanted = 0
        self._loaded = 0
        self._lock: anyio.Lock | None = None

    def start(self) -> None:
        """On the engine's loop, before the first refresh."""
        self._lock = anyio.Lock()

    @property
    def entries(self) -> list[Entry]:
        """The active entries, journal order (sorted when asked after a change, not at every change:
        with thousands of creates queued, each enqueue, claim and landing re-sorted them all)."""
        if self._entries is None:
            self._entries = [self._by_id[i] for i in sorted(self._by_id)]
        return self._entries

    def lookup(self, path: str) -> Overlay | None:
        return overlay.lookup(self.view, path)

    def children(self, dir_path: str) -> dict[str, Overlay]:
        return overlay.children(self.view, dir_path)

    async def refresh(self, *, full: bool = False) -> None:
        """Bring the cached active entries and their overlay view up to date after a change: the
        entries this process's writes changed since the last refresh (`Journal.take_changes`), or all
        of them (``full``: at start, and after another process wrote to the journal). Requests that
        queue up behind a running refresh are served by one refresh that starts after all of them."""
        assert self._lock is not None, "start() first"
        journal = self._host.journal
        self._wanted += 1
        wanted = self._wanted
        async with self._lock:
            if self._loaded >= wanted and not full:
                return  # a refresh that started after this request has completed
            covers = self._wanted
            if full or self._tracked is not journal:
                if self._tracked is not journal and journal.owner:
                    await journal.track_changes()
                    self._tracked = journal
                await journal.take_changes()  # covered by the full load that follows
                self._load(await journal.active_entries())
            else:
                self._apply(await journal.take_changes())
            self._loaded = covers

    def _load(self, active: list[Entry]) -> None:
        self._by_id = {e.id: e for e in active}
        self._ids_by_path = {}
        for e in active:
            self._ids_by_path.setdefault(e.path, set()).add(e.id)
        self._dependent = sum(1 for e in active if overlay.depends_on_others(e))
        self._entries = active
        self.view = overlay.fold(active)
        self.states = {e.id: e.state for e in active}

    def _apply(self, changed: dict[int, Entry | None]) -> None:
        """Apply changed rows (None: gone) to the cached active entries. The view is refolded only
        while an entry that depends on others is among them; otherwise each touched path takes the
        state of its newest active entry, which is what the fold gives."""
        if not changed:
            return
        touched: set[str] = set()
        dependent_before = self._dependent
        for entry_id, row in changed.items():
            old = self._by_id.pop(entry_id, None)
            self.states.pop(entry_id, None)
            if old is not None:
                touched.add(old.path)
                self._ids_by_path[old.path].discard(entry_id)
                self._dependent -= overlay.depends_on_others(old)
            if row is not None and row.state in State.ACTIVE:
                self._by_id[entry_id] = row
                self.states[entry_id] = row.state
                touched.add(row.path)
                self._ids_by_path.setdefault(row.path, set()).add(entry_id)
                self._dependent += overlay.depends_on_others(row)
        self._entries = None
        if self._dependent or dependent_before:
            self.view = overlay.fold(self.entries)
            return
        for path in touched:
            ids = self._ids_by_path.get(path)
            newest = overlay.standalone(self._by_id[max(ids)]) if ids else None
            if newest is not None:
                self.view[path] = newest
            else:
                self._ids_by_path.pop(path, None)
                self.view.pop(path, None)
