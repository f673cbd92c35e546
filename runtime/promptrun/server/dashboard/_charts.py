"""Chart geometry for server-rendered SVG: bars over time, lines over time, ranked bars.

Pure functions from numbers to shapes in a fixed viewBox; the templates draw them, so every
label goes through the page's escaping. No JavaScript, nothing fetched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BarChart",
    "LineChart",
    "RankChart",
    "count_ceiling",
    "nice_ceiling",
    "rank_bars",
    "time_bars",
    "time_lines",
    "timeline",
]

WIDTH = 640
HEIGHT = 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28
_MAX_X_LABELS = 8


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (> 0)."""
    if not 0 < value < 1e300:  # NaN, infinities and values no axis can scale to
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True, slots=True)
class Frame:
    """The plot area inside the viewBox, and the axis labels."""

    left: float
    top: float
    right: float
    bottom: float
    y_ticks: list[Tick]
    x_ticks: list[Tick]


@dataclass(frozen=True, slots=True)
class BarChart:
    frame: Frame
    bars: list[Bar]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT


@dataclass(frozen=True, slots=True)
class Line:
    """One series: ``segments`` are polyline point strings, broken where there is no data."""

    name: str
    css: str
    segments: list[str]
    dots: list[tuple[float, float, str]]


@dataclass(frozen=True, slots=True)
class LineChart:
    frame: Frame
    lines: list[Line]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT


@dataclass(frozen=True, slots=True)
class Rank:
    label: str
    value_text: str
    y: float
    bar_width: float


@dataclass(frozen=True, slots=True)
class RankChart:
    rows: list[Rank]
    width: int
    height: int
    label_width: int
    bar_left: int
    empty: bool = field(default=False)


def _frame(
    top_value: float,
    slots: int,
    slot_label: Callable[[int], str],
    value_text: Callable[[float], str],
) -> Frame:
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    y_ticks = [
        Tick(bottom - (bottom - top) * i / 4, value_text(top_value * i / 4)) for i in range(5)
    ]
    every = max(1, math.ceil(slots / _MAX_X_LABELS))
    slot_width = (right - left) / max(slots, 1)
    x_ticks = [Tick(left + slot_width * (i + 0.5), slot_label(i)) for i in range(0, slots, every)]
    return Frame(left, top, right, bottom, y_ticks, x_ticks)


def count_ceiling(value: float) -> float:
    """A top for a count axis whose four ticks are whole numbers: 4 times 1, 2 or 5 × 10^k."""
    step = 1
    while 4 * step < value:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return float(4 * step)


def time_bars(
    values: Sequence[float],
    slot_label: Callable[[int], str],
    value_text: Callable[[float], str],
    title: Callable[[int, float], str],
) -> BarChart:
    """One bar per time slot (counts), scaled so the axis ticks are whole numbers."""
    top_value = count_ceiling(max(values, default=0.0))
    frame = _frame(top_value, len(values), slot_label, value_text)
    slot_width = (frame.right - frame.left) / max(len(values), 1)
    gap = min(2.0, slot_width * 0.2)
    bars = []
    for i, value in enumerate(values):
        if value <= 0:
            continue
        height = (frame.bottom - frame.top) * value / top_value
        bars.append(
            Bar(
                x=round(frame.left + slot_width * i + gap / 2, 2),
                y=round(frame.bottom - height, 2),
                width=round(slot_width - gap, 2),
                height=round(height, 2),
                title=title(i, value),
            )
        )
    return BarChart(frame=frame, bars=bars, empty=not bars)


def time_lines(
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    slot_label: Callable[[int], str],
    value_text: Callable[[float], str],
    *,
    ceiling: float | None = None,
) -> LineChart:
    """Lines through each slot's middle; ``None`` values leave a gap, and so do NaN and
    infinities (rows written around the server's checks).

    ``series`` items are ``(name, css class, values)``, all the same length.
    """
    series = [(name, css, [_or_none(v) for v in values]) for name, css, values in series]
    present = [v for _, _, values in series for v in values if v is not None]
    top_value = ceiling if ceiling is not None else nice_ceiling(max(present, default=0.0))
    slots = max((len(values) for _, _, values in series), default=0)
    frame = _frame(top_value, slots, slot_label, value_text)
    slot_width = (frame.right - frame.left) / max(slots, 1)
    lines = []
    for name, css, values in series:
        segments: list[str] = []
        dots: list[tuple[float, float, str]] = []
        current: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            x = round(frame.left + slot_width * (i + 0.5), 2)
            y = round(
                frame.bottom - (frame.bottom - frame.top) * min(value, top_value) / top_value, 2
            )
            current.append(f"{x},{y}")
            dots.append((x, y, f"{slot_label(i)}: {value_text(value)}"))
        if current:
            segments.append(" ".join(current))
        lines.append(Line(name=name, css=css, segments=segments, dots=dots))
    return LineChart(frame=frame, lines=lines, empty=not present)


def rank_bars(
    items: Sequence[tuple[str, float]], value_text: Callable[[float], str], *, width: int = WIDTH
) -> RankChart:
    """Horizontal bars, largest first, lengths relative to the largest."""

    # An infinite or NaN value (rows written around the server's checks) gets no bar.
    def size(value: float) -> float:
        return value if math.isfinite(value) else 0.0

    ordered = sorted(items, key=lambda item: size(item[1]), reverse=True)
    label_width, row_height = 180, 26
    bar_left = label_width + 8
    room = width - bar_left - 90
    largest = max((size(value) for _, value in ordered), default=0.0)
    rows = [
        Rank(
            label=label,
            value_text=value_text(value),
            y=i * row_height,
            bar_width=round(room * size(value) / largest, 2) if largest > 0 else 0.0,
        )
        for i, (label, value) in enumerate(ordered)
    ]
    return RankChart(
        rows=rows,
        width=width,
        height=max(row_height, row_height * len(rows)),
        label_width=label_width,
        bar_left=bar_left,
        empty=not rows,
    )


@dataclass(frozen=True, slots=True)
class Span:
    label: str
    y: float
    x: float
    width: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """A Gantt-like chart: one row per node, a bar from its start to its end."""

    spans: list[Span]
    ticks: list[Tick]
    width: int
    height: int
    left: int
    right: int
    empty: bool


def timeline(
    rows: Sequence[tuple[str, float | None, float | None, str]],
    value_text: Callable[[float], str],
    *,
    width: int = WIDTH,
) -> Timeline:
    """``rows`` are ``(label, start offset, duration, status)``; rows never started get no bar."""
    left, right, row_height = 150, width - 40, 22
    end = max(((start or 0.0) + (length or 0.0) for _, start, length, _ in rows), default=0.0)
    top = nice_ceiling(end) if end > 0 else 1.0
    scale = (right - left) / top
    spans = []
    for i, (label, start, length, status) in enumerate(rows):
        if start is None:
            spans.append(
                Span(label, i * row_height, left, 0.0, f"span-{status}", f"{label}: {status}")
            )
            continue
        span = max(length or 0.0, 0.0)
        spans.append(
            Span(
                label=label,
                y=i * row_height,
                x=round(left + start * scale, 2),
                width=round(max(span * scale, 2.0), 2),
                css=f"span-{status}",
                title=f"{label}: {status}, started +{value_text(start)}, took {value_text(span)}",
            )
        )
    ticks = [Tick(left + (right - left) * i / 4, value_text(top * i / 4)) for i in range(5)]
    return Timeline(
        spans=spans,
        ticks=ticks,
        width=width,
        height=row_height * max(len(rows), 1) + 20,
        left=left,
        right=right,
        empty=not rows,
    )
