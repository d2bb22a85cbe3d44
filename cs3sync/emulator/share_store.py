"""User shares, received shares and public links: ``ShareStore``, synchronous (SQLite, run in a worker
thread by the servicer and the data plane). Share ids are numeric strings; clients must treat them as
opaque."""

from __future__ import annotations

import builtins
import hashlib
import secrets
import string
from typing import TYPE_CHECKING, Any

from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as collab_res
from cs3.sharing.link.v1beta1 import link_api_pb2 as link
from cs3.sharing.link.v1beta1 import resources_pb2 as link_res
from cs3.storage.provider.v1beta1 import resources_pb2 as res
from cs3.types.v1beta1 import types_pb2

from .auth import user_id_proto
from .config import UserSpec
from .errors import CS3Error
from .storage import EDITOR_PERMS, VIEWER_PERMS, Storage

if TYPE_CHECKING:
    from sqlite3 import Row

SF = collab_res.Filter
PF = link.ListPublicSharesRequest.Filter
UPD = link.UpdatePublicShareRequest.Update
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class DuplicateShare(Exception):
    """cernbox: the share manager's error surfaces as a gRPC UNKNOWN from the gateway."""


def _ts(seconds: float) -> types_pb2.Timestamp:
    return types_pb2.Timestamp(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


def _hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    return salt + "$" + hashlib.sha256((salt + password).encode()).hexdigest()


def _check_password(stored: str, password: str) -> bool:
    salt, _, digest = stored.partition("$")
    return secrets.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest)


class ShareStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.config = storage.config
        self.db = storage.db

    # ------------------------------------------------------------------ helpers
    def _owner_of(self, opaque_id: str, caller: UserSpec) -> None:
        """CreateShare needs the resource by id (NOT_FOUND) and the caller's ownership (PERMISSION_DENIED)."""
        disk = self.storage.disk_for_id(opaque_id)
        if disk is None:
            raise CS3Error.not_found("resource not found")
        mount = self.storage.mount_table.mount_for_disk(disk)
        if mount is None or (mount.owner is not None and mount.owner != caller):
            raise CS3Error.denied("permission denied: not the owner of the resource")

    def _user_id(self, opaque_id: str) -> Any:
        user = self.config.user_by_id(opaque_id)
        return user_id_proto(user) if user else res.Grantee().user_id

    def has_any(self) -> bool:
        with self.storage.mutex:
            return (
                self.db.execute("SELECT 1 FROM shares UNION SELECT 1 FROM public_shares").fetchone()
                is not None
            )

    # ------------------------------------------------------------------ user shares
    def share_proto(self, row: Row) -> collab_res.Share:
        perms = res.ResourcePermissions()
        perms.ParseFromString(row["permissions"])
        grantee = res.Grantee(type=row["grantee_type"])
        if row["grantee_type"] == res.GRANTEE_TYPE_USER:
            grantee.user_id.CopyFrom(self._user_id(row["grantee"]))
        else:
            grantee.group_id.CopyFrom(
                group_res.GroupId(
                    idp=self.config.idp, opaque_id=row["grantee"], type=group_res.GROUP_TYPE_REGULAR
                )
            )
        share = collab_res.Share(
            id=collab_res.ShareId(opaque_id=str(row["id"])),
            resource_id=res.ResourceId(
                storage_id=row["resource_storage"],
                space_id=row["resource_space"],
                opaque_id=row["resource_opaque"],
            ),
            permissions=collab_res.SharePermissions(permissions=perms),
            grantee=grantee,
            owner=self._user_id(row["owner"]),
            creator=self._user_id(row["creator"]),
            ctime=_ts(row["ctime"]),
            mtime=_ts(row["mtime"]),
            description=row["description"] or "",
        )
        if row["expiration"]:
            share.expiration.CopyFrom(_ts(row["expiration"]))
        return share

    def create(
        self, caller: UserSpec, info: res.ResourceInfo, grant: collab_res.ShareGrant
    ) -> collab_res.Share:
        rid = info.id
        self._owner_of(rid.opaque_id, caller)
        grantee = grant.grantee
        if grantee.type == res.GRANTEE_TYPE_USER:
            key = grantee.user_id.opaque_id
            if self.config.user_by_id(key) is None:
                raise CS3Error.not_found("grantee not found")
        elif grantee.type == res.GRANTEE_TYPE_GROUP:
            key = grantee.group_id.opaque_id
        else:
            raise CS3Error(code_pb2.CODE_INVALID_ARGUMENT, "invalid grantee type")
        now = self.storage.clock.now()
        with self.storage.mutex:
            dup = self.db.execute(
                "SELECT id FROM shares WHERE resource_opaque=? AND grantee_type=? AND grantee=?",
                (rid.opaque_id, grantee.type, key),
            ).fetchone()
            if dup is not None:
                if self.config.duplicate_share == "unknown":
                    raise DuplicateShare("ShareClient returned error: share already exists")
                raise CS3Error(code_pb2.CODE_ALREADY_EXISTS, "share already exists")
            cur = self.db.execute(
                "INSERT INTO shares (resource_storage, resource_space, resource_opaque, owner, creator,"
                " grantee_type, grantee, permissions, ctime, mtime, expiration, description)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rid.storage_id or self.config.storage_id,
                    rid.space_id,
                    rid.opaque_id,
                    caller.opaque_id,
                    caller.opaque_id,
                    grantee.type,
                    key,
                    grant.permissions.permissions.SerializeToString(),
                    now,
                    now,
                    grant.expiration.seconds if grant.HasField("expiration") else 0,
                    "",
                ),
            )
            return self.share_proto(self._row(cur.lastrowid))

    def _row(self, share_id: Any) -> Row:
        row: Row | None = self.db.execute("SELECT * FROM shares WHERE id=?", (share_id,)).fetchone()
        if row is None:
            raise CS3Error.not_found("share not found")
        return row

    def _find(self, ref: collab_res.ShareReference) -> Row:
        with self.storage.mutex:
            if ref.id.opaque_id:
                share_id = _row_id(ref.id.opaque_id)
                if share_id is None:
                    raise CS3Error.not_found("share not found")
                return self._row(share_id)
            key = ref.key
            grantee = key.grantee.user_id.opaque_id or key.grantee.group_id.opaque_id
            row: Row | None = self.db.execute(
                "SELECT * FROM shares WHERE resource_opaque=? AND grantee=?",
                (key.resource_id.opaque_id, grantee),
            ).fetchone()
            if row is None:
                raise CS3Error.not_found("share not found")
            return row

    def _visible(self, row: Row, caller: UserSpec) -> bool:
        return caller.opaque_id in (row["owner"], row["creator"]) or self._is_grantee(row, caller)

    @staticmethod
    def _is_grantee(row: Row, caller: UserSpec) -> bool:
        if row["grantee_type"] == res.GRANTEE_TYPE_USER:
            return bool(row["grantee"] == caller.opaque_id)
        return row["grantee"] in caller.groups

    def get(self, ref: collab_res.ShareReference, caller: UserSpec) -> collab_res.Share:
        row = self._find(ref)
        if not self._visible(row, caller):
            raise CS3Error.not_found("share not found")
        return self.share_proto(row)

    def remove(self, ref: collab_res.ShareReference, caller: UserSpec) -> None:
        row = self._find(ref)
        if caller.opaque_id not in (row["owner"], row["creator"]):
            raise CS3Error.not_found("share not found")
        with self.storage.mutex:
            self.db.execute("DELETE FROM shares WHERE id=?", (row["id"],))
            self.db.execute("DELETE FROM received WHERE share_id=?", (row["id"],))

    def update(self, request: collab.UpdateShareRequest, caller: UserSpec) -> collab_res.Share:
        row = self._find(
            request.ref if request.HasField("ref") else collab_res.ShareReference(id=request.share.id)
        )
        if caller.opaque_id not in (row["owner"], row["creator"]):
            raise CS3Error.not_found("share not found")
        perms = expiration = None
        field = request.field
        if field.HasField("permissions"):
            perms = field.permissions.permissions
        if field.HasField("expiration"):
            expiration = field.expiration.seconds
        for path in request.update_mask.paths:
            if path == "permissions":
                perms = request.share.permissions.permissions
            elif path == "expiration":
                expiration = request.share.expiration.seconds
            else:
                raise CS3Error.internal(f"error updating share: not supported: {path}")
        with self.storage.mutex:
            if perms is not None:
                self.db.execute(
                    "UPDATE shares SET permissions=? WHERE id=?", (perms.SerializeToString(), row["id"])
                )
            if expiration is not None:
                self.db.execute("UPDATE shares SET expiration=? WHERE id=?", (expiration, row["id"]))
            self.db.execute("UPDATE shares SET mtime=? WHERE id=?", (self.storage.clock.now(), row["id"]))
            return self.share_proto(self._row(row["id"]))

    def _matches(self, row: Row, filters: list[collab_res.Filter]) -> bool:
        """Filters of one type are OR-ed, different types AND-ed (as Reva's share managers)."""
        by_type: dict[int, list[collab_res.Filter]] = {}
        for f in filters:
            by_type.setdefault(f.type, []).append(f)
        for ftype, group in by_type.items():
            if ftype == SF.TYPE_RESOURCE_ID:
                ok = any(row["resource_opaque"] == f.resource_id.opaque_id for f in group)
            elif ftype == SF.TYPE_OWNER:
                ok = any(row["owner"] == f.owner.opaque_id for f in group)
            elif ftype == SF.TYPE_CREATOR:
                ok = any(row["creator"] == f.creator.opaque_id for f in group)
            elif ftype == SF.TYPE_GRANTEE_TYPE:
                ok = any(row["grantee_type"] == f.grantee_type for f in group)
            elif ftype == SF.TYPE_SPACE_ID:
                ok = any(row["resource_space"] == f.space_id for f in group)
            else:
                ok = True
            if not ok:
                return False
        return True

    def list(self, caller: UserSpec, filters: list[collab_res.Filter]) -> list[collab_res.Share]:
        with self.storage.mutex:
            rows = self.db.execute(
                "SELECT * FROM shares WHERE owner=? OR creator=? ORDER BY id",
                (caller.opaque_id, caller.opaque_id),
            ).fetchall()
        return [self.share_proto(r) for r in rows if self._matches(r, filters)]

    # ------------------------------------------------------------------ received shares
    def _received_proto(self, row: Row, caller: UserSpec) -> collab_res.ReceivedShare:
        with self.storage.mutex:
            state_row = self.db.execute(
                "SELECT state, hidden FROM received WHERE share_id=? AND username=?",
                (row["id"], caller.username),
            ).fetchone()
        accepted = self.config.received_share_state == "accepted"
        default = collab_res.SHARE_STATE_ACCEPTED if accepted else collab_res.SHARE_STATE_PENDING
        state = state_row["state"] if state_row and state_row["state"] else default
        hidden = bool(state_row["hidden"]) if state_row else False
        if accepted and hidden:
            state = collab_res.SHARE_STATE_REJECTED  # CERNBox: hidden shares read as REJECTED
        received = collab_res.ReceivedShare(share=self.share_proto(row), state=state, hidden=hidden)
        if not accepted:
            disk = self.storage.disk_for_id(row["resource_opaque"])
            if disk is not None:
                received.mount_point.CopyFrom(res.Reference(path=disk.name))
        return received

    def received(
        self, caller: UserSpec, filters: builtins.list[collab_res.Filter]
    ) -> builtins.list[collab_res.ReceivedShare]:
        now = self.storage.clock.now()
        with self.storage.mutex:
            rows = self.db.execute("SELECT * FROM shares ORDER BY id").fetchall()
        out = []
        states = {f.state for f in filters if f.type == SF.TYPE_STATE}
        other = [f for f in filters if f.type != SF.TYPE_STATE]
        for row in rows:
            if not self._is_grantee(row, caller) or (row["expiration"] and row["expiration"] < now):
                continue
            if not self._matches(row, other):
                continue
            received = self._received_proto(row, caller)
            if states and received.state not in states:
                continue
            out.append(received)
        return out

    def get_received(self, ref: collab_res.ShareReference, caller: UserSpec) -> collab_res.ReceivedShare:
        row = self._find(ref)
        if not self._is_grantee(row, caller):
            raise CS3Error.not_found("share not found")
        return self._received_proto(row, caller)

    def update_received(
        self, received: collab_res.ReceivedShare, paths: builtins.list[str], caller: UserSpec
    ) -> collab_res.ReceivedShare:
        row = self._find(collab_res.ShareReference(id=received.share.id))
        if not self._is_grantee(row, caller):
            raise CS3Error.not_found("share not found")
        current = self._received_proto(row, caller)
        state, hidden = current.state, current.hidden
        for path in paths:
            if path == "state":
                state = received.state
            elif path == "hidden":
                hidden = received.hidden
            else:
                raise CS3Error.internal(f"error updating received share: not supported: {path}")
        with self.storage.mutex:
            self.db.execute(
                "INSERT OR REPLACE INTO received (share_id, username, state, hidden) VALUES (?, ?, ?, ?)",
                (row["id"], caller.username, state, int(hidden)),
            )
        return self._received_proto(row, caller)

    # ------------------------------------------------------------------ public links
    def link_proto(self, row: Row) -> link_res.PublicShare:
        perms = res.ResourcePermissions()
        perms.ParseFromString(row["permissions"])
        share = link_res.PublicShare(
            id=link_res.PublicShareId(opaque_id=str(row["id"])),
            token=row["token"],
            resource_id=res.ResourceId(
                storage_id=row["resource_storage"],
                space_id=row["resource_space"],
                opaque_id=row["resource_opaque"],
            ),
            permissions=link_res.PublicSharePermissions(permissions=perms),
            owner=self._user_id(row["owner"]),
            creator=self._user_id(row["creator"]),
            ctime=_ts(row["ctime"]),
            mtime=_ts(row["mtime"]),
            password_protected=bool(row["password_hash"]),
            display_name=row["display_name"] or "",
            description=row["description"] or "",
            quicklink=bool(row["quicklink"]),
        )
        if row["expiration"]:
            share.expiration.CopyFrom(_ts(row["expiration"]))
        return share

    def create_link(self, caller: UserSpec, request: link.CreatePublicShareRequest) -> link_res.PublicShare:
        rid = request.resource_info.id
        self._owner_of(rid.opaque_id, caller)
        grant = request.grant
        now = self.storage.clock.now()
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(15))
        with self.storage.mutex:
            cur = self.db.execute(
                "INSERT INTO public_shares (token, resource_storage, resource_space, resource_opaque, owner,"
                " creator, permissions, ctime, mtime, password_hash, expiration, display_name, description,"
                " quicklink)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    token,
                    rid.storage_id or self.config.storage_id,
                    rid.space_id,
                    rid.opaque_id,
                    caller.opaque_id,
                    caller.opaque_id,
                    grant.permissions.permissions.SerializeToString(),
                    now,
                    now,
                    _hash_password(grant.password) if grant.password else "",
                    grant.expiration.seconds if grant.HasField("expiration") else 0,
                    "",
                    request.description,
                    0,
                ),
            )
            return self.link_proto(self._link_row_by("id", cur.lastrowid))

    def _link_row_by(self, column: str, value: Any) -> Row:
        row: Row | None = self.db.execute(
            f"SELECT * FROM public_shares WHERE {column}=?", (value,)
        ).fetchone()
        if row is None:
            raise CS3Error.not_found("public share not found")
        return row

    def _find_link(self, ref: link_res.PublicShareReference) -> Row:
        with self.storage.mutex:
            if ref.token:
                return self._link_row_by("token", ref.token)
            link_id = _row_id(ref.id.opaque_id)
            if link_id is None:
                raise CS3Error.not_found("public share not found")
            return self._link_row_by("id", link_id)

    def get_link(self, ref: link_res.PublicShareReference, caller: UserSpec) -> link_res.PublicShare:
        row = self._find_link(ref)
        if caller.opaque_id not in (row["owner"], row["creator"]):
            raise CS3Error.not_found("public share not found")
        return self.link_proto(row)

    def get_link_by_token(self, token: str, password: str) -> link_res.PublicShare:
        row = self._find_link(link_res.PublicShareReference(token=token))
        if row["expiration"] and row["expiration"] < self.storage.clock.now():
            raise CS3Error.not_found("public share not found")
        if row["password_hash"] and not _check_password(row["password_hash"], password):
            raise CS3Error.denied("wrong password")
        return self.link_proto(row)

    def remove_link(self, ref: link_res.PublicShareReference, caller: UserSpec) -> None:
        row = self._find_link(ref)
        if caller.opaque_id not in (row["owner"], row["creator"]):
            raise CS3Error.not_found("public share not found")
        with self.storage.mutex:
            self.db.execute("DELETE FROM public_shares WHERE id=?", (row["id"],))

    def update_link(self, request: link.UpdatePublicShareRequest, caller: UserSpec) -> link_res.PublicShare:
        row = self._find_link(request.ref)
        if caller.opaque_id not in (row["owner"], row["creator"]):
            raise CS3Error.not_found("public share not found")
        update = request.update
        column, value = {
            UPD.TYPE_PERMISSIONS: ("permissions", update.grant.permissions.permissions.SerializeToString()),
            UPD.TYPE_PASSWORD: (
                "password_hash",
                _hash_password(update.grant.password) if update.grant.password else "",
            ),
            UPD.TYPE_EXPIRATION: ("expiration", update.grant.expiration.seconds),
            UPD.TYPE_DISPLAYNAME: ("display_name", update.display_name),
            UPD.TYPE_DESCRIPTION: ("description", update.description),
        }.get(update.type, (None, None))
        if column is None:
            raise CS3Error.internal("error updating public share: not supported")
        with self.storage.mutex:
            self.db.execute(
                f"UPDATE public_shares SET {column}=?, mtime=? WHERE id=?",
                (value, self.storage.clock.now(), row["id"]),
            )
            return self.link_proto(self._link_row_by("id", row["id"]))

    def list_links(
        self, caller: UserSpec, filters: builtins.list[Any]
    ) -> builtins.list[link_res.PublicShare]:
        with self.storage.mutex:
            rows = self.db.execute(
                "SELECT * FROM public_shares WHERE owner=? OR creator=? ORDER BY id",
                (caller.opaque_id, caller.opaque_id),
            ).fetchall()
        out = []
        for row in rows:
            ok = True
            for f in filters:
                if (
                    (f.type == PF.TYPE_RESOURCE_ID and row["resource_opaque"] != f.resource_id.opaque_id)
                    or (f.type == PF.TYPE_OWNER and row["owner"] != f.owner.opaque_id)
                    or (f.type == PF.TYPE_CREATOR and row["creator"] != f.creator.opaque_id)
                ):
                    ok = False
            if ok:
                out.append(self.link_proto(row))
        return out

    # ------------------------------------------------------------------ demo helpers
    def _info_for(self, path: str) -> res.ResourceInfo:
        node = self.storage.resolve_path(path, None)
        return self.storage.info(node)

    def seed_share(self, owner: UserSpec, path: str, grantee: UserSpec, *, editor: bool) -> collab_res.Share:
        grant = collab_res.ShareGrant(
            grantee=res.Grantee(type=res.GRANTEE_TYPE_USER, user_id=user_id_proto(grantee)),
            permissions=collab_res.SharePermissions(permissions=EDITOR_PERMS if editor else VIEWER_PERMS),
        )
        return self.create(owner, self._info_for(path), grant)

    def unseed_share(self, owner: UserSpec, share_id: str) -> None:
        self.remove(collab_res.ShareReference(id=collab_res.ShareId(opaque_id=share_id)), owner)

    def seed_link(self, owner: UserSpec, path: str) -> None:
        request = link.CreatePublicShareRequest(
            resource_info=self._info_for(path),
            grant=link_res.Grant(permissions=link_res.PublicSharePermissions(permissions=VIEWER_PERMS)),
            description="demo link",
        )
        self.create_link(owner, request)


def _row_id(text: str) -> int | None:
    """A share or link id as our row id; None for anything that cannot be one. Ids are integers in
    Reva's SQL share managers too: an id that is not one (or beyond 64 bits) names no share, NOT_FOUND,
    rather than an internal error."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)
