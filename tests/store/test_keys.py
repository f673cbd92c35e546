"""Keys and workspaces, on both stores."""

from __future__ import annotations

import asyncio

import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store.base import Store, StoreConfigError

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
