"""Comparing logged requests made two ways (e.g. through a native transport and an SDK)."""

from __future__ import annotations

from typing import Any

# What differs between two runs of the same prompt: ids the client or the provider chose, times.
_VOLATILE = frozenset(
    {"id", "client_request_id", "created", "created_at", "request_start_time", "request_end_time"}
)


def comparable(record: Any) -> Any:
    """``record`` without its ids and times, at every depth."""
    if isinstance(record, dict):
        return {k: comparable(v) for k, v in record.items() if k not in _VOLATILE}
    if isinstance(record, list):
        return [comparable(v) for v in record]
    return record
