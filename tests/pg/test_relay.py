"""Websocket publications between server processes on one database (LISTEN/NOTIFY).

Two applications in this process, each with its own store and relay, stand in for two server
processes: nothing in-process connects them but the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestServer

from promptrun.server._state import STORE
from promptrun.server.app import ServerConfig, create_app
from promptrun.server.store.postgres import PostgresStore
from promptrun.server.ws import HUB

pytestmark = pytest.mark.anyio


@pytest.fixture
async def two(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[TestServer]]:
    config = ServerConfig(
        db_path=tmp_path / "unused.db",
        database_url=postgres_url,
        api_keys=("pl_relay_key",),
        generate_key=False,
        sandbox=False,
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as one,
        TestServer(create_app(config), host="127.0.0.1", port=0) as other,
    ):
        yield [one, other]


def listen(server: TestServer) -> list[tuple[int, str, dict[str, Any]]]:
    """What the server's hub delivers locally, recorded (its publish still works as usual)."""
    hub = server.app[HUB]
    seen: list[tuple[int, str, dict[str, Any]]] = []
    deliver = hub.deliver

    def recording(workspace: int, channel: str, data: dict[str, Any]) -> int:
        seen.append((workspace, channel, data))
        return deliver(workspace, channel, data)

    hub.deliver = recording  # type: ignore[method-assign]
    return seen


async def arrived(seen: list[Any], count: int = 1) -> None:
    with anyio.fail_after(5):
        while len(seen) < count:
            await asyncio.sleep(0.01)


async def test_a_publication_reaches_the_other_process_once_and_not_its_own_twice(
    two: list[TestServer],
) -> None:
    one, other = two
    seen_one, seen_other = listen(one), listen(other)
    one.app[HUB].publish(1, "workflows:1:run:a", {"result": "hello"})
    await arrived(seen_other)
    await asyncio.sleep(0.1)  # time for a stray echo to come back, if there were one
    assert seen_other == [(1, "workflows:1:run:a", {"result": "hello"})]
    assert seen_one == [(1, "workflows:1:run:a", {"result": "hello"})]


async def test_a_publication_larger_than_a_notification_goes_through_the_table(
    two: list[TestServer],
) -> None:
    one, other = two
    seen = listen(other)
    big = {"result": "x" * 50_000}
    one.app[HUB].publish(2, "workflows:2:run:b", big)
    await arrived(seen)
    assert seen == [(2, "workflows:2:run:b", big)]


async def test_the_relay_listens_again_after_its_connection_is_cut(
    two: list[TestServer],
) -> None:
    one, other = two
    seen = listen(other)
    relay = other.app[HUB].relay
    assert relay is not None
    store = other.app[STORE]
    assert isinstance(store, PostgresStore)
    listener = relay._listener  # type: ignore[attr-defined]
    assert listener is not None
    await store.pool.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    with anyio.fail_after(10):
        while relay._listener is listener or relay._listener is None:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
    one.app[HUB].publish(3, "workflows:3:run:c", {"after": "reconnect"})
    await arrived(seen)
    assert seen == [(3, "workflows:3:run:c", {"after": "reconnect"})]


async def test_every_process_signs_websocket_tokens_with_the_same_secret(
    two: list[TestServer],
) -> None:
    one, other = two
    token, _ = one.app[HUB].signer.issue(7, "workflows:7:run:z", 60)
    assert other.app[HUB].signer.verify(token) == (7, "workflows:7:run:z")
