"""Workspaces and API keys (stored as hashes only)."""

from __future__ import annotations

from collections.abc import Sequence

from promptrun.server.store.base import StoreConfigError
from promptrun.server.store.queries._sql import Op, execute, fetchval
from promptrun.server.store.queries.dialect import Dialect

__all__ = ["add_keys", "has_keys", "workspace_for_key", "workspace_name"]


def workspace_for_key(d: Dialect, key_hash: str) -> Op[int | None]:
    found = yield from fetchval("SELECT workspace_id FROM api_keys WHERE key_hash = $1", key_hash)
    return None if found is None else int(found)


def add_keys(d: Dialect, keys: Sequence[tuple[str, str]], now: float) -> Op[None]:
    """Register keys; stores starting together with the same keys all succeed.

    Sorted, so processes registering the same keys at once lock them in one order.
    """
    for workspace, key_hash in sorted(keys):
        d.check_text(workspace)
        yield from execute(
            "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) "
            "ON CONFLICT (name) DO NOTHING",
            workspace,
            now,
        )
        workspace_id = yield from fetchval("SELECT id FROM workspaces WHERE name = $1", workspace)
        yield from execute(
            "INSERT INTO api_keys (key_hash, workspace_id, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key_hash) DO NOTHING",
            key_hash,
            workspace_id,
            now,
        )
        owner = yield from fetchval(
            "SELECT w.name FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
            "WHERE k.key_hash = $1",
            key_hash,
        )
        if owner != workspace:
            raise StoreConfigError(
                f"an API key given for workspace {workspace!r} already belongs to "
                f"workspace {owner!r} in this database; a key has one workspace"
            )


def has_keys(d: Dialect) -> Op[bool]:
    return bool((yield from fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)")))


def workspace_name(d: Dialect, workspace: int) -> Op[str]:
    found = yield from fetchval("SELECT name FROM workspaces WHERE id = $1", workspace)
    return "?" if found is None else str(found)
