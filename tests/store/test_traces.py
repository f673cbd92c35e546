"""Traces on both stores: spans stored idempotently, summaries kept as spans arrive, reads."""

from __future__ import annotations

import pytest

from promptrun.server.store.base import NotFoundError, Store, TraceQuery

from ._records import row
from ._spans import START, TRACE, span
from .conftest import Workspaces

pytestmark = pytest.mark.anyio
SECOND = 1_000_000_000
OTHER_TRACE = "f" * 32


async def test_children_first_then_the_root_make_one_trace_named_after_its_root(
    store: Store, spaces: Workspaces
) -> None:
    child = span("2", "1", name="fetch", start_ns=START + SECOND, end_ns=START + 2 * SECOND)
    failed = span(
        "3", "1", name="call", status_code="ERROR", status_message="boom",
        start_ns=START + 2 * SECOND, end_ns=START + 5 * SECOND,
    )  # fmt: skip
    assert await store.insert_spans(spaces.ws, [child, failed]) == 2
    (early,), total = await store.list_traces(spaces.ws, TraceQuery(), limit=10, offset=0)
    assert total == 1
    assert (early["name"], early["root_span_id"], early["span_count"]) == ("fetch", None, 2)
    root = span("1", name="checkout", service_name="shop", start_ns=START, end_ns=START + SECOND)
    assert await store.insert_spans(spaces.ws, [root]) == 1
    (trace,), _ = await store.list_traces(spaces.ws, TraceQuery(), limit=10, offset=0)
    assert trace["trace_id"] == TRACE
    assert (trace["name"], trace["service_name"], trace["root_span_id"]) == (
        "checkout",
        "shop",
        "1".rjust(16, "0"),
    )
    assert (trace["span_count"], trace["error_count"], trace["status_code"]) == (3, 1, "UNSET")
    assert trace["start_time_unix_nano"] == START
    assert trace["duration_ms"] == 5000.0
    # A later span that starts earlier than the root does not take its name.
    await store.insert_spans(spaces.ws, [span("4", "1", name="late", start_ns=START - SECOND)])
    (trace,), _ = await store.list_traces(spaces.ws, TraceQuery(), limit=10, offset=0)
    assert (trace["name"], trace["span_count"], trace["duration_ms"]) == ("checkout", 4, 6000.0)


async def test_a_retried_export_stores_nothing_twice(store: Store, spaces: Workspaces) -> None:
    batch = [span("1"), span("2", "1"), span("2", "1", name="repeat in the batch")]
    assert await store.insert_spans(spaces.ws, batch) == 2
    assert await store.insert_spans(spaces.ws, batch) == 0
    trace = await store.get_trace(spaces.ws, TRACE, max_spans=100)
    assert trace["span_count"] == 2
    assert [s["name"] for s in trace["spans"]] == ["op-1", "op-2"]


async def test_a_trace_reads_back_with_its_spans_in_start_order_and_their_json_decoded(
    store: Store, spaces: Workspaces
) -> None:
    await store.insert_spans(
        spaces.ws,
        [
            span("2", "1", start_ns=START + 5, events='[{"name": "retry"}]'),
            span("1", attributes='{"n": 1, "list": [1, "a"]}', kind="server"),
        ],
    )
    trace = await store.get_trace(spaces.ws, TRACE.upper(), max_spans=100)
    first, second = trace["spans"]
    assert (first["span_id"], first["parent_span_id"], first["kind"]) == (
        "1".rjust(16, "0"),
        None,
        "server",
    )
    assert first["attributes"] == {"n": 1, "list": [1, "a"]}
    assert first["resource"] == {"service.name": "checkout"}
    assert second["events"] == [{"name": "retry"}]
    assert second["start_time_unix_nano"] == START + 5
    assert (await store.get_trace(spaces.ws, TRACE, max_spans=1))["spans"] == [first]


async def test_traces_are_per_workspace(store: Store, spaces: Workspaces) -> None:
    await store.insert_spans(spaces.ws, [span("1")])
    assert await store.insert_spans(spaces.other, [span("1")]) == 1  # its own copy
    with pytest.raises(NotFoundError, match="not found in this workspace"):
        await store.get_trace(spaces.other, OTHER_TRACE, max_spans=10)
    await store.insert_spans(spaces.other, [span("9", trace_id=OTHER_TRACE)])
    with pytest.raises(NotFoundError):
        await store.get_trace(spaces.ws, OTHER_TRACE, max_spans=10)
    assert await store.trace_of_span(spaces.ws, "9".rjust(16, "0")) is None
    for bad in ("", "zz", "x" * 10_000, "\x00" * 32):
        with pytest.raises(NotFoundError):
            await store.get_trace(spaces.ws, bad, max_spans=10)


