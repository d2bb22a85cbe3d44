"""Single owner (flock), read-only access for everyone else, private permissions, network file systems."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cs3sync.journal import (
    Journal,
    JournalLocked,
    JournalUnreadable,
    NetworkFilesystem,
    NotOwner,
    Op,
    State,
    default_journal_dir,
)
from cs3sync.journal.fs import is_network_fstype, mount_fstype

from .helpers import save

pytestmark = pytest.mark.anyio


async def test_second_owner_is_refused_and_reader_works(
    journal: Journal, journal_dir: Path, local_mounts
) -> None:
    await save(journal, "/h/a", b"1")
    with pytest.raises(JournalLocked) as info:
        await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    assert info.value.pid == os.getpid()

    reader = await Journal.open(journal_dir, owner=False)
    try:
        assert (await reader.counts())[State.QUEUED] == 1
        assert reader.owner_pid() == os.getpid()
        with pytest.raises(NotOwner):
            await reader.store_blob(b"x")
        with pytest.raises(NotOwner):
            await reader.enqueue(Op.MKDIR, "/h/d")
        with pytest.raises(NotOwner):
            await reader.claim("w")
        # The reader sees the owner's later commits.
        await save(journal, "/h/b", b"2")
        assert (await reader.counts())[State.QUEUED] == 2
    finally:
        await reader.close()


HOLDER = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from cs3sync.journal import Journal

    async def main():
        journal = await Journal.open(Path(sys.argv[1]), owner=True, mounts_file=sys.argv[2])
        print("owner", flush=True)
        sys.stdin.readline()
        await journal.close()

    anyio.run(main)
    """
)


def start_holder(journal_dir: Path, mounts: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(journal_dir), str(mounts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "owner"
    return proc


async def test_owner_in_another_process(journal_dir: Path, local_mounts: Path) -> None:
    proc = start_holder(journal_dir, local_mounts)
    try:
        with pytest.raises(JournalLocked) as info:
            await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
        assert info.value.pid == proc.pid
        reader = await Journal.open(journal_dir, owner=False)
        assert reader.owner_pid() == proc.pid
        assert (await reader.control()).owner_pid == proc.pid
        await reader.close()
    finally:
        proc.kill()  # kill -9: the flock goes with the process
        proc.wait()
    journal = await Journal.open(journal_dir, owner=True, mounts_file=local_mounts)
    await journal.close()


async def test_reader_needs_an_existing_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalUnreadable):
        await Journal.open(tmp_path / "nothing", owner=False)


async def test_permissions(journal: Journal, journal_dir: Path) -> None:
    await save(journal, "/h/a", b"secret")
    await journal.record_upload_session(
        1, protocol="tus", url="https://x", token="transfer-token", token_expires=None, total=6
    )
    reader = await Journal.open(journal_dir, owner=False)
    await reader.set_control(paused=True)  # a write from another connection
    await reader.close()
    modes = tree_modes(journal_dir)
    assert modes.pop(".") == 0o700
    assert {name: mode for name, mode in modes.items() if mode not in (0o700, 0o600)} == {}
    assert {name for name, mode in modes.items() if mode == 0o600} >= {"journal.db", "journal.lock"}


def tree_modes(root: Path) -> dict[str, int]:
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        modes[str(path.relative_to(root))] = mode
    return modes


async def test_existing_loose_directory_is_tightened(tmp_path: Path, local_mounts: Path) -> None:
    directory = tmp_path / "loose"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    journal = await Journal.open(directory, owner=True, mounts_file=local_mounts)
    await journal.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


MOUNTS = """\
sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
server:/export {root}/nfs nfs4 rw,relatime 0 0
//srv/share {root}/smb cifs rw 0 0
eosxd {root}/eos fuse.eosxd rw,nosuid 0 0
/dev/sdb1 {root}/eos/local\\040disk ext4 rw 0 0
"""


@pytest.mark.parametrize("where", ["nfs", "smb", "eos", "eos/sub/journal"])
async def test_network_file_systems_are_refused(tmp_path: Path, where: str) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS.format(root=tmp_path))
    target = tmp_path / where / "journal"
    with pytest.raises(NetworkFilesystem):
        await Journal.open(target, owner=True, mounts_file=mounts)
    assert not target.exists(), "nothing created on the refused file system"
    journal = await Journal.open(target, owner=True, mounts_file=mounts, allow_network_fs=True)
    await journal.close()


async def test_local_mount_below_a_fuse_mount_is_accepted(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS.format(root=tmp_path))
    assert mount_fstype(tmp_path / "eos" / "local disk" / "j", mounts) == "ext4"
    journal = await Journal.open(tmp_path / "eos" / "local disk" / "j", owner=True, mounts_file=mounts)
    await journal.close()


def test_fstype_classification() -> None:
    for fstype in ("nfs", "nfs4", "cifs", "smb3", "fuse", "fuse.eosxd", "fuse.sshfs", "9p", "ceph"):
        assert is_network_fstype(fstype), fstype
    for fstype in ("ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs"):
        assert not is_network_fstype(fstype), fstype


def test_default_journal_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CS3SYNC_JOURNAL_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a = default_journal_dir("cernbox.cern.ch:443", "einstein")
    b = default_journal_dir("cernbox.cern.ch:443", "marie")
    assert a.parent == tmp_path / "cs3sync" and a != b
    assert a == default_journal_dir("cernbox.cern.ch:443", "einstein")
    monkeypatch.setenv("CS3SYNC_JOURNAL_DIR", str(tmp_path / "explicit"))
    assert default_journal_dir("h", "u") == tmp_path / "explicit"


async def test_take_changes_reports_this_process_committed_writes(
    journal: Journal, journal_dir: Path
) -> None:
    """What the engine's overlay refresh reads instead of every active entry: the entries this
    process's commits inserted or changed (coalescing included), each once, as committed; a write by
    another process is not among them (it bumps the control generation, which the engine watches)."""
    await journal.track_changes()
    assert await journal.take_changes() == {}
    first = await save(journal, "/h/a", b"1")
    second = await save(journal, "/h/a", b"2")  # supersedes the first in the same transaction
    changes = await journal.take_changes()
    assert set(changes) == {first.id, second.id}
    assert changes[first.id] is not None and changes[first.id].state == State.SUPERSEDED
    assert changes[second.id] is not None and changes[second.id].state == State.QUEUED
    assert await journal.take_changes() == {}  # taken once

    claimed = await journal.claim("w")
    assert claimed is not None and claimed.id == second.id
    assert (await journal.take_changes())[second.id].state == State.RUNNING  # type: ignore[union-attr]

    other = await Journal.open(journal_dir, owner=False)
    try:
        third = await save(journal, "/h/b", b"3")
        await journal.take_changes()
        await other.discard(third.id)  # another process's write
    finally:
        await other.close()
    assert await journal.take_changes() == {}
    assert (await journal.entry(third.id)).state == State.CANCELLED
