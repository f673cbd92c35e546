"""Traces: store the spans ``/v1/traces`` receives, keep a summary per trace, read them back.

Spans of one trace arrive in any order and in any number of batches (an OpenTelemetry SDK
exports each span as it ends, so children usually come before their root). Each batch is
stored with a few multi-row statements: the spans, skipping any already stored (idempotent by
workspace, trace id and span id, so a retried export stores nothing twice), then one upsert
per trace of what the new spans add to its summary row: the earliest start, the latest end,
the span and error counts, and the root span's name, service and status once the root
(a span without a parent) has arrived; until then, those of the earliest span seen.

Rows go in sorted by trace and span id, so two writers sharing traces (PostgreSQL, several
server processes) lock them in one order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from promptrun.server.store.base import NotFoundError, SpanRow, TraceQuery
from promptrun.server.store.queries._sql import Op, Row, fetch, fetchrow, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.stored_json import stored_json

__all__ = [
    "REQUEST_SPAN_ATTRIBUTE",
    "get_trace",
    "insert_spans",
    "is_hex_id",
    "list_traces",
    "trace_facets",
    "trace_of_span",
]

# Spans the PromptLayer SDK's GenAI instrumentation makes inside run() name the run's span
# (the one its logged request carries) in this attribute: they link to that request too.
REQUEST_SPAN_ATTRIBUTE = "promptlayer.request_log.span_id"
_SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service_name", "start_ns",
    "end_ns", "status_code", "status_message", "attributes", "events", "links", "resource",
    "scope_name", "scope_version",
)  # fmt: skip
_TRACE_COLUMNS = (
    "id", "trace_id", "root_span_id", "name", "service_name", "status_code", "start_ns",
    "end_ns", "span_count", "error_count", "created_at", "updated_at",
)  # fmt: skip
_ROWS_PER_STATEMENT = 256  # 18 parameters a span: well under both databases' limits
_SPAN_WIDTH = len(_SPAN_COLUMNS) + 2
_TRACE_WIDTH = 12
_FACET_WINDOW = 10_000  # filter menus look at this many recent traces
_FACET_LIMIT = 200
_HEX = frozenset("0123456789abcdef")
_NS = 1_000_000_000


def is_hex_id(value: str, digits: int) -> bool:
    """Whether ``value`` is an OpenTelemetry id as we store it: lowercase hex of this length."""
    return len(value) == digits and _HEX.issuperset(value)


def _clean(d: Dialect, span: SpanRow) -> tuple[Any, ...]:
    """A span's column values, its texts altered only as far as the database needs."""
    text = d.safe_text
    return (
        span.trace_id, span.span_id, span.parent_span_id, text(span.name), span.kind,
        text(span.service_name), span.start_ns, span.end_ns, span.status_code,
        text(span.status_message), span.attributes, span.events, span.links, span.resource,
        text(span.scope_name), text(span.scope_version),
    )  # fmt: skip


# ($1, $2, ...), ($19, $20, ...): a full statement's rows of numbered parameters, made once.
# (Written out where used, not by a helper: the SQL check in tests/security follows literals.)
_SPAN_MARKS = ", ".join(
    "(" + ", ".join(f"${r * _SPAN_WIDTH + c + 1}" for c in range(_SPAN_WIDTH)) + ")"
    for r in range(_ROWS_PER_STATEMENT)
)


@dataclass(slots=True)
class _TraceDelta:
    """What a batch's new spans add to one trace's summary."""

    head: SpanRow  # the root if it came, else the earliest span
    start_ns: int
    end_ns: int
    spans: int = 0
    errors: int = 0

    def add(self, span: SpanRow) -> None:
        self.start_ns = min(self.start_ns, span.start_ns)
        self.end_ns = max(self.end_ns, span.end_ns)
        self.spans += 1
        self.errors += span.status_code == "ERROR"
        head = self.head
        if head.parent_span_id is not None and (
            span.parent_span_id is None or span.start_ns < head.start_ns
        ):
            self.head = span


def _deltas(spans: Iterable[SpanRow]) -> dict[str, _TraceDelta]:
    found: dict[str, _TraceDelta] = {}
    for span in spans:
        delta = found.get(span.trace_id)
        if delta is None:
            delta = found[span.trace_id] = _TraceDelta(span, span.start_ns, span.end_ns)
        delta.add(span)
    return found


