"""Spans for the contract tests."""

from __future__ import annotations

from typing import Any

from promptrun.server.store.base import SpanRow

TRACE = "0af7651916cd43dd8448eb211c80319c"
START = 1_700_000_000_000_000_000  # ns


def span(span_id: str, parent: str | None = None, **fields: Any) -> SpanRow:
    """A span of ``TRACE`` (ids are padded to 16 hex digits), 1 s long from ``START``."""
    values: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": span_id.rjust(16, "0"),
        "parent_span_id": None if parent is None else parent.rjust(16, "0"),
        "name": f"op-{span_id}",
        "kind": "internal",
        "service_name": "checkout",
        "start_ns": START,
        "end_ns": START + 1_000_000_000,
        "status_code": "UNSET",
        "status_message": None,
        "attributes": '{"k": "v"}',
        "events": "[]",
        "links": "[]",
        "resource": '{"service.name": "checkout"}',
        "scope_name": "tests",
        "scope_version": "1",
    }
    values.update(fields)
    return SpanRow(**values)
