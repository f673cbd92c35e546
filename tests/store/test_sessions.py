"""Dashboard sessions and sign-in limits, on both stores."""

from __future__ import annotations

import time

import pytest

from promptrun.server.store.base import NewKey, SigninPolicy, Store

from .conftest import Workspaces

pytestmark = pytest.mark.anyio

HOUR = 3600.0


async def key_in(store: Store, workspace: int, digest: str) -> int:
    (key,) = await store.register_keys([NewKey(key_hash=digest, workspace=workspace, name="k")])
    return key.id


async def test_a_session_reads_back_with_its_keys_workspace_and_role_until_it_ends(
    store: Store, spaces: Workspaces
) -> None:
    key_id = await key_in(store, spaces.ws, "s-1")
    await store.create_session("sess-a", key_id, "csrf-a", expires_at=time.time() + HOUR, idle=HOUR)
    found = await store.get_session("sess-a", idle=HOUR)
    assert found is not None
    assert (found.key_id, found.workspace, found.workspace_name, found.csrf_token) == (
        key_id, spaces.ws, "default", "csrf-a",
    )  # fmt: skip
    assert found.role == "member"  # the fixture's key is the workspace's admin
    assert await store.get_session("sess-b", idle=HOUR) is None
    await store.end_session("sess-a")
    assert await store.get_session("sess-a", idle=HOUR) is None


async def test_a_session_expires_when_idle_or_past_its_end_and_touching_it_keeps_it(
    store: Store, spaces: Workspaces
) -> None:
    key_id = await key_in(store, spaces.ws, "s-2")
    now = time.time()
    await store.create_session("over", key_id, "c", expires_at=now - 1, idle=HOUR)
    assert await store.get_session("over", idle=HOUR) is None
    await store.create_session("idle", key_id, "c", expires_at=now + HOUR, idle=HOUR)
    assert await store.get_session("idle", idle=HOUR) is not None
    assert await store.get_session("idle", idle=-1.0) is None  # idle since before "now - idle"
    await store.touch_session("idle")
    found = await store.get_session("idle", idle=HOUR)
    assert found is not None and found.seen_at >= now


async def test_revoking_a_key_ends_its_sessions(store: Store, spaces: Workspaces) -> None:
    key_id = await key_in(store, spaces.ws, "s-3")
    await store.create_session("mine", key_id, "c", expires_at=time.time() + HOUR, idle=HOUR)
    await store.revoke_key(spaces.ws, key_id)
    assert await store.get_session("mine", idle=HOUR) is None


async def test_failed_sign_ins_wait_longer_and_longer_after_the_free_ones(store: Store) -> None:
    policy = SigninPolicy(free=3, max_wait=5.0, window=HOUR)
    subjects = ["ip:192.0.2.1", "key:abc"]
    waits = [await store.signin_failed(subjects, policy) for _ in range(6)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 5.0]
    assert 4.0 < await store.signin_wait(["ip:192.0.2.1"]) <= 5.0
    assert 4.0 < await store.signin_wait(["key:abc", "ip:198.51.100.7"]) <= 5.0
    assert await store.signin_wait(["ip:198.51.100.7"]) == 0.0
    assert await store.signin_wait(["ip:\x00"]) == 0.0


async def test_failures_older_than_the_window_are_forgotten(store: Store) -> None:
    remember = SigninPolicy(free=1, max_wait=60.0, window=HOUR)
    assert await store.signin_failed(["ip:a"], remember) == 1.0
    assert await store.signin_failed(["ip:a"], remember) == 2.0
    forget = SigninPolicy(free=1, max_wait=60.0, window=-1.0)  # everything is older
    assert await store.signin_failed(["ip:a"], forget) == 1.0
