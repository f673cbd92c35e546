"""Workspaces, API keys (stored as digests only) and the secrets the server processes share.

A key row has a name, a role (``admin`` may manage the workspace's keys, ``member`` may
not), where it came from, when it was made, last used and revoked. A revoked key is kept,
so that listing shows it and ``--api-key`` cannot bring it back at the next start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptrun.server.store.base import (
    ApiKey,
    KeyGrant,
    KeyRefused,
    NewKey,
    NotFoundError,
    StoreConfigError,
)
from promptrun.server.store.queries._sql import Op, Row, execute, fetch, fetchrow, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.requests import in_int64

__all__ = [
    "add_keys",
    "grants_for",
    "has_keys",
    "list_keys",
    "register_keys",
    "revoke_key",
    "shared_secret",
    "touch_keys",
    "upgrade_key_hashes",
    "workspace_for_key",
    "workspace_name",
]

LEGACY = "sha256"  # digests stored before keys were HMACs: re-hashed at the next start
_COLUMNS = (
    "k.id, k.workspace_id, w.name, k.name, k.role, k.hint, k.source, k.created_at, "
    "k.last_used_at, k.revoked_at"
)
_FROM = "FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
_CHUNK = 500  # digests per lookup


def _key(row: Row) -> ApiKey:
    key_id, workspace, workspace_name, name, role, hint, source, created, used, revoked = row
    return ApiKey(
        id=int(key_id),
        workspace=int(workspace),
        workspace_name=str(workspace_name),
        name=str(name),
        role="admin" if role == "admin" else "member",
        hint=str(hint or ""),
        source=str(source),
        created_at=float(created),
        last_used_at=None if used is None else float(used),
        revoked_at=None if revoked is None else float(revoked),
    )


def _grant(row: Row) -> KeyGrant:
    key_id, workspace, role, hint = row
    return KeyGrant(
        int(key_id), int(workspace), "admin" if role == "admin" else "member", bool(hint)
    )


def grants_for(d: Dialect, key_hashes: Sequence[str]) -> Op[dict[str, KeyGrant]]:
    found: dict[str, KeyGrant] = {}
    wanted = [h for h in dict.fromkeys(key_hashes) if d.text_ok(h)]
    for start in range(0, len(wanted), _CHUNK):
        rows = yield from fetch(
            "SELECT key_hash, id, workspace_id, role, hint FROM api_keys "
            f"WHERE key_hash {d.any_of('$1', 'text')} AND revoked_at IS NULL",
            d.array(wanted[start : start + _CHUNK]),
        )
        for key_hash, *rest in rows:
            found[str(key_hash)] = _grant(tuple(rest))
    return found


def workspace_for_key(d: Dialect, key_hash: str) -> Op[int | None]:
    found = yield from fetchval(
        "SELECT workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
    )
    return None if found is None else int(found)


def _workspace_id(d: Dialect, workspace: int | str, now: float) -> Op[int]:
    if isinstance(workspace, int):
        found = yield from fetchval("SELECT id FROM workspaces WHERE id = $1", workspace)
        if found is None:
            raise NotFoundError(f"workspace {workspace} not found")
        return int(found)
    d.check_text(workspace)
    yield from execute(
        "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        workspace,
        now,
    )
    return int((yield from fetchval("SELECT id FROM workspaces WHERE name = $1", workspace)))


def register_keys(d: Dialect, keys: Sequence[NewKey], now: float) -> Op[list[ApiKey]]:
    """Sorted by digest, so processes registering the same keys at once lock them in one
    order; the answer is in the order given."""
    stored: dict[str, ApiKey] = {}
    for new in sorted(keys, key=lambda k: k.key_hash):
        d.check_text(new.key_hash, new.name, new.hint, new.source)
        workspace = yield from _workspace_id(d, new.workspace, now)
        role = new.role
        if role is None:
            admins = yield from fetchval(
                "SELECT COUNT(*) FROM api_keys WHERE workspace_id = $1 AND role = 'admin' "
                "AND revoked_at IS NULL",
                workspace,
            )
            role = "member" if int(admins) else "admin"
        yield from execute(
            "INSERT INTO api_keys (key_hash, workspace_id, name, role, hint, source, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key_hash) DO NOTHING",
            new.key_hash, workspace, new.name, role, new.hint, new.source, now,
        )  # fmt: skip
        row = yield from fetchrow(f"SELECT {_COLUMNS} {_FROM} WHERE k.key_hash = $1", new.key_hash)
        assert row is not None
        key = _key(row)
        if key.workspace != workspace:
            wanted = yield from workspace_name(d, workspace)
            raise StoreConfigError(
                f"an API key given for workspace {wanted!r} already belongs to "
                f"workspace {key.workspace_name!r} in this database; a key has one workspace"
            )
        stored[new.key_hash] = key
    return [stored[new.key_hash] for new in keys]


def add_keys(d: Dialect, keys: Sequence[tuple[str, str]], now: float) -> Op[None]:
    """Register ``(workspace name, digest)`` pairs as keys given to ``--api-key``."""
    yield from register_keys(
        d, [NewKey(key_hash=h, workspace=ws, name="--api-key", source="api-key") for ws, h in keys],
        now,
    )  # fmt: skip


def list_keys(d: Dialect, workspace: int | None, *, revoked: bool = False) -> Op[list[ApiKey]]:
    where, args = [], []
    if workspace is not None:
        args.append(workspace)
        where.append(f"k.workspace_id = ${len(args)}")
    if not revoked:
        where.append("k.revoked_at IS NULL")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = yield from fetch(
        f"SELECT {_COLUMNS} {_FROM} {clause}ORDER BY w.name{d.binary}, k.id", *args
    )
    return [_key(row) for row in rows]


def revoke_key(d: Dialect, workspace: int | None, key_id: int, now: float) -> Op[ApiKey]:
    row = None
    if in_int64(key_id):
        row = yield from fetchrow(f"SELECT {_COLUMNS} {_FROM} WHERE k.id = $1", key_id)
    if row is None or (workspace is not None and int(row[1]) != workspace):
        raise NotFoundError(f"key {key_id} not found in this workspace")
    key = _key(row)
    if key.revoked_at is not None:
        return key
    if key.role == "admin":
        # Lock the workspace's row first (PostgreSQL: until commit; a no-key update, which
        # inserts referencing the workspace do not wait for), so that two revocations at
        # once cannot each see the other's key as the admin that remains.
        yield from execute("UPDATE workspaces SET name = name WHERE id = $1", key.workspace)
        others = yield from fetch(
            "SELECT id FROM api_keys WHERE workspace_id = $1 AND role = 'admin' "
            "AND revoked_at IS NULL AND id <> $2",
            key.workspace,
            key.id,
        )
        if not others:
            raise KeyRefused(
                f"key {key.id} is the last admin key of workspace {key.workspace_name!r}: "
                "create another admin key first (promptrun keys create NAME --role admin), "
                "then revoke this one"
            )
    yield from execute("UPDATE api_keys SET revoked_at = $1 WHERE id = $2", now, key.id)
    yield from execute("DELETE FROM dashboard_sessions WHERE key_id = $1", key.id)
    row = yield from fetchrow(f"SELECT {_COLUMNS} {_FROM} WHERE k.id = $1", key.id)
    assert row is not None
    return _key(row)


def touch_keys(d: Dialect, used: Sequence[tuple[int, float, str]]) -> Op[None]:
    """Sorted by id, so processes touching the same keys lock them in one order."""
    for key_id, when, hint in sorted(used):
        yield from execute(
            "UPDATE api_keys SET last_used_at = $1, "
            "hint = CASE WHEN hint = '' THEN $2 ELSE hint END "
            "WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)",
            when,
            hint if d.text_ok(hint) else "",
            key_id,
        )


def upgrade_key_hashes(d: Dialect, rehash: Callable[[str], str]) -> Op[int]:
    rows = yield from fetch("SELECT id, key_hash FROM api_keys WHERE hash_kind = $1", LEGACY)
    for key_id, old in sorted(rows):
        yield from execute(
            "UPDATE api_keys SET key_hash = $1, hash_kind = 'hmac' WHERE id = $2 AND hash_kind = $3",
            rehash(str(old)),
            key_id,
            LEGACY,
        )
    return len(rows)


def has_keys(d: Dialect) -> Op[bool]:
    return bool((yield from fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)")))


def workspace_name(d: Dialect, workspace: int) -> Op[str]:
    found = yield from fetchval("SELECT name FROM workspaces WHERE id = $1", workspace)
    return "?" if found is None else str(found)


def shared_secret(d: Dialect, name: str, fresh: bytes) -> Op[bytes]:
    """The secret called ``name``: ``fresh`` if nobody made it before."""
    yield from execute(
        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        fresh,
    )
    return bytes((yield from fetchval("SELECT value FROM server_secrets WHERE name = $1", name)))
