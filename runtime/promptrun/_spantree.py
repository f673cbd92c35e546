"""A trace's spans as a tree, in reading order: pure code the dashboard and the CLI share.

Spans are dicts as ``/promptrun/v1/traces/{id}`` gives them (``span_id``, ``parent_span_id``,
``start_time_unix_nano``). Children follow their parent, earliest start first; a span whose
parent is not in the trace (not arrived, or in another service's trace) is shown as a root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TreeRow", "span_tree"]


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One span in the tree: its depth (0 for a root) and whether it is its parent's last."""

    span: dict[str, Any]
    depth: int
    last: bool
    # For each ancestor level above this row, whether a later sibling still follows there
    # (where a tree drawing continues a vertical line).
    open_levels: tuple[bool, ...]


def _start(span: dict[str, Any]) -> tuple[Any, str]:
    start = span.get("start_time_unix_nano")
    return (start if isinstance(start, int) else 0, str(span.get("span_id")))


def span_tree(spans: Sequence[dict[str, Any]]) -> list[TreeRow]:
    """Every span once, parents before their children, siblings by start time."""
    by_id = {span.get("span_id"): span for span in spans}
    children: dict[Any, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for span in spans:
        parent = span.get("parent_span_id")
        if parent is not None and parent in by_id and parent != span.get("span_id"):
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    rows: list[TreeRow] = []
    seen: set[Any] = set()
    # (span, depth, last, open levels), last pushed first out: an explicit stack, as a
    # trace may be thousands of spans deep.
    ordered_roots = sorted(roots, key=_start)
    stack: list[tuple[dict[str, Any], int, bool, tuple[bool, ...]]] = [
        (span, 0, i == len(ordered_roots) - 1, ()) for i, span in enumerate(ordered_roots)
    ]
    stack.reverse()
    while stack:
        span, depth, last, open_levels = stack.pop()
        if span.get("span_id") in seen:
            continue
        seen.add(span.get("span_id"))
        rows.append(TreeRow(span, depth, last, open_levels))
        kids = sorted(children.get(span.get("span_id"), ()), key=_start)
        below: tuple[bool, ...] = (*open_levels, not last) if depth > 0 else ()
        for i in reversed(range(len(kids))):
            stack.append((kids[i], depth + 1, i == len(kids) - 1, below))
    # Spans in a parent cycle (only a hostile sender makes one) are never reached from a root.
    rows += [TreeRow(s, 0, True, ()) for s in spans if s.get("span_id") not in seen]
    return rows
