"""The request log: a filtered, sorted list with totals and percentiles, and one request in
full.

The list is paged by cursor (the sort key and id of the row a page ends at), so every page
costs what the first does; a search that is exactly a client request id (or ``#`` and a
server id) also offers that request.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard._log_query import SORTS, form_time, parse_address
from promptrun.server.dashboard._messages import conversation_of
from promptrun.server.dashboard._previews import preview
from promptrun.server.dashboard._prices import (
    PriceTable,
    model_costs,
    request_cost,
    token_prices,
)
from promptrun.server.dashboard._web import render, session_of
from promptrun.server.store.base import LogStats, PromptMetrics, Store
from promptrun.wire._metadata import MAX_METADATA_VALUE

__all__ = ["form_time", "priced", "routes", "stats_view", "version_view"]

routes = web.RouteTableDef()
_SERVER_ID = re.compile(r"#?(\d{1,18})")


def priced(item: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    """A request summary with its cost (logged, else priced from the table: ``cost_estimated``)
    and latency in seconds; tags that are not a JSON list shown as they are stored."""
    cost, estimated = request_cost(prices, item)
    start, end = item.get("request_start_time"), item.get("request_end_time")
    latency = (
        end - start if isinstance(start, float | int) and isinstance(end, float | int) else None
    )
    tags = item.get("tags")
    if not isinstance(tags, list):
        tags = [] if tags is None else [tags]
    return {**item, "tags": tags, "cost": cost, "cost_estimated": estimated, "latency": latency}


def _row(item: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    sent, received = preview(item)
    return {**priced(item, prices), "input_preview": sent, "output_preview": received}


def stats_view(stats: LogStats, prices: PriceTable) -> dict[str, Any]:
    """What a page shows of totals: counts, tokens, cost, latency percentiles."""
    costs, unpriced = model_costs(stats.usage, prices)
    return {
        "stats": stats,
        "cost": sum(cost for _, cost in costs),
        "unpriced": unpriced,
        "error_rate": stats.errors / stats.requests if stats.requests else None,
    }


async def _named(store: Store, workspace: int, text: str | None) -> int | None:
    """The request a search names exactly: its client request id, or # and its server id."""
    if not text:
        return None
    found = await store.stored_ids(workspace, [text])
    if text in found:
        return found[text]
    match = _SERVER_ID.fullmatch(text)
    if match:
        try:
            return int((await store.get_request(workspace, int(match[1])))["id"])
        except LookupError:
            return None
    return None


@routes.get("/requests")
async def request_list(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    address = parse_address(request.query)
    prices = PriceTable(await store.model_prices(session.workspace))
    facets = await store.request_facets(session.workspace)
    page = await store.request_page(
        session.workspace,
        address.query,
        address.page,
        costs=token_prices(prices, facets["models"]),
        with_blueprints=True,
    )
    stats = None
    if page.total_exact:  # else counting stopped at the cap: there is nothing more to add up
        stats = stats_view(await store.request_stats(session.workspace, address.query), prices)
    versions = []
    if address.query.prompt_name:
        since = address.query.since if address.query.since is not None else 0.0
        versions = [
            version_view(m, prices)
            for m in await store.prompt_metrics(
                session.workspace,
                since=since,
                until=address.query.until,
                prompt_name=address.query.prompt_name,
            )
        ]
    return render(
        request,
        "requests.html",
        nav="requests",
        rows=[_row(item, prices) for item in page.items],
        page=page,
        links=address.pages(page.after, page.before),
        address=address,
        sort_links={sort: address.sort_link(sort) for sort in SORTS},
        filters=address.given,
        filtered=address.filtered,
        facets=facets,
        summary=stats,
        versions=versions,
        named=await _named(store, session.workspace, address.query.text),
        export_query=address.link(),
    )


def version_view(metrics: PromptMetrics, prices: PriceTable) -> dict[str, Any]:
    return {
        "prompt_name": metrics.prompt_name,
        "version": metrics.version,
        **stats_view(metrics.stats, prices),
    }


def metadata_view(metadata: Any) -> list[tuple[str, str, int]]:
    """A request's metadata as its page shows it: key, value (cut past
    :data:`MAX_METADATA_VALUE` characters, as a request stored before that limit can hold),
    and the value's length when it was cut (else 0), sorted by key."""
    if not isinstance(metadata, dict):
        return []
    rows = []
    for key, value in sorted(metadata.items(), key=lambda item: str(item[0])):
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_METADATA_VALUE:
            rows.append((str(key), text[:MAX_METADATA_VALUE] + "…", len(text)))
        else:
            rows.append((str(key), text, 0))
    return rows


@routes.get("/requests/{ref}")
async def request_detail(request: web.Request) -> web.Response:
    session = session_of(request)
    raw = request.match_info["ref"]
    # Digits are a server id; anything else is the client's request id.
    ref: int | str = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else raw
    store = request.config_dict[STORE]
    item = await store.get_request(session.workspace, ref)
    prices = PriceTable(await store.model_prices(session.workspace))
    span_id = item.get("span_id")
    return render(
        request,
        "request.html",
        nav="requests",
        item=priced(item, prices),
        metadata=metadata_view(item.get("metadata")),
        conversation=conversation_of(item),
        trace_id=await store.trace_of_span(session.workspace, span_id) if span_id else None,
    )
