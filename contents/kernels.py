"""Where kernels start.

jupyter_server starts kernels on the local file system, in ``get_kernel_path(path)`` taken relative
to the kernel manager's root (``ServerApp.root_dir``); a directory that does not exist there falls
back to that root.

* With a local mount of the CS3 root (EOS FUSE in SWAN; the emulator's directory in ``make lab``),
  set ``CS3Sync.local_mount`` to it: a kernel starts in its notebook's folder on the mount, so
  ``open("data.csv")`` reads the file beside the notebook. ``ServerApp.root_dir`` should be the mount
  (``python -m cs3sync lab`` sets both); if it is not, the folder is given relative to it when possible.
* Without a mount, kernels start in ``ServerApp.root_dir``, the local working folder of the server
  (the directory it was started in unless configured). Relative file access from notebooks then sees
  that local folder, not CS3.
"""

from __future__ import annotations

import os
from pathlib import Path

from contents import paths as P


def kernel_path(mount: str, server_root: str | None, api_path: str) -> str:
    """The kernel's folder for ``api_path`` (a notebook or a folder), relative to ``server_root``
    (ServerApp.root_dir; None without a server), given the local ``mount`` of the CS3 root ("": none)."""
    api_path = P.normalize_api_path(api_path)
    if not mount:
        return ""
    folder = P.api_parent(api_path)
    mount_dir = Path(mount).expanduser().resolve()
    if not server_root or Path(server_root).expanduser().resolve() == mount_dir:
        return folder
    target = mount_dir / folder
    try:
        return os.path.relpath(target, Path(server_root).expanduser().resolve())
    except ValueError:
        return ""
