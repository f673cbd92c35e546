"""How numbers, times and money read on the dashboard (jinja filters)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

__all__ = ["FILTERS", "dollars", "duration", "number", "percent", "pretty_json", "usd", "when"]


def when(epoch: float | None) -> str:
    """``2025-06-01 12:03:04 UTC``; a dash when unknown."""
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "—"
    if seconds == 0:
        return "0 ms"
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


def usd(value: float | None) -> str:
    """Dollars: cents from a dollar up, four significant digits below (``$0.0225``)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) < 1e-6:
        return "<$0.000001"
    digits = 3 - math.floor(math.log10(abs(value)))
    return "$" + _two_decimals(f"{value:.{digits}f}".rstrip("0"))


def _two_decimals(text: str) -> str:
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def dollars(value: float) -> str:
    """A price per million tokens: ``2.50``, ``0.075``."""
    return _two_decimals(f"{value:.6f}".rstrip("0"))


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


FILTERS = {
    "when": when,
    "duration": duration,
    "usd": usd,
    "dollars": dollars,
    "number": number,
    "percent": percent,
    "pretty_json": pretty_json,
}