async def test_the_list_filters_by_service_name_status_time_duration_and_errors(
    store: Store, spaces: Workspaces
) -> None:
    def trace(n: int, **fields: object) -> list[object]:
        return [span("1", trace_id=f"{n:032x}", **fields)]

    await store.insert_spans(spaces.ws, trace(1, service_name="api", name="GET /"))
    await store.insert_spans(
        spaces.ws,
        trace(2, service_name="worker", status_code="ERROR", end_ns=START + 10 * SECOND),
    )
    await store.insert_spans(
        spaces.ws, trace(3, start_ns=START + 100 * SECOND, end_ns=START + 100 * SECOND + 5)
    )  # type: ignore[arg-type]
    await store.insert_spans(
        spaces.ws,
        [
            span("1", trace_id=f"{4:032x}"),
            span("2", "1", trace_id=f"{4:032x}", status_code="ERROR"),
        ],
    )

    async def ids(**filters: object) -> list[int]:
        items, total = await store.list_traces(
            spaces.ws,
            TraceQuery(**filters),
            limit=10,
            offset=0,  # type: ignore[arg-type]
        )
        assert total == len(items)
        return sorted(int(item["trace_id"], 16) for item in items)

    base = START / SECOND
    assert await ids() == [1, 2, 3, 4]
    assert await ids(service="api") == [1]
    assert await ids(name="GET /") == [1]
    assert await ids(status="ERROR") == [2]
    assert await ids(has_error=True) == [2, 4]
    assert await ids(has_error=False) == [1, 3]
    assert await ids(since=base + 50) == [3]
    assert await ids(until=base + 50) == [1, 2, 4]
    assert await ids(min_duration=5.0) == [2]
    assert await ids(max_duration=0.5) == [3]
    assert await ids(service="\x00") == []
    assert await ids(since=1e300) == []  # far past the 64-bit nanoseconds: nothing, no error
    items, _ = await store.list_traces(spaces.ws, TraceQuery(), limit=10, offset=0)
    assert int(items[0]["trace_id"], 16) == 3  # newest start first
    first_seen = sorted(item["id"] for item in items)
    later, total = await store.list_traces(
        spaces.ws, TraceQuery(after_id=first_seen[1]), limit=10, offset=0
    )
    assert ([t["id"] for t in later], total) == (first_seen[2:], 2)  # first seen first
    facets = await store.trace_facets(spaces.ws)
    assert facets["services"] == ["api", "checkout", "worker"]
    assert "GET /" in facets["names"]


async def test_a_request_logged_in_a_span_and_that_span_link_both_ways(
    store: Store, spaces: Workspaces
) -> None:
    run_span = "a1b2c3d4e5f60718"
    request_id = await store.insert_request(spaces.ws, row("r1", span_id=run_span))
    assert (await store.get_request(spaces.ws, request_id))["span_id"] == run_span
    assert await store.trace_of_span(spaces.ws, run_span) is None  # not arrived yet
    await store.insert_spans(
        spaces.ws,
        [
            span(run_span, name="PromptLayer Run"),
            span(
                "c", run_span, name="chat gpt-4o",
                attributes=f'{{"promptlayer.request_log.span_id": "{run_span}"}}',
            ),
            span("d", run_span, name="unrelated"),
        ],
    )  # fmt: skip
    assert await store.trace_of_span(spaces.ws, run_span.upper()) == TRACE
    assert await store.trace_of_span(spaces.other, run_span) is None
    trace = await store.get_trace(spaces.ws, TRACE, max_spans=10)
    assert {s["name"]: s["request_id"] for s in trace["spans"]} == {
        "PromptLayer Run": request_id,
        "chat gpt-4o": request_id,
        "unrelated": None,
    }


async def test_text_a_database_cannot_hold_is_altered_not_refused(
    store: Store, spaces: Workspaces
) -> None:
    assert (
        await store.insert_spans(spaces.ws, [span("1", name="a\x00b", service_name="s\x00")]) == 1
    )
    (trace,), _ = await store.list_traces(spaces.ws, TraceQuery(), limit=1, offset=0)
    assert trace["name"] in ("a\x00b", "a\ufffdb")


async def test_concurrent_overlapping_exports_of_one_trace_count_each_span_once(
    store: Store, spaces: Workspaces
) -> None:
    import asyncio

    # Eight exports, each half new spans and half the previous export's: as retries racing.
    batches = [
        [span(f"{n + 2:x}", "1") for n in range(start, start + 40)] for start in range(0, 160, 20)
    ]
    batches[0].append(span("1", name="root"))
    stored = await asyncio.gather(*(store.insert_spans(spaces.ws, b) for b in batches))
    distinct = {s.span_id for b in batches for s in b}
    assert sum(stored) == len(distinct) == 181
    trace = await store.get_trace(spaces.ws, TRACE, max_spans=1000)
    assert (trace["span_count"], len(trace["spans"]), trace["name"]) == (181, 181, "root")
