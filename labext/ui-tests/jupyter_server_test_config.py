"""JupyterLab for the Galata tests: the cs3sync contents manager on the demo emulator, as einstein.

The emulator comes from the environment (``CS3SYNC_UI_GRPC`` host:port, set by tests/test_browser.py, which
runs it in-process) or, when unset, is started here as a subprocess with ``--demo`` on the ports
``CS3SYNC_UI_GRPC_PORT`` / ``CS3SYNC_UI_HTTP_PORT`` (defaults 19142 / 19143) and stopped at exit.
The tests drive its loopback admin endpoint (outage, restart, foreign locks, quota).
"""

import atexit
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jupyterlab.galata
from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (c is injected by jupyter)
if hasattr(os, "geteuid") and os.geteuid() == 0:
    c.ServerApp.allow_root = True  # noqa: F821

scratch = Path(tempfile.mkdtemp(prefix="cs3sync-ui-"))
grpc = os.environ.get("CS3SYNC_UI_GRPC", "")
if not grpc:
    grpc_port = os.environ.get("CS3SYNC_UI_GRPC_PORT", "19142")
    http_port = os.environ.get("CS3SYNC_UI_HTTP_PORT", "19143")
    # The admin API wants a per-run secret; the tests read it from CS3SYNC_UI_ADMIN_SECRET, so a
    # standalone run (`jlpm playwright test`) sets that variable and the emulator takes it from here.
    admin_secret = os.environ.get("CS3SYNC_UI_ADMIN_SECRET") or secrets.token_urlsafe(24)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "cs3sync", "emulator", "--root", str(scratch / "cs3root"), "--demo",
         "--grpc-port", grpc_port, "--http-port", http_port, "--tus"],
        env={**os.environ, "CS3SYNC_EMULATOR_ADMIN_SECRET": admin_secret},
    )
    atexit.register(emulator.terminate)
    probe = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/_admin/info", headers={"X-CS3Sync-Admin": admin_secret}
    )
    for _ in range(60):
        try:
            urllib.request.urlopen(probe, timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    grpc = f"127.0.0.1:{grpc_port}"

# Serve the labextension built in THIS tree (labext/ -> contents/labextension), whatever the environment has
# installed: the first extension of a name found on the path wins, and extra paths come first.
built = Path(__file__).resolve().parents[2] / "contents" / "labextension"
linked = scratch / "labextensions" / "@cs3sync" / "labextension"
linked.parent.mkdir(parents=True)
linked.symlink_to(built, target_is_directory=True)
c.LabServerApp.extra_labextensions_path = [  # noqa: F821
    str(scratch / "labextensions"),
    str(Path(jupyterlab.galata.__file__).parent),  # what configure_jupyter_server set
]

secret = scratch / "einstein.secret"
secret.write_text("relativity")
secret.chmod(0o600)

c.ServerApp.jpserver_extensions = {"contents": True}  # noqa: F821
c.ServerApp.contents_manager_class = "contents.manager.CS3ContentsManager"  # noqa: F821
c.CS3Sync.host = grpc  # noqa: F821
c.CS3Sync.ssl_enabled = False  # noqa: F821
c.CS3Sync.auth_login_type = "basic"  # noqa: F821
c.CS3Sync.client_id = "einstein"  # noqa: F821
c.CS3Sync.token_path = str(secret)  # noqa: F821
c.CS3Sync.journal_dir = str(scratch / "journal")  # noqa: F821
# tus PATCHes of 1 MiB: the upload-progress test sees confirmed offsets move (tus from 8 MiB on).
c.CS3Sync.upload_chunk_size = 1024 * 1024  # noqa: F821
# "Copy link" copies a real URL (tests/helpers.ts LINK_URL).
c.CS3SyncAPI.public_link_url = "https://cernbox.example.org/s/{token}"  # noqa: F821
c.CS3SyncAPI.product_name = "CERNBox"  # noqa: F821 (what the cernbox profile of `cs3sync lab` sets)

# No news/update toast over the screenshots.
settings = scratch / "settings" / "@jupyterlab" / "apputils-extension"
settings.mkdir(parents=True)
(settings / "notification.jupyterlab-settings").write_text('{"checkForUpdates": false, "fetchNews": "false"}')
c.LabServerApp.user_settings_dir = str(scratch / "settings")  # noqa: F821
c.LabServerApp.workspaces_dir = str(scratch / "workspaces")  # noqa: F821

# Real-time collaboration (jupyter-collaboration, a test dependency) is off for the suite: its specs test
# what every JupyterLab without RTC does (the editor saves through the contents API, "File Changed",
# reloads). rtc.spec.ts runs with it on (playwright-rtc.config.js sets CS3SYNC_UI_RTC=1); docs/decisions.md.
c.YDocExtension.disable_rtc = os.environ.get("CS3SYNC_UI_RTC") != "1"  # noqa: F821
# The room's update store and session file belong to this run, never in the server's working folder.
c.SQLiteYStore.db_path = str(scratch / "ystore.db")  # noqa: F821
c.YDocExtension.session_store_path = str(scratch / "collaboration_sessions.json")  # noqa: F821
