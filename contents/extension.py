"""The Jupyter server extension: REST handlers of cs3sync and a clean shutdown of the engine.

Enabled by ``jpserver_extensions = {"contents": true}`` (installed as jupyter-config with the wheel).
It registers the lock endpoints (``contents.locks``) and the labextension's endpoints
(``contents.handlers.setup_handlers``), and on server shutdown closes lock sessions, stops the
engine and closes the CS3 clients.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp

from contents.locks import setup_lock_handlers


class CS3SyncExtension(ExtensionApp):
    name = "cs3sync"
    load_other_extensions = True

    def initialize_handlers(self) -> None:
        web_app = self.serverapp.web_app
        setup_lock_handlers(web_app)
        try:
            from contents.handlers import setup_handlers
        except ImportError:  # the labextension's handlers are optional for the contents manager
            return
        setup_handlers(web_app, self.serverapp.contents_manager)

    async def stop_extension(self) -> None:
        await shutdown_manager(self.serverapp.contents_manager)


async def shutdown_manager(cm: Any) -> None:
    shutdown = getattr(cm, "shutdown", None)
    if shutdown is not None:
        await shutdown()
