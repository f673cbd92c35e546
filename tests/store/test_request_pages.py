"""The request log at scale on both stores: keyset pages in every sort, capped counts, totals
and latency percentiles from the rollups, metadata filters, and rollups that follow
``track.prompt`` and ``track.score``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import sqlite_store
from promptrun.server.store.base import (
    Cursor,
    PageRequest,
    RequestPage,
    RequestQuery,
    SortKey,
    Store,
    TrackCall,
)
from promptrun.server.store.drivers.sqlite import SQLiteDriver
from promptrun.server.store.queries.log_filter import CAP, TEXT_CAP

from ._records import row, version
from .conftest import Workspaces, open_store

pytestmark = pytest.mark.anyio
T0 = 1_700_000_000.0  # 22:13:20 UTC: not on an hour
HOUR = 3600.0
COSTS = {"m1": (1.0, 2.0)}  # m2 has no price


def blueprint(text: str) -> str:
    return msgspec.json.encode(
        {"prompt_template": {"type": "chat", "messages": [{"role": "user", "content": text}]}}
    ).decode()


def log(count: int) -> list[Any]:
    """Requests 10 minutes apart, latencies 0.1 s to ``count`` / 10 s, varied tokens."""
    return [
        row(
            f"r{n}",
            start_time=T0 + n * 600,
            end_time=T0 + n * 600 + 0.1 * ((n * 7) % count + 1),
            model=("m1", "m2")[n % 2],
            status="ERROR" if n % 5 == 0 else "SUCCESS",
            input_tokens=(n * 13) % 17,
            output_tokens=n % 3,
            price=0.5 if n % 4 == 0 else 0.0,
            tags='["a", "b"]' if n % 3 == 0 else '["c"]',
            metadata=f'{{"user": "u{n % 4}", "n": {n}}}',
            blueprint=blueprint(f"Hello word{n} from Lovelace"),
        )
        for n in range(count)
    ]


@pytest.fixture
async def logged(store: Store, spaces: Workspaces) -> Store:
    await store.ingest(spaces.ws, log(30))
    await store.ingest(spaces.other, [row("theirs", blueprint=blueprint("Lovelace"))])
    return store


@pytest.fixture
async def held(make_store: tuple[str, object]) -> AsyncIterator[tuple[Store, int]]:
    """A store (and its workspace) whose derived data waits to be asked for: on SQLite the
    rollups, tag and metadata rows and text index are filled only by ``caught_up``."""
    kind, target = make_store
    store = (
        sqlite_store(Path(str(target)), catch_up_after=None)
        if kind == "sqlite"
        else open_store(make_store)
    )
    await store.start()
    await store.add_keys([("default", hash_key("k-default"))])
    workspace = await store.workspace_for_key(hash_key("k-default"))
    assert workspace is not None
    yield store, workspace
    await store.close()


async def caught_up(store: Store) -> None:
    if isinstance(store.driver, SQLiteDriver):  # PostgreSQL derives as it stores
        await store.driver.catch_up()


async def walk(
    store: Store, ws: int, query: RequestQuery, sort: SortKey, descending: bool, size: int
) -> tuple[list[str], list[RequestPage]]:
    """Every match, following ``after`` cursors page by page."""
    pages = [
        await store.request_page(
            ws, query, PageRequest(sort=sort, descending=descending, limit=size), costs=COSTS
        )
    ]
    while pages[-1].after is not None:
        request = PageRequest(sort=sort, descending=descending, limit=size, after=pages[-1].after)
        pages.append(await store.request_page(ws, query, request, costs=COSTS))
    return [i["client_request_id"] for p in pages for i in p.items], pages


def expected_order(sort: SortKey, descending: bool, count: int = 30) -> list[str]:
    def key(n: int) -> tuple[float, int]:
        r = log(count)[n]
        values = {
            "time": r.start_time,
            "latency": r.end_time - r.start_time,
            "tokens": r.input_tokens + r.output_tokens,
            # As the store computes it: tokens times the price of one token.
            "cost": r.price if r.price > 0 else
            r.input_tokens * (1.0 / 1e6) + r.output_tokens * (2.0 / 1e6) if r.model == "m1"
            else -1,
        }  # fmt: skip
        return values[sort], n + 1  # ids follow the log's order

    ordered = sorted(range(count), key=key, reverse=descending)
    return [f"r{n}" for n in ordered]


@pytest.mark.parametrize("sort", ["time", "latency", "tokens", "cost"])
@pytest.mark.parametrize("descending", [True, False])
async def test_pages_follow_one_another_in_every_sort_without_gaps_or_repeats(
    logged: Store, spaces: Workspaces, sort: SortKey, descending: bool
) -> None:
    found, pages = await walk(logged, spaces.ws, RequestQuery(), sort, descending, 7)
    assert found == expected_order(sort, descending)
    assert [len(p.items) for p in pages] == [7, 7, 7, 7, 2]
    assert pages[0].before is None and pages[-1].after is None
    assert all(p.sort == sort and p.notice is None and p.total == 30 for p in pages)
    # And back: the page before the third is the second.
    back = await logged.request_page(
        spaces.ws,
        RequestQuery(),
        PageRequest(sort=sort, descending=descending, limit=7, before=pages[2].before),
        costs=COSTS,
    )
    assert back.items == pages[1].items
    assert back.before == pages[1].before and back.after == pages[1].after


@pytest.mark.parametrize("sort", ["time", "latency", "tokens", "cost"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize(
    "query", [RequestQuery(text="lovelace"), RequestQuery(meta_key="user")], ids=["text", "meta"]
)
async def test_matches_no_rollup_counts_page_in_every_sort_and_keep_their_count(
    logged: Store, spaces: Workspaces, sort: SortKey, descending: bool, query: RequestQuery
) -> None:
    # Every request matches; counted and paged from the matches, not from the rollups.
    found, pages = await walk(logged, spaces.ws, query, sort, descending, 7)
    assert found == expected_order(sort, descending)
    assert all(p.total == 30 and p.total_exact and p.notice is None for p in pages)
    back = await logged.request_page(
        spaces.ws,
        query,
        PageRequest(sort=sort, descending=descending, limit=7, before=pages[2].before),
        costs=COSTS,
    )
    assert back.items == pages[1].items and back.total == 30
    # Past the last match: an empty page that still says how many match.
    end = -(10**12) if descending else 10**12
    past = await logged.request_page(
        spaces.ws,
        query,
        PageRequest(sort=sort, descending=descending, limit=7, after=Cursor(end, 0)),
        costs=COSTS,
    )
    assert past.items == [] and past.total == 30 and past.total_exact


async def test_a_filtered_list_pages_through_its_matches_only(
    logged: Store, spaces: Workspaces
) -> None:
    query = RequestQuery(model="m1", status="SUCCESS")
    found, _ = await walk(logged, spaces.ws, query, "latency", True, 4)
    assert found == [
        c for c in expected_order("latency", True) if int(c[1:]) % 2 == 0 and int(c[1:]) % 5
    ]


async def test_metadata_logged_with_a_request_or_tracked_later_is_filterable(
    logged: Store, spaces: Workspaces
) -> None:
    await logged.track(
        spaces.ws,
        TrackCall(endpoint="metadata", request_ref="r7", values={"team": "blue", "user": "ada"}),
    )

    async def found(**filters: Any) -> list[str]:
        page = await logged.request_page(
            spaces.ws, RequestQuery(**filters), PageRequest(limit=50), costs={}
        )
        return sorted((i["client_request_id"] for i in page.items), key=lambda c: int(c[1:]))

    assert await found(meta_key="team") == ["r7"]
    assert await found(meta_key="team", meta_value="blue") == ["r7"]
    assert await found(meta_key="team", meta_value="red") == []
    # track.metadata replaced the logged value: the request is found by its new one only.
    assert await found(meta_key="user", meta_value="ada") == ["r7"]
    assert await found(meta_key="user", meta_value="u3") == [
        f"r{n}" for n in range(30) if n % 4 == 3 and n != 7
    ]
    # Only string values are kept for the filter; the stored metadata is unchanged.
    assert await found(meta_key="n", meta_value="5") == []
    assert (await logged.get_request(spaces.ws, "r7"))["metadata"] == {
        "user": "ada",
        "n": 7,
        "team": "blue",
    }
    assert await found(meta_key="user", meta_value="u1", model="m2") == [
        f"r{n}" for n in range(30) if n % 4 == 1
    ]


async def test_a_text_search_finds_the_same_before_and_after_the_index_catches_up(
    logged: Store, spaces: Workspaces
) -> None:
    async def found(text: str, **filters: Any) -> list[str]:
        page = await logged.request_page(
            spaces.ws, RequestQuery(text=text, **filters), PageRequest(limit=50), costs={}
        )
        return [i["client_request_id"] for i in page.items]

    queries = [("lovelace", {}), ("WORD2", {}), ("word2", {"model": "m1"}), ("d1 f", {}),
               ("wo", {"tag": "a"}), ("nowhere", {})]  # fmt: skip
    before = [await found(text, **filters) for text, filters in queries]
    if isinstance(logged.driver, SQLiteDriver):  # PostgreSQL indexes as it stores
        await logged.driver.catch_up()
    after = [await found(text, **filters) for text, filters in queries]
    assert before == after
    assert after[0] == [f"r{n}" for n in reversed(range(30))]
    assert after[1] == ["r29", "r28", "r27", "r26", "r25", "r24", "r23", "r22", "r21", "r20", "r2"]
    assert after[2] == ["r28", "r26", "r24", "r22", "r20", "r2"]
    assert after[3] == ["r1"]  # "word1 from": across a word's end
    assert after[4] == [f"r{n}" for n in reversed(range(30)) if n % 3 == 0]
    assert after[5] == []


async def test_totals_percentiles_and_scores_add_up_the_matches(
    logged: Store, spaces: Workspaces
) -> None:
    rows = log(30)
    await logged.track(
        spaces.ws, TrackCall(endpoint="score", request_ref="r3", values={"score": 80})
    )
    await logged.track(
        spaces.ws, TrackCall(endpoint="score", request_ref="r9", values={"score": 40})
    )
    stats = await logged.request_stats(spaces.ws, RequestQuery())
    assert (stats.requests, stats.exact, stats.errors) == (30, True, 6)
    assert stats.input_tokens == sum(r.input_tokens for r in rows)
    assert stats.mean_score == 60.0
    latencies = sorted(r.end_time - r.start_time for r in rows)
    assert stats.max_latency == pytest.approx(latencies[-1])
    for q, exact in ((0.5, latencies[14]), (0.95, latencies[28]), (0.99, latencies[29])):
        found = getattr(stats, f"p{round(q * 100)}")
        assert found == pytest.approx(exact, rel=0.13)
    by_model = {u.model: u for u in stats.usage}
    assert by_model["m1"].logged_price == pytest.approx(0.5 * 8)  # r0, r4, ..., r28: m1
    assert by_model["m2"].unpriced_output_tokens == sum(
        r.output_tokens for r in rows if r.model == "m2" and r.price == 0
    )
    # A filter no rollup answers (text) is added up from the matching rows themselves.
    text = await logged.request_stats(spaces.ws, RequestQuery(text="lovelace", model="m1"))
    assert (text.requests, text.source, text.mean_score) == (15, "rows", None)
    assert text.input_tokens == sum(r.input_tokens for r in rows if r.model == "m1")


async def test_a_time_range_counts_its_partial_hours_from_the_log(
    logged: Store, spaces: Workspaces
) -> None:
    rows = log(30)
    since, until = T0 + 1234.0, T0 + 5 * HOUR - 17.0  # neither on an hour
    inside = [r for r in rows if since <= r.start_time < until]
    stats = await logged.request_stats(spaces.ws, RequestQuery(since=since, until=until))
    assert stats.requests == len(inside) and stats.source == "rollups"
    assert stats.output_tokens == sum(r.output_tokens for r in inside)
    tagged = await logged.request_stats(spaces.ws, RequestQuery(since=since, tag="c"))
    assert tagged.requests == sum(1 for r in rows if r.start_time >= since and "c" in r.tags)
    prompt = await logged.request_stats(spaces.ws, RequestQuery(prompt_name="greet"))
    assert prompt.requests == 0


async def test_track_prompt_and_score_move_a_request_in_the_rollups(
    logged: Store, spaces: Workspaces
) -> None:
    await logged.publish(spaces.ws, version("greet"))
    await logged.publish(spaces.ws, version("greet", metadata={"edit": 2}))  # new content
    for ref in ("r1", "r2"):
        await logged.track(
            spaces.ws,
            TrackCall(endpoint="prompt", request_ref=ref, values={"prompt_name": "greet"}),
        )
    await logged.track(
        spaces.ws,
        TrackCall(
            endpoint="prompt", request_ref="r2", values={"prompt_name": "greet", "version": 1}
        ),
    )
    await logged.track(
        spaces.ws, TrackCall(endpoint="score", request_ref="r2", values={"score": 10})
    )
    await logged.track(
        spaces.ws, TrackCall(endpoint="score", request_ref="r2", values={"score": 30})
    )
    metrics = await logged.prompt_metrics(spaces.ws, since=T0, until=None)
    assert [(m.prompt_name, m.version, m.stats.requests, m.stats.mean_score) for m in metrics] == [
        ("greet", 2, 1, None),  # as many requests: the newer version first
        ("greet", 1, 1, 30.0),
    ]
    assert (await logged.request_stats(spaces.ws, RequestQuery())).requests == 30
    assert (await logged.request_stats(spaces.ws, RequestQuery(prompt_name="greet"))).requests == 2
    assert (await logged.request_facets(spaces.ws))["prompts"] == ["greet"]


async def test_series_buckets_carry_latency_percentiles_in_hours_and_in_minutes(
    logged: Store, spaces: Workspaces
) -> None:
    start = T0 - T0 % HOUR
    hourly = await logged.request_series(
        spaces.ws, since=start, until=start + 6 * HOUR, bucket=HOUR
    )
    assert sum(b.requests for b in hourly) == 30 and len(hourly) == 6
    busy = [b for b in hourly if b.requests]
    assert all(b.p50 is not None and b.p50 <= b.max_latency for b in busy)
    minutes = await logged.request_series(spaces.ws, since=T0, until=T0 + HOUR, bucket=120.0)
    assert [b.requests for b in minutes] == [1, 0, 0, 0, 0] * 6
    assert minutes[5].p99 == pytest.approx(log(30)[1].end_time - log(30)[1].start_time, rel=0.13)


async def test_every_read_is_the_same_before_and_after_derived_data_catches_up(
    held: tuple[Store, int],
) -> None:
    store, ws = held
    await store.ingest(ws, log(30))
    await store.publish(ws, version("greet"))
    await store.track(
        ws, TrackCall(endpoint="metadata", request_ref="r8", values={"user": "ada", "x": "y"})
    )
    await store.track(
        ws, TrackCall(endpoint="prompt", request_ref="r4", values={"prompt_name": "greet"})
    )
    await store.track(ws, TrackCall(endpoint="score", request_ref="r5", values={"score": 7}))
    queries = [
        RequestQuery(),
        RequestQuery(model="m1", status="SUCCESS"),
        RequestQuery(tag="a"),
        RequestQuery(tag="c", since=T0 + 1234.0),
        RequestQuery(prompt_name="greet"),
        RequestQuery(since=T0 + 1234.0, until=T0 + 4 * HOUR + 7.0),
        RequestQuery(meta_key="user", meta_value="u0"),
        RequestQuery(meta_key="user", meta_value="ada"),
        RequestQuery(meta_key="x"),
        RequestQuery(text="Lovelace", tag="c"),
        RequestQuery(prompt_name="greet", tag="b"),
    ]

    async def answers() -> list[Any]:
        found: list[Any] = []
        for query in queries:
            stats = await store.request_stats(ws, query)
            page = await store.request_page(ws, query, PageRequest(limit=100), costs=COSTS)
            found.append(
                (
                    [i["client_request_id"] for i in page.items],
                    page.total,
                    (stats.requests, stats.errors, stats.input_tokens, stats.mean_score),
                    stats.p95,
                )
            )
        start = T0 - T0 % HOUR
        series = await store.request_series(ws, since=start, until=start + 6 * HOUR, bucket=HOUR)
        metrics = await store.prompt_metrics(ws, since=T0, until=None)
        found.append([(b.requests, b.errors, b.p50) for b in series])
        found.append([(m.prompt_name, m.version, m.stats.requests) for m in metrics])
        found.append(await store.request_facets(ws))
        return found

    before = await answers()
    await caught_up(store)
    assert await answers() == before
    assert before[7][0] == ["r8"] and before[6][0] == [f"r{n}" for n in (28, 24, 20, 16, 12, 4, 0)]


async def test_more_matches_than_the_cap_say_so_and_cost_sorts_fall_back_to_time(
    held: tuple[Store, int],
) -> None:
    store, ws = held
    many = [
        row(
            f"m{n}",
            start_time=T0 + n,
            end_time=T0 + n + 1,
            blueprint=blueprint(f"same {n}"),
            metadata='{"user": "x"}',
            tags='["t1"]' if n % 2 else '["t2"]',
        )
        for n in range(CAP + 5)
    ]
    await store.ingest(ws, many)
    # Many matches: the list walks the time index testing each row (tags, metadata from the
    # log itself while they are not derived yet, then from their own tables).
    for _ in range(2):
        for query, first in (
            (RequestQuery(tag="t1"), [f"m{CAP + 3}", f"m{CAP + 1}", f"m{CAP - 1}"]),
            (
                RequestQuery(meta_key="user", meta_value="x"),
                [f"m{CAP + 4}", f"m{CAP + 3}", f"m{CAP + 2}"],
            ),
        ):
            page = await store.request_page(ws, query, PageRequest(limit=3), costs={})
            assert [i["client_request_id"] for i in page.items] == first
        await caught_up(store)
    spaces = Workspaces(ws, ws)
    text = RequestQuery(text="same")
    page = await store.request_page(spaces.ws, text, PageRequest(sort="cost", limit=3), costs={})
    assert (page.total, page.total_exact, page.sort) == (TEXT_CAP + 1, False, "time")
    assert page.notice is not None and "1,000" in page.notice
    assert [i["client_request_id"] for i in page.items] == [
        f"m{CAP + 4}",
        f"m{CAP + 3}",
        f"m{CAP + 2}",
    ]
    stats = await store.request_stats(spaces.ws, text)
    assert (stats.requests, stats.exact, stats.source) == (TEXT_CAP + 1, False, "count")
    meta = await store.request_stats(spaces.ws, RequestQuery(meta_key="user"))
    assert (meta.requests, meta.exact, meta.source) == (CAP + 1, False, "count")
    # The rollups count exactly however many there are.
    every = await store.request_stats(spaces.ws, RequestQuery())
    assert (every.requests, every.exact) == (CAP + 5, True)
    narrow = await store.request_page(
        spaces.ws, RequestQuery(text="same 9999"), PageRequest(sort="cost", limit=3), costs={}
    )
    assert (narrow.sort, narrow.notice, narrow.total) == ("cost", None, 1)


async def test_a_text_search_counts_to_its_lower_cap_and_pages_through_every_match(
    store: Store, spaces: Workspaces
) -> None:
    many = TEXT_CAP + 7
    await store.ingest(
        spaces.ws,
        [
            row(
                f"t{n}",
                start_time=T0 + n,
                end_time=T0 + n + 1 + n % 5,
                blueprint=blueprint(f"needle {n}"),
                metadata='{"user": "x"}',
            )
            for n in range(many)
        ],
    )
    await caught_up(store)
    text = RequestQuery(text="needle")
    everyone = [f"t{n}" for n in reversed(range(many))]
    found, pages = await walk(store, spaces.ws, text, "time", True, 150)
    assert found == everyone  # every match, newest first, though the count stops at the cap
    assert all((p.total, p.total_exact) == (TEXT_CAP + 1, False) for p in pages)
    assert len(pages) == 7 and pages[-1].after is None
    back = await store.request_page(
        spaces.ws, text, PageRequest(limit=150, before=pages[-1].before), costs=COSTS
    )
    assert back.items == pages[-2].items
    by_latency, sorted_pages = await walk(store, spaces.ws, text, "latency", True, 400)
    if isinstance(store.driver, SQLiteDriver):  # its text index is apart: by time, said so
        assert sorted_pages[0].sort == "time" and by_latency == everyone
    else:
        slowest = sorted(everyone, key=lambda i: (int(i[1:]) % 5, int(i[1:])), reverse=True)
        assert sorted_pages[0].sort == "latency" and by_latency == slowest
    stats = await store.request_stats(spaces.ws, text)
    assert (stats.requests, stats.exact) == (TEXT_CAP + 1, False)
    # Other filters still count to CAP; a text search matching at most TEXT_CAP is exact.
    meta = await store.request_stats(spaces.ws, RequestQuery(meta_key="user", meta_value="x"))
    assert (meta.requests, meta.exact) == (many, True)
    few = RequestQuery(text="needle", since=T0 + many - TEXT_CAP)
    page = await store.request_page(spaces.ws, few, PageRequest(sort="cost"), costs=COSTS)
    assert (page.total, page.total_exact, page.sort, page.notice) == (TEXT_CAP, True, "cost", None)
    assert (await store.request_stats(spaces.ws, few)).requests == TEXT_CAP


async def test_a_metadata_filter_counts_sums_and_sorts_its_requests_as_they_are_now(
    held: tuple[Store, int],
) -> None:
    # The filter's rows carry a copy of each request's summary: track.score after and
    # before track.metadata, and another workspace's equal metadata, must all show.
    store, ws = held
    await store.add_keys([("other", hash_key("k-other"))])
    other = await store.workspace_for_key(hash_key("k-other"))
    assert other is not None
    await store.ingest(ws, log(30))
    await store.ingest(other, [row("theirs", metadata='{"user": "u1"}', input_tokens=1000)])
    await store.track(ws, TrackCall(endpoint="score", request_ref="r5", values={"score": 7}))
    await store.track(ws, TrackCall(endpoint="score", request_ref="r9", values={"score": 3}))
    await store.track(ws, TrackCall(endpoint="metadata", request_ref="r9", values={"team": "x"}))
    await store.track(ws, TrackCall(endpoint="score", request_ref="r9", values={"score": 4}))
    rows = {r.client_request_id: r for r in log(30)}
    u1 = [f"r{n}" for n in range(1, 30, 4)]

    def newest(ids: list[str], key: Any) -> list[str]:
        return sorted(ids, key=lambda i: (key(rows[i]), int(i[1:])), reverse=True)

    async def check() -> None:
        query = RequestQuery(meta_key="user", meta_value="u1")
        stats = await store.request_stats(ws, query)
        assert (stats.requests, stats.errors, stats.mean_score, stats.exact) == (8, 2, 5.5, True)
        assert stats.input_tokens == sum(rows[i].input_tokens for i in u1)
        assert stats.max_latency == pytest.approx(
            max(rows[i].end_time - rows[i].start_time for i in u1)
        )
        assert (await store.request_stats(other, query)).input_tokens == 1000
        assert (await store.request_stats(ws, RequestQuery(meta_key="team"))).mean_score == 4.0
        keys = {
            "time": lambda r: r.start_time,
            "latency": lambda r: r.end_time - r.start_time,
            "tokens": lambda r: r.input_tokens + r.output_tokens,
        }
        for sort, key in keys.items():
            found, pages = await walk(store, ws, query, sort, True, 3)
            assert found == newest(u1, key)
            assert (pages[0].total, pages[0].total_exact) == (8, True)
        later = RequestQuery(meta_key="user", meta_value="u1", since=T0 + 10 * 600)
        page = await store.request_page(ws, later, PageRequest(), costs=COSTS)
        assert [i["client_request_id"] for i in page.items] == newest(u1[3:], keys["time"])
        assert (await store.request_stats(ws, later)).requests == 5

    await check()
    await caught_up(store)
    await check()