# The summary's root fields: kept once the root is in; else taken from the incoming root, or
# from an incoming span that started earlier than the head so far.
_HEAD = (
    "CASE WHEN traces.root_span_id IS NOT NULL THEN traces.{0} "
    "WHEN excluded.root_span_id IS NOT NULL OR excluded.start_ns < traces.start_ns "
    "THEN excluded.{0} ELSE traces.{0} END"
)
_UPSERT_TRACES = (
    "INSERT INTO traces (workspace_id, trace_id, root_span_id, name, service_name, "
    "status_code, start_ns, end_ns, span_count, error_count, created_at, updated_at) VALUES {} "
    "ON CONFLICT (workspace_id, trace_id) DO UPDATE SET "
    "root_span_id = COALESCE(traces.root_span_id, excluded.root_span_id), "
    f"name = {_HEAD.format('name')}, "
    f"service_name = {_HEAD.format('service_name')}, "
    f"status_code = {_HEAD.format('status_code')}, "
    "start_ns = CASE WHEN excluded.start_ns < traces.start_ns "
    "THEN excluded.start_ns ELSE traces.start_ns END, "
    "end_ns = CASE WHEN excluded.end_ns > traces.end_ns THEN excluded.end_ns "
    "ELSE traces.end_ns END, "
    "span_count = traces.span_count + excluded.span_count, "
    "error_count = traces.error_count + excluded.error_count, "
    "updated_at = excluded.updated_at"
)


def insert_spans(d: Dialect, workspace: int, spans: Sequence[SpanRow], now: float) -> Op[int]:
    """Store the spans not stored yet and update their traces' summaries; how many were new."""
    unique = {(s.trace_id, s.span_id): s for s in reversed(spans)}  # the first of repeats
    ordered = [unique[key] for key in sorted(unique)]
    new: list[SpanRow] = []
    for start in range(0, len(ordered), _ROWS_PER_STATEMENT):
        chunk = ordered[start : start + _ROWS_PER_STATEMENT]
        args: list[Any] = []
        for span in chunk:
            args += (workspace, *_clean(d, span), now)
        marks = (
            _SPAN_MARKS
            if len(chunk) == _ROWS_PER_STATEMENT
            else ", ".join(
                "(" + ", ".join(f"${r * _SPAN_WIDTH + c + 1}" for c in range(_SPAN_WIDTH)) + ")"
                for r in range(len(chunk))
            )
        )
        returned = yield from fetch(
            f"INSERT INTO spans (workspace_id, {', '.join(_SPAN_COLUMNS)}, created_at) "
            f"VALUES {marks} "
            "ON CONFLICT (workspace_id, trace_id, span_id) DO NOTHING RETURNING trace_id, span_id",
            *args,
        )
        inserted = {(t, s) for t, s in returned}
        new += [span for span in chunk if (span.trace_id, span.span_id) in inserted]
    deltas = sorted(_deltas(new).items())
    for start in range(0, len(deltas), _ROWS_PER_STATEMENT):
        part = deltas[start : start + _ROWS_PER_STATEMENT]
        args = []
        for trace_id, delta in part:
            head = delta.head
            args += (
                workspace, trace_id, head.span_id if head.parent_span_id is None else None,
                d.safe_text(head.name), d.safe_text(head.service_name), head.status_code,
                delta.start_ns, delta.end_ns, delta.spans, delta.errors, now, now,
            )  # fmt: skip
        marks = ", ".join(
            "(" + ", ".join(f"${r * 12 + c + 1}" for c in range(12)) + ")" for r in range(len(part))
        )
        yield from fetch(_UPSERT_TRACES.format(marks), *args)
    return len(new)


def _summary(row: Row) -> dict[str, Any]:
    item = dict(zip(_TRACE_COLUMNS, row, strict=True))
    start, end = item.pop("start_ns"), item.pop("end_ns")
    item["start_time_unix_nano"] = start
    item["end_time_unix_nano"] = end
    item["duration_ms"] = (end - start) / 1e6
    return item


