"""How numbers, times and money read on the dashboard (jinja filters).

Each filter takes whatever a stored row holds and never raises: a row written before the server
checked numbers, or written to the database by hand, may hold text, bytes, NaN or infinities
where a number belongs. Those read as a dash, or as the raw value marked as not a time.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FILTERS",
    "dollars",
    "duration",
    "number",
    "percent",
    "pretty_json",
    "usd",
    "when",
    "when_input",
]

_DASH = "—"
_HUGE = 1e15  # past this, digits stop meaning anything: scientific notation


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a number one can show."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past what a float holds
        return None
    return number if math.isfinite(number) else None


def when(epoch: Any) -> str:
    """``2025-06-01 12:03:04 UTC``; a dash when unknown."""
    seconds = _finite(epoch)
    if seconds is None:
        return _DASH if epoch is None else f"{str(epoch)[:40]} (not a time)"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"{seconds:.6g} (not a time)"


def when_input(epoch: Any) -> str:
    """``2025-06-01T12:03``, as a datetime-local field takes it (UTC); empty when unknown."""
    seconds = _finite(epoch)
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M")
    except (ValueError, OverflowError, OSError):
        return ""


def duration(seconds: Any) -> str:
    value = _finite(seconds)
    if value is None or value < 0:
        return _DASH
    if value == 0:
        return "0 ms"
    if value < 0.001:
        return "<1 ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s"
    if value >= _HUGE:
        return f"{value:.3g} s"
    minutes, rest = divmod(value, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


def usd(value: Any) -> str:
    """Dollars: cents from a dollar up, four significant digits below (``$0.0225``)."""
    amount = _finite(value)
    if amount is None:
        return _DASH
    if amount == 0:
        return "$0"
    if abs(amount) >= _HUGE:
        return f"${amount:.3g}"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    if abs(amount) < 1e-6:
        return "<$0.000001"
    digits = 3 - math.floor(math.log10(abs(amount)))
    return "$" + _two_decimals(f"{amount:.{digits}f}".rstrip("0"))


def _two_decimals(text: str) -> str:
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def dollars(value: float) -> str:
    """A price per million tokens: ``2.50``, ``0.075``."""
    return _two_decimals(f"{value:.6f}".rstrip("0"))


def number(value: Any) -> str:
    amount = _finite(value)
    if amount is None:
        return _DASH
    if abs(amount) >= _HUGE:
        return f"{amount:.3g}"
    return f"{amount:,.0f}" if amount.is_integer() else f"{amount:,.2f}"


def percent(value: Any) -> str:
    share = _finite(value)
    return _DASH if share is None else f"{share * 100:.1f}%"


def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (RecursionError, TypeError, ValueError):
        # Nested too deeply, or keys that cannot be sorted together: still show something.
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (RecursionError, TypeError, ValueError):
            return "(a value too deeply nested to show)"


FILTERS = {
    "when": when,
    "when_input": when_input,
    "duration": duration,
    "usd": usd,
    "dollars": dollars,
    "number": number,
    "percent": percent,
    "pretty_json": pretty_json,
}
