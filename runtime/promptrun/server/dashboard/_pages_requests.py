"""The request log: a filtered, paged list, newest first, and one request in full."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from promptrun.server._state import STORE
from promptrun.server.dashboard._messages import conversation_of
from promptrun.server.dashboard._prices import PriceTable, request_cost
from promptrun.server.dashboard._web import (
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import RequestQuery

__all__ = ["form_time", "parse_filters", "routes"]

routes = web.RouteTableDef()
PAGE_SIZE = 50
_FIELDS = ("prompt", "version", "tag", "provider", "model", "status", "since", "until", "q")


def form_time(name: str, raw: str) -> float:
    """A datetime-local value (or any ISO 8601 time); without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise DashboardError(400, f"{name} {raw!r} is not a time like 2025-06-01T12:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_filters(query: MultiMapping[str]) -> tuple[RequestQuery, dict[str, str], int]:
    """The store query, the form's values as given, and the page number (from 1)."""
    given = {name: query.get(name, "").strip() for name in _FIELDS}
    version = whole_number(given["version"], "version") if given["version"] else None
    page = whole_number(query.get("page", "1"), "page")
    found = RequestQuery(
        prompt_name=given["prompt"] or None,
        prompt_version=version,
        tag=given["tag"] or None,
        provider=given["provider"] or None,
        model=given["model"] or None,
        status=given["status"] or None,
        since=form_time("since", given["since"]) if given["since"] else None,
        until=form_time("until", given["until"]) if given["until"] else None,
        text=given["q"] or None,
    )
    return found, given, page


def _row(item: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    cost, estimated = request_cost(prices, item)
    start, end = item.get("request_start_time"), item.get("request_end_time")
    latency = (
        end - start if isinstance(start, float | int) and isinstance(end, float | int) else None
    )
    tags = item.get("tags")
    if not isinstance(tags, list):  # tags that are not a JSON list show as they are stored
        tags = [] if tags is None else [tags]
    return {**item, "tags": tags, "cost": cost, "cost_estimated": estimated, "latency": latency}


@routes.get("/requests")
async def request_list(request: web.Request) -> web.Response:
    session = session_of(request)
    queries = request.config_dict[STORE]
    found, given, page = parse_filters(request.query)
    items, total = await queries.search_requests(
        session.workspace, found, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    prices = PriceTable(await queries.model_prices(session.workspace))
    kept = {name: value for name, value in given.items() if value}
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "requests.html",
        nav="requests",
        rows=[_row(item, prices) for item in items],
        total=total,
        page=page,
        pages=pages,
        filters=given,
        filtered=bool(kept),
        facets=await queries.request_facets(session.workspace),
        base_query=urlencode(kept),
    )


@routes.get("/requests/{ref}")
async def request_detail(request: web.Request) -> web.Response:
    session = session_of(request)
    raw = request.match_info["ref"]
    # Digits are a server id; anything else is the client's request id.
    ref: int | str = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else raw
    store = request.config_dict[STORE]
    item = await store.get_request(session.workspace, ref)
    prices = PriceTable(await store.model_prices(session.workspace))
    row = _row(item, prices)
    span_id = item.get("span_id")
    return render(
        request,
        "request.html",
        nav="requests",
        item=row,
        conversation=conversation_of(item),
        trace_id=await store.trace_of_span(session.workspace, span_id) if span_id else None,
    )
