"""Configuration of the Jupyter side: one traitlets section, ``c.CS3Sync``.

The trait names of the connection and lock settings are those users of the existing CS3 contents
manager (cs3-jupyter) already know. Its configuration sections ``c.CS3FileManagerMixin`` and
``c.CS3Mixin`` are read as deprecated aliases: a value set there, and not in ``c.CS3Sync``, is taken
over with a warning in the server's log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

# Sections of the old package whose values we still read, and trait renames between them and us.
DEPRECATED_SECTIONS = ("CS3FileManagerMixin", "CS3Mixin")
RENAMED_TRAITS = {"lock_by_setting_attr": "lock_as_attr"}
# Old traits we accept and ignore, with the reason shown in the warning.
IGNORED_TRAITS = {
    "lock_value": "lock ids are unique per server instance now",
    "cs3_token": "put the token in the file named by token_path",
}

MiB = 1024 * 1024


class CS3Sync(LoggingConfigurable):
    """Connection, journal and lock settings of cs3sync (``c.CS3Sync.<name>``)."""

    # --- connection (names of the old package) ------------------------------------------------
    host = Unicode("", help="gRPC address host:port of the Reva gateway (e.g. cernbox gateway).").tag(
        config=True
    )
    ssl_enabled = Bool(True, help="Use TLS on the gRPC channel and HTTPS for transfers.").tag(config=True)
    ssl_verify = Bool(True, help="Verify the server certificates (gRPC and data transfers).").tag(config=True)
    ssl_ca_cert = Unicode("", help="PEM file with CA certificates; empty = system roots.").tag(config=True)
    ssl_client_cert = Unicode("", help="PEM client certificate for mutual TLS (optional).").tag(config=True)
    ssl_client_key = Unicode("", help="PEM private key of ssl_client_cert (optional).").tag(config=True)
    tus_enabled = Bool(
        True,
        help="Use resumable tus uploads where the storage offers them (EOS offers only simple PUTs).",
    ).tag(config=True)
    token_path = Unicode(
        "/tmp/cernbox_oauth.token",
        help="File holding the credential for Authenticate (OAuth token for bearer, password for basic). "
        "Re-read on authentication failures.",
    ).tag(config=True)
    auth_login_type = Unicode("bearer", help="Authenticate type: bearer, basic or machine.").tag(config=True)
    client_id = Unicode("", help="Authenticate client_id (the user name for basic).").tag(config=True)
    authtokenvalidity = Int(3600, help="Seconds a Reva token is trusted when it carries no exp claim.").tag(
        config=True
    )
    root_path = Unicode(
        "", help="CS3 path shown as the Jupyter root; empty = the user's home (GetHome)."
    ).tag(config=True)

    # --- locks ------------------------------------------------------------------------------------
    lock_not_impl = Bool(False, help="The storage has no locks: do not lock documents.").tag(config=True)
    lock_as_attr = Bool(
        False, help="Emulate locks with arbitrary metadata (for storages without lock RPCs)."
    ).tag(config=True)
    lock_app_name = Unicode("jupyter-rtc", help="Lock holder (app name) sent as X-Lock-Holder.").tag(
        config=True
    )
    lock_holder_suffix_client_id = Bool(
        True, help="Suffix the holder with client_id, so each user holds their own locks."
    ).tag(config=True)
    lock_expiration = Int(300, help="Seconds a lock lives without refresh; sessions expire after it.").tag(
        config=True
    )

    # --- copies -----------------------------------------------------------------------------------
    max_copy_folder_size_mb = Int(500, help="Largest folder (MiB) a copy may duplicate.").tag(config=True)

    # --- journal and engine -----------------------------------------------------------------------
    journal_dir = Unicode("", help="Journal directory; empty = $XDG_STATE_HOME/cs3sync/<account-hash>/.").tag(
        config=True
    )
    allow_network_fs = Bool(
        False,
        help="Allow journal_dir on a network or FUSE file system (NFS, CIFS, the EOS mount). Off by "
        "default: SQLite locking and fsync are not reliable there.",
    ).tag(config=True)
    workers = Int(4, help="Worker tasks applying journal entries.").tag(config=True)
    offline_probe_interval = Float(
        15.0, help="Seconds between probes of an unreachable storage (doubling up to offline_probe_max)."
    ).tag(config=True)
    offline_probe_max = Float(120.0, help="Longest wait (s) between probes of an unreachable storage.").tag(
        config=True
    )
    merge_conflicts = Bool(
        True,
        help="When a save finds the file changed on the storage since it was opened, merge the two "
        "versions where they do not overlap (notebooks by cell, text by line) instead of writing a "
        "conflicted copy. False: always a conflicted copy.",
    ).tag(config=True)
    write_through_timeout = Float(
        0.0,
        help="Seconds a write waits to be applied to the storage before replying from the journal (0: "
        "reply once journaled and fsynced; always 0 offline).",
    ).tag(config=True)
    upload_chunk_size = Int(16 * MiB, help="Bytes per tus PATCH.").tag(config=True)
    cache_max_bytes = Int(
        256 * MiB, help="Recently read content kept to serve reads while the storage is unreachable."
    ).tag(config=True)
    stat_cache_ttl = Float(2.0, help="Seconds a Stat result answers repeated metadata calls.").tag(
        config=True
    )
    metadata_deadline = Float(30.0, help="Deadline (s) of metadata RPCs.").tag(config=True)
    transfer_deadline = Float(300.0, help="Deadline (s) of one data transfer request.").tag(config=True)

    # --- kernels ----------------------------------------------------------------------------------
    local_mount = Unicode(
        "",
        help="Local directory where root_path is mounted (EOS FUSE in SWAN); kernels then start in "
        "their notebook's folder.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._apply_deprecated_sections()

    def _apply_deprecated_sections(self) -> None:
        """Take over values from the old sections. Each deprecated name is reported once, through the
        logger of the parent (the server's, when the contents manager creates us): a DeprecationWarning
        would be hidden by Python's default filters."""
        own = self.config.get("CS3Sync", {})
        for section in DEPRECATED_SECTIONS:
            values = self.config.get(section, {})
            for old_name in list(values):
                name = RENAMED_TRAITS.get(old_name, old_name)
                if old_name in IGNORED_TRAITS:
                    self.log.warning("c.%s.%s is ignored: %s", section, old_name, IGNORED_TRAITS[old_name])
                    continue
                if not self.has_trait(name):
                    continue
                if name in own:
                    self.log.warning(
                        "c.%s.%s is deprecated and overridden by c.CS3Sync.%s", section, old_name, name
                    )
                    continue
                self.log.warning("c.%s.%s is deprecated; use c.CS3Sync.%s", section, old_name, name)
                setattr(self, name, values[old_name])

    # --- derived values ---------------------------------------------------------------------------
    def journal_path(self) -> Path:
        """The journal directory: ``journal_dir``, else this account's default."""
        if self.journal_dir:
            return Path(self.journal_dir).expanduser()
        from cs3sync.journal import default_journal_dir

        return default_journal_dir(self.host, self.client_id or "default")

    @property
    def lock_holder(self) -> str:
        """The app name our locks carry (EOS lowercases it; so do we, to compare)."""
        if self.lock_holder_suffix_client_id and self.client_id:
            return f"{self.lock_app_name}-{self.client_id}"
        return self.lock_app_name

    def settings(self) -> dict[str, Any]:
        """All trait values, by name."""
        # getattr: traitlets names its traits as strings (trait_names); this reads each one's value.
        return {name: getattr(self, name) for name in self.trait_names(config=True)}

    def cs3_config_kwargs(self, config_class: type) -> dict[str, Any]:
        """Keyword arguments for the client's ``CS3Config`` dataclass: every field we have a value for."""
        values: dict[str, Any] = self.settings()
        values["lock_app_name"] = self.lock_holder
        for name in ("ssl_ca_cert", "ssl_client_cert", "ssl_client_key"):
            values[name] = values[name] or None
        names = (
            {f.name for f in dataclasses.fields(config_class)}
            if dataclasses.is_dataclass(config_class)
            else set()
        )
        return {name: value for name, value in values.items() if name in names}
