"""The Jupyter server extension: REST handlers of cs3sync and a clean shutdown of the engine.

Enabled by ``jpserver_extensions = {"contents": true}`` (installed as jupyter-config with the wheel).
It registers the lock endpoints (``contents.locks``) and the labextension's endpoints
(``contents.handlers.setup_handlers``), and on server shutdown closes lock sessions, stops the
engine and closes the CS3 clients. With jupyter-collaboration installed it makes RTC's file ids CS3
resource ids (``contents.fileids``) and keeps the rooms' files beside the journal, unless the
configuration chose otherwise (docs/collaboration.md).
"""

from __future__ import annotations

import gc
import importlib.util
import logging
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from contents.clients import setup_client_transform
from contents.config import CS3Sync
from contents.locks import setup_lock_handlers
from contents.manager import CS3ContentsManager
from cs3sync.journal.fs import ensure_private_dir
from cs3sync.logs import attach_to

#: The settings are read here only for the journal's place: their warnings (deprecated names) come once,
#: from the contents manager.
QUIET = logging.getLogger("cs3sync.config.quiet")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


class CS3SyncExtension(ExtensionApp):
    name = "cs3sync"
    load_other_extensions = True

    @property
    def server(self) -> ServerApp:
        """The server this extension runs in (jupyter_server sets it before any hook runs)."""
        assert self.serverapp is not None
        return self.serverapp

    def _link_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        super()._link_jupyter_server_extension(serverapp)
        # Extensions link in name order ("contents" before "jupyter_server_fileid" and
        # "jupyter_server_ydoc"), so they read this when they link.
        configure_collaboration(serverapp)

    def initialize_handlers(self) -> None:
        # The engine's and the client's records go through the server's handlers, at its --log-level.
        attach_to(self.server.log)
        web_app = self.server.web_app
        setup_client_transform(web_app)
        setup_lock_handlers(web_app)
        try:
            from contents.handlers import setup_handlers
        except ImportError:  # the labextension's handlers are optional for the contents manager
            return
        setup_handlers(web_app, self.server.contents_manager)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Start the engine with the server: entries left by a previous run (a crash, a kill) resume
        at once, and reads overlay them from the first request on."""
        attach_file_ids(serverapp)
        await start_engine(serverapp.contents_manager, self.log)

    async def stop_extension(self) -> None:
        await shutdown_manager(self.server.contents_manager)


async def shutdown_manager(cm: object) -> None:
    if isinstance(cm, CS3ContentsManager):
        gc.unfreeze()
        await cm.shutdown()


async def start_engine(cm: object, log: logging.Logger) -> None:
    if not isinstance(cm, CS3ContentsManager):
        return  # another contents manager is configured: nothing of ours to start
    try:
        await cm.get_engine()
    except Exception as exc:  # the first write will try again and report it
        log.warning("cs3sync: the engine could not start yet: %s", exc)
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Leave what the server made while starting (modules, classes, configuration: some 200,000 objects
    that live as long as the process) out of the garbage collector's full collections from now on
    (CPython's ``gc.freeze``; what is made later is collected as before). A full collection walks every
    tracked object with the GIL held: each one held the event loop ~100 ms, and a 10,000-entry listing
    allocates enough to set one off every listing or two; frozen, ~20 ms (benchmarks/README.md)."""
    gc.collect()  # garbage made while starting is collected, not frozen
    gc.freeze()


def rtc_installed() -> bool:
    """jupyter-collaboration's file id service (jupyter_server_fileid) is importable."""
    return importlib.util.find_spec("jupyter_server_fileid") is not None


def configure_collaboration(serverapp: ServerApp) -> None:
    """When our contents manager serves the files and jupyter-collaboration is installed: select
    `CS3FileIdManager`, and keep the rooms' store and session file beside the journal, on a local disk
    (their defaults are the working folder and ``root_dir/.jupyter``: with SWAN, the EOS mount, where
    SQLite is not safe and files would appear in the user's storage behind the journal's back). Whatever
    the configuration already chose is kept."""
    if not rtc_installed() or not issubclass(serverapp.contents_manager_class, CS3ContentsManager):
        return
    config = serverapp.config
    chosen = Config()
    if "file_id_manager_class" not in config.get("FileIdExtension", {}):
        chosen.FileIdExtension.file_id_manager_class = "contents.fileids.CS3FileIdManager"
    place = CS3Sync(config=config, log=QUIET).journal_path() / "collaboration"
    if "db_path" not in config.get("SQLiteYStore", {}):
        chosen.SQLiteYStore.db_path = str(place / "ystore.db")
    if "session_store_path" not in config.get("YDocExtension", {}):
        chosen.YDocExtension.session_store_path = str(place / "sessions.json")
    if "SQLiteYStore" in chosen or "YDocExtension" in chosen:
        try:
            ensure_private_dir(place)
        except OSError as exc:  # jupyter-collaboration's own defaults then; the journal will say more
            serverapp.log.warning("cs3sync: no folder for the collaboration rooms at %s: %s", place, exc)
            chosen.pop("SQLiteYStore", None)
            chosen.pop("YDocExtension", None)
    serverapp.update_config(chosen)


def attach_file_ids(serverapp: ServerApp) -> None:
    """Give our file id manager the contents manager it asks for resource ids."""
    if not rtc_installed():
        return
    from contents.fileids import CS3FileIdManager

    file_ids = serverapp.web_app.settings.get("file_id_manager")
    cm = serverapp.contents_manager
    if isinstance(file_ids, CS3FileIdManager) and isinstance(cm, CS3ContentsManager):
        file_ids.attach(cm.resource_ids)
