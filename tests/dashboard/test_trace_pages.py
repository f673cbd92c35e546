"""The traces pages over HTTP: the list and its filters, one trace's tree, waterfall and
details, the links between a span and its logged request, and hostile span text."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from ._dash import OTHER_KEY, Visitor

pytestmark = pytest.mark.anyio

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
START = 1_750_000_000_000_000_000
MS = 1_000_000


def span(
    span_id: str, name: str, parent: str = "", start_ms: int = 0, ms: int = 10, **extra: Any
) -> dict[str, Any]:
    return {
        "traceId": extra.pop("trace", TRACE),
        "spanId": span_id.rjust(16, "0"),
        "parentSpanId": parent.rjust(16, "0") if parent else "",
        "name": name,
        "startTimeUnixNano": START + start_ms * MS,
        "endTimeUnixNano": START + (start_ms + ms) * MS,
        **extra,
    }


async def export(
    visitor: Visitor, *spans: dict[str, Any], service: str = "shop", key: str | None = None
) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": list(spans)}],
            }
        ]
    }
    answer = await visitor.api("/v1/traces", body, **({} if key is None else {"key": key}))
    assert answer == {}


async def test_a_trace_shows_its_tree_on_a_waterfall_with_each_spans_details(
    signed_in: Visitor,
) -> None:
    await export(
        signed_in,
        span("1", "handle order", ms=200, kind=2, attributes=[{"key": "http.route", "value": {"stringValue": "/orders"}}]),
        span("2", "load cart", "1", start_ms=10, ms=50),
        span(
            "3", "charge card", "1", start_ms=80, ms=100,
            status={"code": 2, "message": "card declined"},
            events=[{"name": "retry", "timeUnixNano": START + 120 * MS, "attributes": [{"key": "attempt", "value": {"intValue": 2}}]}],
        ),
    )  # fmt: skip
    status, page = await signed_in.get("/dashboard/traces")
    assert status == 200
    assert 'id="traces"' in page and "handle order" in page
    assert f'href="/dashboard/traces/{TRACE}"' in page
    status, page = await signed_in.get(f"/dashboard/traces/{TRACE}")
    assert status == 200
    assert "Trace: handle order" in page
    # The waterfall: one row per span, in tree order, each linking to its details.
    rows = re.findall(r'data-span="([0-9a-f]{16})"', page)
    assert rows == ["1".rjust(16, "0"), "2".rjust(16, "0"), "3".rjust(16, "0")]
    assert page.count('class="span-ERROR"') == 1
    assert 'id="span-0000000000000003"' in page
    assert "card declined" in page and "retry" in page and "attempt" in page
    assert "/orders" in page
    # The root's details are open at first; ?span= opens another's.
    assert re.search(r'id="span-0000000000000001"\s+open', page)
    _, chosen = await signed_in.get(f"/dashboard/traces/{TRACE}?span={'3'.rjust(16, '0')}")
    assert re.search(r'id="span-0000000000000003"\s+open', chosen)
    assert not re.search(r'id="span-0000000000000001"\s+open', chosen)


async def test_the_list_filters_by_service_status_errors_and_duration(signed_in: Visitor) -> None:
    await export(signed_in, span("1", "fast", ms=5, trace="a" * 32), service="api")
    await export(
        signed_in,
        span("1", "slow", ms=3000, trace="b" * 32, status={"code": 2}),
        service="worker",
    )

    async def names(query: str) -> list[str]:
        status, page = await signed_in.get(f"/dashboard/traces?{query}")
        assert status == 200, page
        return re.findall(r'<a href="/dashboard/traces/[0-9a-f]{32}">([^<]+)</a>', page)

    assert sorted(await names("")) == ["fast", "slow"]
    assert await names("service=api") == ["fast"]
    assert await names("status=ERROR") == ["slow"]
    assert await names("errors=yes") == ["slow"]
    assert await names("errors=no") == ["fast"]
    assert await names("min_ms=1000") == ["slow"]
    assert await names("max_ms=10") == ["fast"]
    assert await names("since=2100-01-01T00:00") == []
    for bad in ("min_ms=-3", "status=WEIRD", "errors=maybe", "since=tomorrow", "page=0"):
        status, _ = await signed_in.get(f"/dashboard/traces?{bad}")
        assert status == 400, bad


async def test_a_span_links_to_its_logged_request_and_the_request_back_to_its_trace(
    signed_in: Visitor,
) -> None:
    run_span = "00f067aa0ba902b7"
    body = {
        "function_name": "openai.chat.completions.create",
        "provider_type": "openai",
        "kwargs": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        "request_start_time": 1_750_000_000.0,
        "request_end_time": 1_750_000_001.0,
        "span_id": run_span,
        "request_response": {"choices": [{"message": {"role": "assistant", "content": "Hello"}}]},
    }
    request_id = (await signed_in.api("/track-request", body))["request_id"]
    _, before = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert "its trace has not arrived" in before
    await export(signed_in, span(run_span, "PromptLayer Run", ms=900))
    _, request_page = await signed_in.get(f"/dashboard/requests/{request_id}")
    link = re.search(r'id="trace-link" href="([^"]+)"', request_page)
    assert link is not None
    assert (
        html.unescape(link.group(1)) == f"/dashboard/traces/{TRACE}?span={run_span}#span-{run_span}"
    )
    _, trace_page = await signed_in.get(f"/dashboard/traces/{TRACE}")
    assert f'href="/dashboard/requests/{request_id}"' in trace_page


async def test_hostile_span_text_is_shown_as_text(signed_in: Visitor) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await export(
        signed_in,
        span("1", evil, attributes=[{"key": evil, "value": {"stringValue": evil}}]),
        service=evil,
    )
    _, listing = await signed_in.get("/dashboard/traces")
    _, page = await signed_in.get(f"/dashboard/traces/{TRACE}")
    for text in (listing, page):
        assert "<script>alert" not in text
        assert "<img src=x" not in text
        assert "&lt;script&gt;" in text


async def test_a_huge_attribute_is_cut_on_the_page(signed_in: Visitor) -> None:
    await export(
        signed_in,
        span("1", "big", attributes=[{"key": "blob", "value": {"stringValue": "x" * 100_000}}]),
    )
    _, page = await signed_in.get(f"/dashboard/traces/{TRACE}")
    assert "x" * 20_000 + "… (80,000 more characters" in page
    assert "x" * 20_001 not in page


async def test_another_workspaces_trace_is_not_found(signed_in: Visitor) -> None:
    await export(signed_in, span("1", "theirs"), key=OTHER_KEY)
    status, page = await signed_in.get(f"/dashboard/traces/{TRACE}")
    assert status == 404
    assert "not found in this workspace" in page
    _, listing = await signed_in.get("/dashboard/traces")
    assert "theirs" not in listing and "No traces in this workspace yet" in listing
    status, _ = await signed_in.get("/dashboard/traces/not-a-trace")
    assert status == 404