def list_traces(
    d: Dialect, workspace: int, query: TraceQuery, *, limit: int, offset: int
) -> Op[tuple[list[dict[str, Any]], int]]:
    """Newest start first (with ``after_id``: first seen first), and the total matching."""
    where = ["workspace_id = $1"]
    args: list[Any] = [workspace]

    def where_arg(clause: str, value: Any) -> None:
        args.append(value)
        where.append(clause.format(f"${len(args)}"))

    texts = (query.service, query.name, query.status)
    if not d.text_ok(*texts):
        return [], 0
    for column, value in zip(("service_name", "name", "status_code"), texts, strict=True):
        if value is not None:
            where_arg(f"{column} = {{}}", value)
    if query.since is not None:
        where_arg("start_ns >= {}", _ns(query.since))
    if query.until is not None:
        where_arg("start_ns < {}", _ns(query.until))
    if query.min_duration is not None:
        where_arg("end_ns - start_ns >= {}", _ns(query.min_duration))
    if query.max_duration is not None:
        where_arg("end_ns - start_ns <= {}", _ns(query.max_duration))
    if query.has_error is not None:
        where.append("error_count > 0" if query.has_error else "error_count = 0")
    if query.after_id is not None:
        where_arg("id > {}", query.after_id)
    clause = " AND ".join(where)
    total = yield from fetchval(f"SELECT COUNT(*) FROM traces WHERE {clause}", *args)
    order = "id" if query.after_id is not None else "start_ns DESC, id DESC"
    n = len(args)
    rows = yield from fetch(
        f"SELECT {', '.join(_TRACE_COLUMNS)} FROM traces WHERE {clause} "
        f"ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return [_summary(row) for row in rows], int(total)


def _ns(seconds: float) -> int:
    """Seconds as nanoseconds, held within the databases' 64-bit integers (callers check
    for NaN; an infinity is the end of the range)."""
    bound = 2**63 - 1
    if not -bound < seconds * _NS < bound:
        return bound if seconds > 0 else -bound
    return int(seconds * _NS)


def _span(row: Row) -> dict[str, Any]:
    item = dict(zip(_SPAN_COLUMNS, row, strict=True))
    for name in ("attributes", "events", "links", "resource"):
        item[name] = stored_json(item[name])
    start, end = item.pop("start_ns"), item.pop("end_ns")
    item["start_time_unix_nano"] = start
    item["end_time_unix_nano"] = end
    item["duration_ms"] = (end - start) / 1e6
    return item


def get_trace(d: Dialect, workspace: int, trace_id: str, *, max_spans: int) -> Op[dict[str, Any]]:
    """A trace's summary, its spans by start time, and the request logged in each span."""
    trace_id = trace_id.lower()
    row = None
    if is_hex_id(trace_id, 32):
        row = yield from fetchrow(
            f"SELECT {', '.join(_TRACE_COLUMNS)} FROM traces "
            "WHERE workspace_id = $1 AND trace_id = $2",
            workspace,
            trace_id,
        )
    if row is None:
        raise NotFoundError(f"trace {trace_id[:64]!r} not found in this workspace")
    trace = _summary(row)
    rows = yield from fetch(
        f"SELECT {', '.join(_SPAN_COLUMNS)} FROM spans WHERE workspace_id = $1 "
        f"AND trace_id = $2 ORDER BY start_ns, span_id{d.binary} LIMIT $3",
        workspace,
        trace_id,
        max_spans,
    )
    spans = [_span(r) for r in rows]
    named: dict[str, str] = {}  # span id -> the span whose request it names
    for span in spans:
        value = span["attributes"].get(REQUEST_SPAN_ATTRIBUTE)
        if isinstance(value, str):
            named[span["span_id"]] = value.lower()
    candidates = {s["span_id"] for s in spans} | set(named.values())
    wanted = sorted(c for c in candidates if d.text_ok(c))
    found: dict[str, int] = {}
    if wanted:
        linked = yield from fetch(
            "SELECT span_id, MIN(id) FROM requests WHERE workspace_id = $1 "
            f"AND span_id IS NOT NULL AND span_id {d.any_of('$2', 'text')} GROUP BY span_id",
            workspace,
            d.array(wanted),
        )
        found = {s: int(i) for s, i in linked}
    for span in spans:
        own = found.get(span["span_id"])
        span["request_id"] = own if own is not None else found.get(named.get(span["span_id"], ""))
    trace["spans"] = spans
    return trace


def trace_facets(d: Dialect, workspace: int) -> Op[dict[str, list[str]]]:
    """The services and root names of the workspace's recent traces, for filter menus."""
    facets: dict[str, list[str]] = {}
    for kind, column in (("services", "service_name"), ("names", "name")):
        rows = yield from fetch(
            f"SELECT DISTINCT {column} FROM (SELECT {column} FROM traces WHERE workspace_id = $1 "
            f"ORDER BY start_ns DESC LIMIT $2) AS recent LIMIT $3",
            workspace,
            _FACET_WINDOW,
            _FACET_LIMIT,
        )
        facets[kind] = sorted(r[0] for r in rows)
    return facets


def trace_of_span(d: Dialect, workspace: int, span_id: str) -> Op[str | None]:
    """The trace holding this span in the workspace, if it has arrived."""
    span_id = span_id.lower()
    if not is_hex_id(span_id, 16):
        return None
    found = yield from fetchval(
        "SELECT trace_id FROM spans WHERE workspace_id = $1 AND span_id = $2 LIMIT 1",
        workspace,
        span_id,
    )
    return None if found is None else str(found)
