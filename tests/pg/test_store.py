"""The PostgreSQL driver on its own: several stores (processes) on one database at once.

The store's operations are tested on both drivers in tests/store; here, what only
PostgreSQL does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import postgres_store
from promptrun.server.store.base import (
    NewVersion,
    RequestRow,
    Store,
    TrackCall,
    UnstorableText,
)
from promptrun.server.store.queries.migrate import migrations

from ._cluster import PostgresCluster

MIGRATIONS = migrations("postgres")

pytestmark = pytest.mark.anyio


def row(client_id: str | None = None, **fields: object) -> RequestRow:
    values: dict[str, object] = {
        "kind": "track",
        "client_request_id": client_id,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "function_name": "openai.chat.completions.create",
        "start_time": 1.0,
        "end_time": 2.0,
        "body": "{}",
        "blueprint": '{"text": "hello"}',
        "tags": '["t1"]',
    }
    values.update(fields)
    return RequestRow(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    store = postgres_store(postgres_url)
    await store.start()
    await store.add_keys([("default", hash_key("k"))])
    yield store
    await store.close()


async def workspace_of(store: Store) -> int:
    workspace = await store.workspace_for_key(hash_key("k"))
    assert workspace is not None
    return workspace


async def versions_applied(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def test_stores_starting_together_on_an_empty_database_migrate_it_once(
    postgres_url: str,
) -> None:
    empty_url = postgres_url
    stores = [postgres_store(empty_url, min_connections=1) for _ in range(6)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        await asyncio.gather(*(s.add_keys([("default", hash_key("k"))]) for s in stores))
        assert await versions_applied(empty_url) == list(range(1, len(MIGRATIONS) + 1))
        ids = {await s.workspace_for_key(hash_key("k")) for s in stores}
        assert len(ids) == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_an_unreachable_database_is_a_clear_error_without_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    url = f"postgresql://postgres:hunter2@/nowhere?host={postgres_cluster.sockets}&port=5432"
    with pytest.raises(RuntimeError, match="cannot connect to PostgreSQL") as caught:
        await postgres_store(url).start()
    assert "hunter2" not in str(caught.value)
    assert "postgres:***@" in str(caught.value)


async def test_concurrent_overlapping_batches_from_many_stores_store_each_record_once(
    postgres_url: str,
) -> None:
    stores = [postgres_store(postgres_url, min_connections=1, max_connections=4) for _ in range(4)]
    for s in stores:
        await s.start()
    try:
        await stores[0].add_keys([("default", hash_key("k"))])
        workspace = await workspace_of(stores[0])
        client_ids = [f"r{i}" for i in range(400)]

        async def send(index: int) -> list[tuple[str, str, int | None]]:
            store = stores[index % len(stores)]
            # Every sender sends every record, in its own order: retries through other processes.
            mine = client_ids[index * 37 % 400 :] + client_ids[: index * 37 % 400]
            if index % 2:
                mine.reverse()
            outcome = []
            for start in range(0, len(mine), 50):
                results = await store.ingest(workspace, [row(c) for c in mine[start : start + 50]])
                outcome += [(r.client_request_id, r.status, r.request_id) for r in results]
            return outcome

        outcomes = await asyncio.gather(*(send(i) for i in range(8)))
        stored = [(c, i) for o in outcomes for c, status, i in o if status == "stored"]
        assert sorted(c for c, _ in stored) == sorted(client_ids)  # each stored exactly once
        first = dict(stored)
        for outcome in outcomes:
            for client_id, status, request_id in outcome:
                assert status in ("stored", "duplicate")
                assert request_id == first[client_id]
        _, total = await stores[1].list_requests(workspace, limit=1, offset=0, prompt_name=None)
        assert total == 400
    finally:
        for s in stores:
            await s.close()


async def test_a_track_call_retried_through_two_stores_at_once_applies_once(
    postgres_url: str,
) -> None:
    one, two = postgres_store(postgres_url), postgres_store(postgres_url)
    await one.start()
    await two.start()
    try:
        await one.add_keys([("default", hash_key("k"))])
        workspace = await workspace_of(one)
        await one.ingest(workspace, [row("base")])
        calls = [
            TrackCall(endpoint="score", request_ref="base", values={"score": n, "name": f"s{n}"},
                      client_call_id=f"call{n % 5}")
            for n in range(20)
        ]  # fmt: skip
        results = await asyncio.gather(
            *(store.ingest(workspace, [call]) for call in calls for store in (one, two))
        )
        stored = [r[0].client_request_id for r in results if r[0].status == "stored"]
        assert sorted(stored) == [f"call{n}" for n in range(5)]
        scores = (await two.get_request(workspace, "base"))["scores"]
        assert len(scores) == 5
    finally:
        await one.close()
        await two.close()


async def test_publishing_one_template_from_two_stores_at_once_numbers_every_version(
    postgres_url: str,
) -> None:
    one, two = postgres_store(postgres_url), postgres_store(postgres_url)
    await one.start()
    await two.start()
    try:
        await one.add_keys([("default", hash_key("k"))])
        workspace = await workspace_of(one)

        def new(n: int) -> NewVersion:  # different content: an identical one is unchanged
            return NewVersion(prompt_name="t", prompt_template={"type": "chat", "messages": []},
                              metadata={"n": n}, release_labels=["prod"])  # fmt: skip

        published = await asyncio.gather(
            *((one, two)[n % 2].publish(workspace, new(n)) for n in range(20))
        )
        assert sorted(v.number for v in published) == list(range(1, 21))
        latest = await two.get_version(workspace, "t", label="prod")
        assert latest.number == 20
    finally:
        await one.close()
        await two.close()


async def test_text_with_a_nul_character_is_refused_not_altered(store: Store) -> None:
    workspace = await workspace_of(store)
    (result,) = await store.ingest(workspace, [row("x", model="gpt\x00")])
    assert result.status == "rejected"
    assert "NUL" in (result.error or "")
    (result,) = await store.ingest(workspace, [row("y", tags='["a\\u0000"]')])
    assert result.status == "rejected"
    with pytest.raises(UnstorableText):
        await store.insert_request(workspace, row(None, provider="\x00"))
    (result,) = await store.ingest(workspace, [row("z", tags='["plain \\\\u0000 text"]')])
    assert result.status == "stored"  # an escaped backslash is not a NUL
