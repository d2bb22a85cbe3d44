"""File-system rules for the journal directory: private permissions, local disks only.

The spool holds user data and the db holds transfer tokens, so the directory is 0700 and files 0600.
SQLite's locking and fsync guarantees do not hold on network or FUSE file systems (NFS, CIFS/SMB, the EOS
FUSE mount), so those are refused unless the user explicitly allows them.
"""

from __future__ import annotations

import os
from pathlib import Path

from cs3sync.journal.errors import NetworkFilesystem

DIR_MODE = 0o700
FILE_MODE = 0o600

#: fstype values (first column 3 of /proc/mounts) that are network or user-space file systems.
NETWORK_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "9p",
        "davfs",
        "fuse",
        "fuseblk",
        "eos",
    }
)


def is_network_fstype(fstype: str) -> bool:
    """True for network file systems and for every FUSE file system (``fuse.eosxd``, ``fuse.sshfs``...)."""
    return fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.")


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as \040, \011, \012, \134.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_fstype(path: Path, mounts_file: str | Path = "/proc/mounts") -> str | None:
    """The fstype of the mount holding ``path`` (the longest matching mount point), or None if the
    mounts table cannot be read."""
    try:
        text = Path(mounts_file).read_text()
    except OSError:
        return None
    target = str(path)
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mountpoint, fstype = _unescape(fields[1]), fields[2]
        prefix = mountpoint.rstrip("/") + "/"
        if (target == mountpoint or (target + "/").startswith(prefix)) and (
            best is None or len(mountpoint) >= best[0]
        ):
            best = (len(mountpoint), fstype)
    return best[1] if best else None


def check_local_fs(path: Path, *, allow_network_fs: bool, mounts_file: str | Path = "/proc/mounts") -> None:
    """Raise `NetworkFilesystem` if ``path`` lives on a network or FUSE file system."""
    if allow_network_fs:
        return
    # resolve() follows the symlinks of the existing part; the directory itself may not exist yet.
    fstype = mount_fstype(path.resolve(), mounts_file)
    if fstype is not None and is_network_fstype(fstype):
        raise NetworkFilesystem(
            f"the journal directory is on a {fstype} file system; SQLite locking and fsync are not "
            "reliable there. Choose a local journal_dir, or set allow_network_fs to override."
        )


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        path.chmod(DIR_MODE)


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty if missing, and make it 0600."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    if (path.stat().st_mode & 0o777) != FILE_MODE:
        path.chmod(FILE_MODE)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
