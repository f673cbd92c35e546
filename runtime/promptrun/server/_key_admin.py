"""Managing keys, written once for the REST API, the dashboard's keys page and
``promptrun keys --db``: checking a new key's name and role, making the key, showing a key."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import msgspec

from promptrun.server.auth import key_hint, new_key
from promptrun.server.store.base import ApiKey, KeyRole, NewKey, Store

__all__ = ["MAX_NAME", "ROLES", "KeyView", "check_name", "check_role", "create_key", "key_view"]

MAX_NAME = 100
ROLES: tuple[KeyRole, ...] = ("member", "admin")


class KeyView(msgspec.Struct, kw_only=True):
    """A key as listed (never the key itself). Times are epoch seconds; ``hint`` is the
    key's last characters, ``source`` where it came from (``api-key``, ``generated``,
    ``created``, ``migrated``); ``current`` marks the key the request was made with."""

    id: int
    name: str
    workspace: str
    role: KeyRole
    hint: str
    source: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    current: bool = False


def key_view(key: ApiKey, current: int | None = None) -> dict[str, Any]:
    return msgspec.structs.asdict(
        KeyView(
            id=key.id,
            name=key.name,
            workspace=key.workspace_name,
            role=key.role,
            hint=key.hint,
            source=key.source,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            current=key.id == current,
        )
    )


def check_name(raw: str) -> str:
    """A key's name: 1 to 100 printable characters (spaces around it dropped)."""
    name = raw.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a key's name is 1 to {MAX_NAME} characters, e.g. 'ci' or 'ada laptop'")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise ValueError("a key's name cannot hold control or invisible characters")
    return name


def check_role(raw: str | None, default: KeyRole | None = "member") -> KeyRole | None:
    if raw is None or raw == "":
        return default
    for role in ROLES:
        if raw == role:
            return role
    raise ValueError(f"role must be admin or member, not {raw!r}")


async def create_key(
    store: Store,
    digest: Callable[[str], str],
    *,
    workspace: int | str,
    name: str,
    role: KeyRole | None,
) -> tuple[str, ApiKey]:
    """A new random key in ``workspace``: the key (to show once) and its row."""
    key = new_key()
    (stored,) = await store.register_keys(
        [
            NewKey(
                key_hash=digest(key),
                workspace=workspace,
                name=check_name(name),
                role=role,
                hint=key_hint(key),
                source="created",
            )
        ]
    )
    return key, stored
