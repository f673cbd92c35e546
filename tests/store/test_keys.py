"""Keys and workspaces, on both stores."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store.base import (
    KeyGrant,
    KeyRefused,
    NewKey,
    NotFoundError,
    Store,
    StoreConfigError,
)

from .conftest import Workspaces

pytestmark = pytest.mark.anyio


async def test_a_key_resolves_to_its_workspace_and_an_unknown_one_to_none(
    store: Store, spaces: Workspaces
) -> None:
    assert spaces.ws != spaces.other
    assert await store.workspace_for_key(hash_key("nobody")) is None
    assert await store.workspace_name(spaces.ws) == "default"
    assert await store.workspace_name(spaces.other) == "other"
    assert await store.workspace_name(10**6) == "?"


async def test_adding_the_same_keys_again_and_at_once_changes_nothing(
    store: Store, spaces: Workspaces
) -> None:
    keys = [("default", hash_key("k-default")), ("default", hash_key("k-second"))]
    await asyncio.gather(*(store.add_keys(keys) for _ in range(4)))
    assert await store.workspace_for_key(hash_key("k-second")) == spaces.ws
    assert await store.has_keys()


async def test_a_key_cannot_move_to_another_workspace(store: Store) -> None:
    with pytest.raises(StoreConfigError, match="already belongs to workspace 'default'"):
        await store.add_keys([("other", hash_key("k-default"))])


async def test_a_store_without_keys_says_so(make_store: tuple[str, object]) -> None:
    from .conftest import open_store

    empty = open_store(make_store)
    await empty.start()
    try:
        assert not await empty.has_keys()
    finally:
        await empty.close()


async def test_a_secret_is_the_same_each_time_it_is_asked_for(store: Store) -> None:
    first = await store.shared_secret("ws-token-signing")
    assert len(first) == 32
    assert await store.shared_secret("ws-token-signing") == first
    assert await store.shared_secret("another") != first


# -- key management ------------------------------------------------------------------------


def new(digest: str, workspace: int | str = "default", **fields: object) -> NewKey:
    return NewKey(key_hash=digest, workspace=workspace, name=digest, **fields)  # type: ignore[arg-type]


async def test_the_first_key_of_a_workspace_is_its_admin_and_later_ones_are_members(
    store: Store,
) -> None:
    first, second = await store.register_keys([new("a-1", "team"), new("a-2", "team")])
    assert (first.role, second.role) == ("admin", "member")
    assert first.workspace == second.workspace and first.workspace_name == "team"
    third = (await store.register_keys([new("a-3", "team", role="admin", hint="…wxyz")]))[0]
    assert (third.role, third.hint, third.source) == ("admin", "…wxyz", "created")
    again = (await store.register_keys([new("a-1", "team", role="member")]))[0]
    assert again == first  # registering a stored key changes nothing


async def test_keys_are_listed_per_workspace_and_revoked_ones_only_when_asked(
    store: Store, spaces: Workspaces
) -> None:
    admin, member = await store.register_keys([new("b-1", spaces.ws), new("b-2", spaces.ws)])
    listed = await store.list_keys(spaces.ws)
    assert [k.id for k in listed][-2:] == [admin.id, member.id]
    assert all(k.workspace == spaces.ws for k in listed)
    assert {k.workspace for k in await store.list_keys(None)} == {spaces.ws, spaces.other}
    revoked = await store.revoke_key(spaces.ws, member.id)
    assert revoked.revoked_at is not None
    assert member.id not in [k.id for k in await store.list_keys(spaces.ws)]
    assert member.id in [k.id for k in await store.list_keys(spaces.ws, revoked=True)]
    assert await store.workspace_for_key("b-2") is None
    assert await store.grants_for(["b-1", "b-2", "nobody"]) == {
        "b-1": KeyGrant(admin.id, spaces.ws, admin.role, False)
    }
    # Revoked stays revoked, even when the same key is registered again (--api-key).
    assert (await store.register_keys([new("b-2", spaces.ws)]))[0].revoked_at is not None
    assert (await store.revoke_key(None, member.id)).revoked_at == revoked.revoked_at


async def test_another_workspaces_key_cannot_be_revoked_and_is_reported_not_found(
    store: Store, spaces: Workspaces
) -> None:
    (theirs,) = await store.register_keys([new("c-1", spaces.other)])
    for key_id in (theirs.id, 10**9, 2**70):
        with pytest.raises(NotFoundError, match="not found in this workspace"):
            await store.revoke_key(spaces.ws, key_id)
    assert await store.workspace_for_key("c-1") == spaces.other


async def test_the_last_admin_key_of_a_workspace_cannot_be_revoked(store: Store) -> None:
    admin, member = await store.register_keys([new("d-1", "solo"), new("d-2", "solo")])
    with pytest.raises(KeyRefused, match="last admin key of workspace 'solo'"):
        await store.revoke_key(admin.workspace, admin.id)
    (second,) = await store.register_keys([new("d-3", "solo", role="admin")])
    # Two revocations at once of the two admins: one wins, the other is refused.
    outcomes = await asyncio.gather(
        store.revoke_key(None, admin.id), store.revoke_key(None, second.id), return_exceptions=True
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ApiKey", "KeyRefused"]
    active = await store.list_keys(admin.workspace)
    assert sorted(k.role for k in active) == ["admin", "member"]
    assert member.id in [k.id for k in active]


async def test_last_use_is_recorded_forward_only_and_fills_a_missing_hint(
    store: Store, spaces: Workspaces
) -> None:
    (key,) = await store.register_keys([new("e-1", spaces.ws)])
    assert key.last_used_at is None and key.hint == ""
    await store.touch_keys([(key.id, 200.0, "…e001")])
    await store.touch_keys([(key.id, 100.0, "…zzzz")])
    (found,) = [k for k in await store.list_keys(spaces.ws) if k.id == key.id]
    assert (found.last_used_at, found.hint) == (200.0, "…e001")


async def test_digests_from_before_are_rehashed_once_and_keep_resolving(
    make_store: tuple[str, object],
) -> None:
    from .conftest import open_store

    opened = open_store(make_store)
    await opened.start()
    try:
        await opened.add_keys([("default", "plain-digest")])
        assert await opened.upgrade_key_hashes(lambda old: "wrapped:" + old) == 0
        await _mark_legacy(make_store, "plain-digest")
        assert await opened.upgrade_key_hashes(lambda old: "wrapped:" + old) == 1
        assert await opened.upgrade_key_hashes(lambda old: "again:" + old) == 0
        assert await opened.workspace_for_key("plain-digest") is None
        assert await opened.workspace_for_key("wrapped:plain-digest") is not None
    finally:
        await opened.close()


async def _mark_legacy(where: tuple[str, object], digest: str) -> None:
    kind, target = where
    sql = "UPDATE api_keys SET hash_kind = 'sha256' WHERE key_hash = "
    if kind == "sqlite":
        with sqlite3.connect(str(target)) as conn:
            conn.execute(sql + "?", (digest,))
    else:
        conn = await asyncpg.connect(str(target))
        try:
            await conn.execute(sql + "$1", digest)
        finally:
            await conn.close()


async def test_a_secret_survives_a_restart_of_the_store(make_store: tuple[str, object]) -> None:
    from .conftest import open_store

    first = open_store(make_store)
    await first.start()
    secret = await first.shared_secret("api-key-hmac")
    await first.close()
    second = open_store(make_store)
    await second.start()
    try:
        assert await second.shared_secret("api-key-hmac") == secret
    finally:
        await second.close()
