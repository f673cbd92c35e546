"""Traces: the list (filters: time, service, name, status, duration, errors) and one trace,
its span tree on a waterfall, each span's attributes, events and links, and the request
logged in it.

Reads the spans ``/v1/traces`` stored; a request page links here through its span id.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from promptrun._spantree import span_tree
from promptrun.server._state import STORE
from promptrun.server.dashboard._format import duration, pretty_json
from promptrun.server.dashboard._pages_requests import form_time
from promptrun.server.dashboard._waterfall import waterfall
from promptrun.server.dashboard._web import DashboardError, render, session_of, whole_number
from promptrun.server.store.base import TraceQuery

__all__ = ["routes"]

routes = web.RouteTableDef()
PAGE_SIZE = 50
MAX_PAGE_SPANS = 2_000
STATUSES = ["UNSET", "OK", "ERROR"]
_FIELDS = ("service", "name", "status", "errors", "min_ms", "max_ms", "since", "until")


def _milliseconds(name: str, raw: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise DashboardError(400, f"{name} {raw!r} is not a number of milliseconds from 0 up")
    return value / 1000


def _filters(request: web.Request) -> tuple[TraceQuery, dict[str, str], int]:
    given = {name: request.query.get(name, "").strip() for name in _FIELDS}
    if given["status"] and given["status"] not in STATUSES:
        raise DashboardError(400, f"status {given['status']!r} is not one of {', '.join(STATUSES)}")
    if given["errors"] not in ("", "yes", "no"):
        raise DashboardError(400, f"errors {given['errors']!r} is not yes or no")
    query = TraceQuery(
        service=given["service"] or None,
        name=given["name"] or None,
        status=given["status"] or None,
        has_error=None if not given["errors"] else given["errors"] == "yes",
        min_duration=_milliseconds("minimum duration", given["min_ms"]),
        max_duration=_milliseconds("maximum duration", given["max_ms"]),
        since=form_time("since", given["since"]) if given["since"] else None,
        until=form_time("until", given["until"]) if given["until"] else None,
    )
    return query, given, whole_number(request.query.get("page", "1"), "page")


@routes.get("/traces")
async def trace_list(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    query, given, page = _filters(request)
    items, total = await store.list_traces(
        session.workspace, query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    kept = {name: value for name, value in given.items() if value}
    return render(
        request,
        "traces.html",
        nav="traces",
        rows=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters=given,
        filtered=bool(kept),
        facets=await store.trace_facets(session.workspace),
        statuses=STATUSES,
        base_query=urlencode(kept),
    )


MAX_SHOWN_CHARS = 20_000  # of one value on the page (the REST API gives it whole)


def _shown(value: Any) -> str:
    """An attribute's value as text: strings as they are, the rest as JSON would spell it;
    a long one cut, so that a trace of large values still makes a page a browser can show."""
    text = value if isinstance(value, str) else pretty_json(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    more = len(text) - MAX_SHOWN_CHARS
    return f"{text[:MAX_SHOWN_CHARS]}… ({more:,} more characters: GET /promptrun/v1/traces/ID)"


@routes.get("/traces/{trace_id}")
async def trace_page(request: web.Request) -> web.Response:
    session = session_of(request)
    trace = await request.config_dict[STORE].get_trace(
        session.workspace, request.match_info["trace_id"], max_spans=MAX_PAGE_SPANS
    )
    origin = trace["start_time_unix_nano"]
    rows = span_tree(trace["spans"])
    selected = request.query.get("span") or (rows[0].span["span_id"] if rows else None)
    chart = waterfall(rows, origin, trace["end_time_unix_nano"], duration, selected=selected)
    spans = [
        {
            **row.span,
            "depth": row.depth,
            "offset": duration(max(0, row.span["start_time_unix_nano"] - origin) / 1e9),
            "took": duration(max(0.0, row.span["duration_ms"] / 1000)),
            "shown_attributes": _attributes(row.span.get("attributes")),
            "shown_resource": _attributes(row.span.get("resource")),
            "shown_events": [
                {
                    "name": event.get("name") if isinstance(event, dict) else event,
                    "offset": _event_offset(event, origin),
                    "attributes": _attributes(
                        event.get("attributes") if isinstance(event, dict) else None
                    ),
                }
                for event in (row.span.get("events") or [])
            ],
        }
        for row in rows
    ]
    return render(
        request,
        "trace.html",
        nav="traces",
        trace=trace,
        chart=chart,
        spans=spans,
        selected=selected,
        truncated=len(spans) < trace["span_count"],
    )


def _attributes(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):  # a row written around the server: shown as stored
        return [] if value in (None, "", [], {}) else [("(stored)", _shown(value))]
    return [
        (str(key), _shown(item)) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))
    ]


def _event_offset(event: Any, origin: int) -> str:
    at = event.get("time_unix_nano") if isinstance(event, dict) else None
    return "" if not isinstance(at, int) else "+" + duration(max(0, at - origin) / 1e9)
