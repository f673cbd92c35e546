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
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.store.drivers._pg_relay import PgRelay
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


class Seen(list[tuple[int, str, dict[str, Any]]]):
    """Publications a relay handed its hub, and an event per arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    async def arrived(self) -> None:
        with anyio.fail_after(5):
            while not self:
                await self.changed.wait()
                self.changed.clear()


def listen(server: TestServer) -> Seen:
    """What the server's relay hands its hub from other processes, recorded on the way."""
    relay = server.app[HUB].relay
    assert isinstance(relay, PgRelay)
    seen = Seen()
    deliver = relay.deliver

    def recording(workspace: int, channel: str, data: dict[str, Any]) -> object:
        seen.append((workspace, channel, data))
        seen.changed.set()
        return deliver(workspace, channel, data)

    relay.deliver = recording
    return seen


async def test_a_publication_reaches_the_other_process_and_does_not_echo_back(
    two: list[TestServer],
) -> None:
    one, other = two
    seen_one, seen_other = listen(one), listen(other)
    one.app[HUB].publish(1, "workflows:1:run:a", {"result": "hello"})
    await seen_other.arrived()
    # A marker sent back: NOTIFYs arrive in commit order, so a stray echo of "hello" (its own,
    # or the other's) would reach `one` before the marker does.
    other.app[HUB].publish(1, "workflows:1:run:b", {"result": "marker"})
    await seen_one.arrived()
    assert seen_one == [(1, "workflows:1:run:b", {"result": "marker"})]  # no "hello": its own
    assert seen_other == [(1, "workflows:1:run:a", {"result": "hello"})]  # hub had delivered it


async def test_a_publication_larger_than_a_notification_goes_through_the_table(
    two: list[TestServer],
) -> None:
    one, other = two
    seen = listen(other)
    big = {"result": "x" * 50_000}
    one.app[HUB].publish(2, "workflows:2:run:b", big)
    await seen.arrived()
    assert seen == [(2, "workflows:2:run:b", big)]


async def test_the_relay_listens_again_after_its_connection_is_cut(
    two: list[TestServer], postgres_url: str
) -> None:
    one, other = two
    seen = listen(other)
    relay = other.app[HUB].relay
    assert isinstance(relay, PgRelay)
    listener = relay._listener
    assert listener is not None
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    finally:
        await admin.close()
    for _ in range(200):  # the relay waits a second before it reconnects
        if relay._listener not in (listener, None):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the relay did not reconnect within 10 s")
    one.app[HUB].publish(3, "workflows:3:run:c", {"after": "reconnect"})
    await seen.arrived()
    assert seen == [(3, "workflows:3:run:c", {"after": "reconnect"})]


async def test_every_process_signs_websocket_tokens_with_the_same_secret(
    two: list[TestServer],
) -> None:
    one, other = two
    token, _ = one.app[HUB].signer.issue(7, "workflows:7:run:z", 60)
    assert other.app[HUB].signer.verify(token) == (7, "workflows:7:run:z")
