"""The dashboard's queries answer the same on PostgreSQL as on SQLite, for the same log."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import (
    ModelPrice,
    NewVersion,
    PageRequest,
    RequestQuery,
    RequestRow,
    Store,
)

pytestmark = pytest.mark.anyio

WORDS = ("engine", "Lovelace", "loom", "punch card", "Babbage", "difference", "100%", "a_b")


def conversation(rng: random.Random) -> str:
    text = " ".join(rng.sample(WORDS, 3))
    return msgspec.json.encode(
        {
            "prompt_template": {
                "type": "chat",
                "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
            }
        }
    ).decode()


def log(count: int) -> list[RequestRow]:
    rng = random.Random(3)
    rows = []
    for n in range(count):
        provider = rng.choice(("openai", "anthropic"))
        rows.append(
            RequestRow(
                kind="track",
                client_request_id=f"c{n}",
                provider=provider,
                model=rng.choice(("m1", "m2", "m3")),
                function_name=f"{provider}.chat",
                start_time=1_700_000_000.0 + n * 60,
                end_time=1_700_000_000.0 + n * 60 + rng.random() * 3,
                body="{}",
                blueprint=conversation(rng),
                prompt_name=rng.choice(("greet", "summarise", None)),
                prompt_version=rng.choice((1, 2)),
                tags=msgspec.json.encode(rng.sample(("a", "b", "c"), rng.randint(0, 2))).decode(),
                status=rng.choice(("SUCCESS",) * 9 + ("ERROR",)),
                input_tokens=rng.randint(1, 100),
                output_tokens=rng.randint(1, 100),
                price=rng.choice((0.0, 0.01)),
                metadata=msgspec.json.encode({"user": rng.choice(("ada", "alan"))}).decode(),
            )
        )
    return rows


@pytest.fixture
async def stores(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[tuple[int, Store]]]:
    both: list[Store] = [
        sqlite_store(tmp_path / "s.db"),
        postgres_store(postgres_url),
    ]
    found = []
    for store in both:
        await store.start()
        await store.add_keys([("default", hash_key("k"))])
        workspace = await store.workspace_for_key(hash_key("k"))
        assert workspace is not None
        for name in ("greet", "summarise"):
            for _ in range(2):
                await store.publish(
                    workspace,
                    NewVersion(
                        prompt_name=name,
                        prompt_template={"type": "chat", "messages": []},
                        metadata={},
                        release_labels=["prod"],
                    ),
                )
        await store.ingest(workspace, log(300))
        await store.set_model_price(workspace, ModelPrice("m1", 1.0, 2.0))
        found.append((workspace, store))
    yield found
    for store in both:
        await store.close()


QUERIES = [
    RequestQuery(),
    RequestQuery(prompt_name="greet"),
    RequestQuery(prompt_name="greet", prompt_version=2),
    RequestQuery(tag="b"),
    RequestQuery(provider="anthropic", model="m2"),
    RequestQuery(status="ERROR"),
    RequestQuery(since=1_700_003_000.0, until=1_700_009_000.0),
    RequestQuery(text="lovelace"),
    RequestQuery(text="PUNCH card", tag="a"),
    RequestQuery(text="100%"),
    RequestQuery(text="a_b"),
    RequestQuery(text="nowhere"),
    RequestQuery(model="no such model"),
    RequestQuery(meta_key="user", meta_value="ada", prompt_name="greet"),
    RequestQuery(since=1_700_003_030.0, tag="a", status="SUCCESS"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[13:60])
async def test_every_filter_finds_the_same_requests_on_both_stores(
    stores: list[tuple[int, Store]], query: RequestQuery
) -> None:
    answers = []
    for workspace, store in stores:
        found = []
        for sort in ("time", "latency", "tokens", "cost"):
            page = await store.request_page(
                workspace, query, PageRequest(sort=sort, limit=20), costs={"m1": (1.0, 2.0)}
            )
            following = await store.request_page(
                workspace,
                query,
                PageRequest(sort=sort, limit=20, after=page.after),
                costs={"m1": (1.0, 2.0)},
            )
            found.append([i["client_request_id"] for i in page.items + following.items])
        stats = await store.request_stats(workspace, query)
        answers.append(
            (found, page.total, stats.requests, stats.errors, stats.input_tokens, stats.p95)
        )
    assert answers[0] == answers[1]
    assert answers[0][1] > 0 or query.text == "nowhere" or query.model == "no such model"


async def test_facets_series_usage_and_templates_are_the_same_on_both_stores(
    stores: list[tuple[int, Store]],
) -> None:
    answers = []
    for workspace, store in stores:
        dash = store
        series = await dash.request_series(
            workspace, since=1_700_000_000.0, until=1_700_018_000.0, bucket=3600.0
        )
        usage = await dash.usage_by_model(workspace)
        summaries, total = await dash.template_summaries(workspace, limit=10, offset=0)
        detail = await dash.template_detail(workspace, "greet")
        answers.append(
            {
                "facets": await dash.request_facets(workspace),
                "series": [
                    (b.start, b.requests, b.errors, round(b.mean_latency, 9),
                     round(b.max_latency, 9), b.p50 and round(b.p50, 9)) for b in series
                ],
                "prompts": [
                    (m.prompt_name, m.version, m.stats.requests, m.stats.errors)
                    for m in await dash.prompt_metrics(workspace, since=1_700_000_000.0,
                                                       until=None)
                ],
                "usage": sorted(
                    (u.model, u.requests, u.input_tokens, u.output_tokens,
                     round(u.logged_price, 9), u.unpriced_input_tokens, u.unpriced_output_tokens)
                    for u in usage
                ),
                "templates": ([(t.name, t.latest_version, t.versions, t.labels) for t in summaries],
                              total),
                "versions": [(v.number, v.labels) for v in detail.versions],
                "prices": await dash.model_prices(workspace),
                "workspace": await dash.workspace_name(workspace),
            }
        )  # fmt: skip
    sqlite, postgres = answers
    assert sqlite == postgres
    assert sqlite["facets"]["tags"] == ["a", "b", "c"]
    assert sum(b[1] for b in sqlite["series"]) == 300
