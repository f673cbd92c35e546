"""Read back traces: ``/promptrun/v1/traces`` (the CLI's ``promptrun traces``, tests, scripts).

``GET /promptrun/v1/traces`` lists trace summaries, newest start first, with the dashboard's
filters; ``after_id`` lists the traces first seen after that one instead, oldest first (how
``--follow`` tails). ``GET /promptrun/v1/traces/{trace_id}`` is one trace with its spans,
each with the id of the request logged in it, if any. Times are Unix nanoseconds, as OTLP's.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from aiohttp import web

from promptrun.server._http import ApiError, json_response, query_int
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import TraceQuery
from promptrun.wire._limits import MAX_ID

__all__ = ["MAX_SPANS", "OPERATIONS", "SpanView", "TraceDetail", "TraceSummary", "routes"]

MAX_SPANS = 10_000  # spans one read returns at most
STATUSES = ("UNSET", "OK", "ERROR")

routes = web.RouteTableDef()


class TraceSummary(msgspec.Struct, kw_only=True):
    """A trace: its root span's name, service and status (until the root arrives, the
    earliest span's), its extent, and how many spans (and failed spans) it has."""

    id: int
    trace_id: str
    root_span_id: str | None
    name: str
    service_name: str
    status_code: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    span_count: int
    error_count: int
    created_at: float
    updated_at: float


class TraceList(msgspec.Struct):
    items: list[TraceSummary]
    total: int


class SpanView(msgspec.Struct, kw_only=True):
    """One span as received, and the request logged in it (``request_id``), if any."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    status_code: str
    status_message: str | None
    attributes: Any
    events: Any
    links: Any
    resource: Any
    scope_name: str
    scope_version: str
    request_id: int | None


class TraceDetail(TraceSummary, kw_only=True):
    spans: list[SpanView]


def _query_float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ApiError(400, f"query parameter {name}={raw!r} must be a number from 0 up")
    return value


def _query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name}={raw!r} must be true or false")


def trace_query(request: web.Request) -> TraceQuery:
    """The list's filters from the query string (durations in milliseconds)."""
    min_ms, max_ms = (
        _query_float(request, "min_duration_ms"),
        _query_float(request, "max_duration_ms"),
    )
    after = request.query.get("after_id")
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, f"query parameter status={status!r} must be one of {', '.join(STATUSES)}"
        )
    return TraceQuery(
        service=request.query.get("service") or None,
        name=request.query.get("name") or None,
        status=status,
        since=_query_float(request, "since"),
        until=_query_float(request, "until"),
        min_duration=None if min_ms is None else min_ms / 1000,
        max_duration=None if max_ms is None else max_ms / 1000,
        has_error=_query_bool(request, "has_error"),
        after_id=None if after is None else query_int(request, "after_id", 0, low=0, high=MAX_ID),
    )


@routes.get("/promptrun/v1/traces")
async def list_traces(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    limit = query_int(request, "limit", 50, low=1, high=1000)
    offset = query_int(request, "offset", 0, low=0, high=MAX_ID)
    items, total = await request.app[STORE].list_traces(
        workspace, trace_query(request), limit=limit, offset=offset
    )
    return json_response({"items": items, "total": total})


@routes.get("/promptrun/v1/traces/{trace_id}")
async def get_trace(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    max_spans = query_int(request, "max_spans", MAX_SPANS, low=1, high=MAX_SPANS)
    trace = await request.app[STORE].get_trace(
        workspace, request.match_info["trace_id"], max_spans=max_spans
    )
    return json_response(trace)


_NUMBER = {"type": "number", "minimum": 0}
OPERATIONS = [
    Operation(
        method="GET", path="/promptrun/v1/traces", tag="tracing",
        summary="Traces received on /v1/traces, newest first", response=TraceList,
        params=(
            Param(name="limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
            Param(name="offset", schema={"type": "integer", "minimum": 0, "maximum": MAX_ID}),
            Param(name="service", schema={"type": "string"}, description="root span's service"),
            Param(name="name", schema={"type": "string"}, description="root span's name"),
            Param(name="status", schema={"type": "string", "enum": list(STATUSES)}),
            Param(name="since", schema=_NUMBER, description="started at or after (epoch s)"),
            Param(name="until", schema=_NUMBER, description="started before (epoch s)"),
            Param(name="min_duration_ms", schema=_NUMBER),
            Param(name="max_duration_ms", schema=_NUMBER),
            Param(
                name="has_error", schema={"type": "boolean"},
                description="some span of the trace has the status ERROR (or none has)",
            ),
            Param(
                name="after_id", schema={"type": "integer", "minimum": 0, "maximum": MAX_ID},
                description="only traces first seen after this one, oldest first",
            ),
        ),
    ),
    Operation(
        method="GET", path="/promptrun/v1/traces/{trace_id}", tag="tracing",
        summary="One trace with its spans and the requests logged in them",
        response=TraceDetail, errors=(404,),
        params=(
            Param(
                name="trace_id", where="path", schema={"type": "string"},
                description="32 hex digits",
            ),
            Param(
                name="max_spans",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_SPANS},
                description="spans returned at most, earliest first",
            ),
        ),
    ),
]  # fmt: skip
