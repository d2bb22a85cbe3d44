"""``python -m cs3sync status``: what is pending, what went wrong, and why.

Exit codes: 0 nothing pending, 1 pending, 2 a conflict or failure is present, 3 journal unreadable.

``--json`` prints one object with a stable schema (``"schema": "cs3sync.status/1"``, documented in
docs/journal.md); ``--id N --json`` prints ``"schema": "cs3sync.entry/1"``. Fields are only ever
added, never renamed or removed, within a schema version.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import posixpath
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from cs3sync.journal.cli import (
    EXIT_OK,
    EXIT_PENDING,
    EXIT_PROBLEMS,
    add_journal_arguments,
    run_with_journal,
)
from cs3sync.journal.store import Journal
from cs3sync.journal.types import Entry, State, UploadRecord

if TYPE_CHECKING:  # rich is imported only to render the human table (not for --json): it is slow to import
    from rich.console import Console, Group
    from rich.table import Table

STATUS_SCHEMA = "cs3sync.status/1"
#: An owner whose heartbeat (written every few seconds) is older than this is shown as not responding:
#: its engine died, or cannot write its journal (disk full).
HEARTBEAT_STALE = 30.0
ENTRY_SCHEMA = "cs3sync.entry/1"
HISTORY_LIMIT = 200
# Rows of the human table by default: conflicts and failures first, then the oldest pending entries. The
# counts above the table always cover everything; --json lists every entry unless --limit is given.
TABLE_LIMIT = 50
# Latest merged saves listed (a line each above the table): "<path>: merged with marie's change, 2 cells".
MERGED_SHOWN = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_journal_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output (stable schema)")
    parser.add_argument(
        "--watch", action="store_true", help="refresh continuously, with upload progress bars"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="--watch refresh period in seconds")
    parser.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)  # for tests
    parser.add_argument("--id", type=int, dest="entry_id", help="show one entry in full, with its events")
    parser.add_argument("--all", action="store_true", help=f"include history (newest {HISTORY_LIMIT})")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"show at most N pending or parked entries, problems first (default {TABLE_LIMIT} in the "
        "table, all with --json; 0: all)",
    )


def exit_code(counts: dict[str, int]) -> int:
    if counts.get(State.CONFLICT, 0) or counts.get(State.FAILED, 0):
        return EXIT_PROBLEMS
    if any(counts.get(s, 0) for s in State.ACTIVE):
        return EXIT_PENDING
    return EXIT_OK


# ---------------------------------------------------------------------------------- data
def upload_json(upload: UploadRecord | None) -> dict[str, Any] | None:
    if upload is None:
        return None
    # Never the transfer token or the upload URL: both are credentials.
    return {
        "protocol": upload.protocol,
        "total": upload.total,
        "offset": upload.offset,
        "sent": max(upload.sent, upload.offset),
        "resets": upload.resets,
        "updated_at": upload.updated_at,
    }


def entry_json(entry: Entry, upload: UploadRecord | None) -> dict[str, Any]:
    return {
        "id": entry.id,
        "op": entry.op,
        "path": entry.path,
        "src_path": entry.src_path,
        "state": entry.state,
        "blocked_reason": entry.blocked_reason,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "size": entry.size,
        "progress": upload_json(upload),
        "last_error": entry.last_error,
        "last_error_kind": entry.last_error_kind,
        "conflict_path": entry.conflict_path,
        # A merge with a foreign change (cs3sync.rebase): done, or why not (the colliding cells/lines).
        "merge": entry.extra.get("merge"),
        "resolution": entry.resolution,
        "needs_check": entry.needs_check,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "finished_at": entry.finished_at,
    }


async def collect(journal: Journal, *, history: bool, limit: int | None = None) -> dict[str, Any]:
    """Everything `status` shows. ``limit``: at most that many pending or parked entries (conflicts and
    failures first, then journal order), so a big queue costs O(rows shown); None or 0: all of them."""
    stats = await journal.stats()
    control = await journal.control()
    meta = await journal.meta()
    sizes = await journal.file_sizes()
    uploads = {u.entry_id: u for u in await journal.upload_sessions()}
    if limit:
        shown = await journal.entries(State.PARKED, limit=limit)
        if len(shown) < limit:
            shown += await journal.entries(State.ACTIVE, limit=limit - len(shown))
        shown.sort(key=lambda e: e.id)
    else:
        shown = await journal.entries(State.ACTIVE | State.PARKED)
    if history:
        shown += await journal.entries(State.TERMINAL, limit=HISTORY_LIMIT, newest_first=True)
        shown.sort(key=lambda e: e.id)
    owner_pid = journal.owner_pid()
    counts = dict(stats.counts)
    return {
        "schema": STATUS_SCHEMA,
        "account": meta.get("account"),
        "journal": {
            "path": str(journal.dir),
            "db_bytes": sizes["db"],
            "spool_bytes": sizes["spool"],
            "blobs": sizes["blobs"],
        },
        "owner": {"pid": owner_pid, "alive": owner_pid is not None},
        "engine": {
            # Without a live owner nothing is applying commands, whatever the row last said.
            "state": control.engine_state if owner_pid is not None else "stopped",
            "last_error": control.last_error,
            "paused": control.paused,
            "heartbeat": control.heartbeat,
            "health": _health(owner_pid is not None, control.heartbeat),
        },
        "counts": counts,
        "pending": sum(counts[s] for s in State.ACTIVE),
        "problems": sum(counts[s] for s in State.PARKED),
        "blocked": dict(stats.blocked),
        "oldest_pending": stats.oldest_pending,
        "bytes_to_upload": stats.bytes_to_upload,
        "exit_code": exit_code(counts),
        "entries": [entry_json(e, uploads.get(e.id)) for e in shown],
        "merged": [entry_json(e, None) for e in await journal.merged_saves(MERGED_SHOWN)],
    }


def _health(owner_alive: bool, heartbeat: float | None) -> str:
    """ "ok", or "not_responding": a live owner whose engine stopped writing its heartbeat."""
    if owner_alive and heartbeat is not None and time.time() - heartbeat > HEARTBEAT_STALE:
        return "not_responding"
    return "ok"


def not_shown(data: dict[str, Any]) -> int:
    """Pending or parked entries left out of ``data["entries"]`` by a limit."""
    listed = sum(1 for e in data["entries"] if e["state"] in State.ACTIVE | State.PARKED)
    return max(0, int(data["pending"]) + int(data["problems"]) - listed)


async def collect_entry(journal: Journal, entry_id: int) -> dict[str, Any]:
    entry = await journal.entry(entry_id)
    full = {k: v for k, v in dataclasses.asdict(entry).items()}
    full["extra"] = dict(entry.extra)
    full["prior_blobs"] = list(entry.prior_blobs)
    return {
        "schema": ENTRY_SCHEMA,
        "entry": full,
        "upload": upload_json(await journal.upload_session(entry_id)),
        "events": [
            {"at": ev.at, "kind": ev.kind, "message": ev.message}
            for ev in await journal.events(entry_id=entry_id)
        ],
    }


# ---------------------------------------------------------------------------------- rendering
def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    delta = ts - now
    span = abs(delta)
    text = (
        f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min" if span < 7200 else f"{span / 3600:.1f} h"
    )
    return f"in {text}" if delta > 0 else f"{text} ago"


def stamp(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


STATE_STYLE = {
    State.QUEUED: "cyan",
    State.RUNNING: "bold blue",
    State.RETRYING: "yellow",
    State.BLOCKED: "magenta",
    State.CONFLICT: "bold red",
    State.FAILED: "bold red",
    State.DONE: "green",
    State.SUPERSEDED: "dim",
    State.CANCELLED: "dim",
}


def summary(data: dict[str, Any], now: float) -> Table:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    journal = data["journal"]
    engine = data["engine"]
    owner = data["owner"]
    grid.add_row("Account", data["account"] or "(not recorded)")
    grid.add_row(
        "Journal",
        f"{journal['path']}  (db {human_bytes(journal['db_bytes'])}, "
        f"spool {human_bytes(journal['spool_bytes'])} in {journal['blobs']} blobs)",
    )
    grid.add_row("Owner", f"pid {owner['pid']}" if owner["alive"] else "none (no server or drain running)")
    state = Text(engine["state"], style="green" if engine["state"] == "online" else "yellow")
    if engine["paused"]:
        state.append("  (paused)", style="bold yellow")
    if engine["last_error"]:
        state.append(f"  last error: {engine['last_error']}", style="red")
    if engine["health"] != "ok":
        state.append(
            f"  not responding: last heartbeat {when(engine['heartbeat'], now)} "
            "(is the journal's disk full? see the server log)",
            style="bold red",
        )
    grid.add_row("Engine", state)
    counts = data["counts"]
    order = [State.QUEUED, State.RUNNING, State.RETRYING, State.BLOCKED, State.CONFLICT, State.FAILED]
    parts = Text()
    for s in order:
        if parts:
            parts.append(" · ")
        parts.append(f"{s} {counts[s]}", style=STATE_STYLE[s] if counts[s] else "dim")
    grid.add_row("Entries", parts)
    oldest = data["oldest_pending"]
    grid.add_row("Oldest pending", "-" if oldest is None else f"{stamp(oldest)} ({when(oldest, now)})")
    grid.add_row("To upload", human_bytes(data["bytes_to_upload"]))
    return grid


def progress_cell(entry: dict[str, Any], bars: bool) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    progress = entry["progress"]
    if not progress or not progress["total"]:
        return "-"
    done, total = progress["sent"], progress["total"]
    label = f"{100 * done / total:.0f}% of {human_bytes(total)}"
    if bars and entry["state"] == State.RUNNING:
        return Group(ProgressBar(total=total, completed=done, width=20), Text(label))
    return label


def common_dir(entries: list[dict[str, Any]]) -> str:
    """The deepest directory holding every shown path, so the table can show shorter paths."""
    paths = [p for e in entries for p in (e["path"], e["src_path"]) if p]
    if not paths:
        return "/"
    common: str = posixpath.commonpath(paths)
    return common if common not in paths else posixpath.dirname(common)


def relative(path: str, base: str) -> str:
    return path if base == "/" else path[len(base) + 1 :]


def entries_table(data: dict[str, Any], now: float, *, bars: bool = False) -> Table:
    from rich.table import Table
    from rich.text import Text

    base = common_dir(data["entries"])
    title = None if base == "/" else f"paths under {base}"
    table = Table(show_header=True, header_style="bold", expand=True, title=title, title_justify="left")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("OP", no_wrap=True)
    table.add_column("PATH", overflow="fold", ratio=2)
    table.add_column("STATE", no_wrap=True)
    table.add_column("ATTEMPTS", justify="right", no_wrap=True)
    table.add_column("NEXT TRY", no_wrap=True)
    table.add_column("PROGRESS", no_wrap=True)
    table.add_column("LAST ERROR", overflow="fold", ratio=3)
    for e in data["entries"]:
        state = e["state"] + (f"({e['blocked_reason']})" if e["blocked_reason"] else "")
        path = relative(e["path"], base)
        if e["src_path"]:
            path = f"{relative(e['src_path'], base)} -> {path}"
        error = e["last_error"] or ""
        if e["conflict_path"]:
            error = f"{error}; yours: {posixpath.basename(e['conflict_path'])}".strip("; ")
        table.add_row(
            str(e["id"]),
            e["op"],
            path,
            Text(state, style=STATE_STYLE.get(e["state"], "")),
            str(e["attempts"]),
            when(e["next_attempt_at"], now) if e["state"] == State.RETRYING else "-",
            progress_cell(e, bars),
            error,
        )
    return table


def render(data: dict[str, Any], now: float, *, bars: bool = False) -> Group:
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [summary(data, now)]
    for m in data.get("merged", []):
        parts.append(
            Text(f"{m['path']}: {m['merge']['message']} ({when(m['finished_at'], now)})", style="cyan")
        )
    if data["entries"]:
        parts.append(entries_table(data, now, bars=bars))
    else:
        parts.append(Text("Nothing pending.", style="green"))
    hidden = not_shown(data)
    if hidden:
        parts.append(
            Text(
                f"… and {hidden:,} more pending or parked entries (--limit 0 shows all; --json)", style="dim"
            ),
        )
    return Group(*parts)


def render_entry(data: dict[str, Any]) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in data["entry"].items():
        if key.endswith("_at") or key in ("lease_expires",):
            value = stamp(value) if value is not None else "-"
        grid.add_row(key, "-" if value is None or value == {} or value == [] else str(value))
    parts: list[Any] = [grid]
    if data["upload"]:
        u = data["upload"]
        parts.append(
            Text(
                f"upload: {u['protocol']}, {human_bytes(u['sent'])} of {human_bytes(u['total'])}, "
                f"resets {u['resets']}"
            )
        )
    events = Table("AT", "EVENT", "DETAIL", title="Events", header_style="bold")
    for ev in data["events"]:
        events.add_row(stamp(ev["at"]), ev["kind"], ev["message"] or "")
    parts.append(events)
    return Group(*parts)


# ---------------------------------------------------------------------------------- command
def table_limit(args: argparse.Namespace) -> int | None:
    """Rows to collect: --limit if given (0: all), else all for --json and TABLE_LIMIT for the table."""
    if args.limit is not None:
        return args.limit or None
    return None if args.json else TABLE_LIMIT


def run(args: argparse.Namespace) -> int:
    def console() -> Console:
        from rich.console import Console

        return Console()

    async def action(journal: Journal) -> int:
        if args.entry_id is not None:
            data = await collect_entry(journal, args.entry_id)
            if args.json:
                print(json.dumps(data, indent=2, sort_keys=True))
            else:
                console().print(render_entry(data))
            return exit_code({data["entry"]["state"]: 1})
        if args.watch and not args.json:
            return await watch(journal, console(), args)
        data = await collect(journal, history=args.all, limit=table_limit(args))
        if args.json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            console().print(render(data, time.time()))
        return int(data["exit_code"])

    return run_with_journal(args, action, json_errors=args.json)


async def watch(journal: Journal, console: Console, args: argparse.Namespace) -> int:
    from rich.live import Live

    data = await collect(journal, history=args.all, limit=table_limit(args))
    shown = 0
    with Live(render(data, time.time(), bars=True), console=console, auto_refresh=False) as live:
        while True:
            shown += 1
            if args.iterations and shown >= args.iterations:
                break
            await anyio.sleep(args.interval)
            data = await collect(journal, history=args.all, limit=table_limit(args))
            live.update(render(data, time.time(), bars=True), refresh=True)
    return int(data["exit_code"])
