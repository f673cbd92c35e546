"""A trace's waterfall: one row per span in tree order, a bar from its start to its end.

Pure geometry for the trace page's SVG (the template draws it, so every name goes through the
page's escaping). Labels are indented by depth, bars share one time axis from the trace's
start, and each row links to its span's details.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from promptrun._spantree import TreeRow
from promptrun.server.dashboard._charts import Tick

__all__ = ["Row", "Waterfall", "waterfall"]

ROW_HEIGHT = 24
LABEL_WIDTH = 360
INDENT = 14
MAX_INDENT_LEVELS = 16  # deeper spans line up at this indentation
_TOP = 22  # the time axis's labels


@dataclass(frozen=True, slots=True)
class Row:
    span_id: str
    name: str
    title: str
    depth: int
    y: float  # top of the row
    label_x: float
    label_chars: int  # characters of the name that fit before the bars
    x: float
    width: float
    css: str
    took: str
    took_x: float
    took_anchor: str  # "start": after the bar; "end": before it (no room after)
    selected: bool
    request_id: int | None


@dataclass(frozen=True, slots=True)
class Waterfall:
    rows: list[Row]
    ticks: list[Tick]
    width: int
    height: int
    left: int
    right: int
    top: int


def _status_css(status: object) -> str:
    return {"ERROR": "span-ERROR", "OK": "span-SUCCESS"}.get(str(status), "span-UNSET")


def waterfall(
    rows: Sequence[TreeRow],
    origin_ns: int,
    end_ns: int,
    seconds_text: Callable[[float], str],
    *,
    selected: str | None = None,
    width: int = 1200,
) -> Waterfall:
    """The chart of ``rows`` (from :func:`promptrun._spantree.span_tree`) on an axis from
    ``origin_ns`` to ``end_ns``; ``selected`` is the span whose row is marked."""
    left, right = LABEL_WIDTH, width - 70
    # The axis ends at the trace's end, so the longest bar spans the chart.
    top = max(end_ns - origin_ns, 1) / 1e9
    scale = (right - left) / top
    drawn: list[Row] = []
    for i, tree_row in enumerate(rows):
        span = tree_row.span
        start_ns = span.get("start_time_unix_nano")
        stop_ns = span.get("end_time_unix_nano")
        start = (start_ns - origin_ns) / 1e9 if isinstance(start_ns, int) else 0.0
        took = (
            (stop_ns - start_ns) / 1e9
            if isinstance(stop_ns, int) and isinstance(start_ns, int)
            else 0.0
        )
        x = left + max(0.0, min(start, top)) * scale
        bar = max(min(max(took, 0.0) * scale, right - x), 2.0)
        took_text = seconds_text(max(took, 0.0))
        room_after = width - (x + bar) > 60
        name = str(span.get("name"))
        depth = min(tree_row.depth, MAX_INDENT_LEVELS)
        service = span.get("service_name")
        drawn.append(
            Row(
                span_id=str(span.get("span_id")),
                name=name,
                title=f"{name} ({service}): started +{seconds_text(max(start, 0.0))}, "
                f"took {took_text}, {span.get('status_code')}",
                depth=tree_row.depth,
                y=_TOP + i * ROW_HEIGHT,
                label_x=8 + depth * INDENT,
                label_chars=max(8, (LABEL_WIDTH - 24 - depth * INDENT) // 7),
                x=round(x, 2),
                width=round(bar, 2),
                css=_status_css(span.get("status_code")),
                took=took_text,
                took_x=round(x + bar + 6 if room_after else x - 6, 2),
                took_anchor="start" if room_after else "end",
                selected=span.get("span_id") == selected,
                request_id=span.get("request_id"),
            )
        )
    ticks = [Tick(left + (right - left) * i / 4, seconds_text(top * i / 4)) for i in range(5)]
    return Waterfall(
        rows=drawn,
        ticks=ticks,
        width=width,
        height=_TOP + ROW_HEIGHT * max(len(rows), 1) + 4,
        left=left,
        right=right,
        top=_TOP,
    )
