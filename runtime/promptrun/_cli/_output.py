"""How the subcommands print for people: aligned tables with headers, colour on a terminal
only (``NO_COLOR`` respected), links to the dashboard, a conversation's messages, costs.

What they print for programs (``--json``) is :func:`promptrun._cli._common.print_json`.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlencode

from promptrun._http import segment

__all__ = [
    "Column",
    "Table",
    "clean",
    "colour_enabled",
    "cost_text",
    "dashboard_url",
    "message_lines",
    "paint",
    "request_ref",
    "status_colour",
    "utc",
]

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}
_STATUS = {
    "SUCCESS": "green",
    "ERROR": "red",
    "FAILED": "red",
    "WARNING": "yellow",
    "RUNNING": "blue",
    "QUEUED": "dim",
}


# Control characters (escape sequences could move the cursor, retitle or clear the terminal)
# and bidirectional overrides, written out visibly; newlines and tabs are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` safe to print to a terminal: what the server stores came from any client (or
    from a model's answer), so control characters are shown as ``\\x1b``, not obeyed."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def colour_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set (https://no-color.org) or on a
    dumb terminal."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str | None, on: bool) -> str:
    if not on or not colour or not text:
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


def status_colour(status: str) -> str | None:
    return _STATUS.get(status.upper())


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    right: bool = False
    #: The colour of a cell, from its text (None: plain).
    colour: Callable[[str], str | None] | None = None
    #: The narrowest the column gets, so rows printed later (``--follow``) still line up.
    width: int = 0


class Table:
    """Rows under a header, each column as wide as its widest cell so far.

    :meth:`print` lays out what it is given; rows printed later with :meth:`print_rows` keep
    those widths (a longer cell pushes its line out rather than re-flowing what is printed).
    """

    def __init__(self, columns: Sequence[Column], stream: TextIO | None = None) -> None:
        self._columns = list(columns)
        self._stream = stream or sys.stdout
        self._colour = colour_enabled(self._stream)
        self._widths = [max(len(c.header), c.width) for c in self._columns]

    def print(self, rows: Sequence[Sequence[str]]) -> None:
        """The header and ``rows``."""
        for row in rows:
            cells = [clean(cell).replace("\n", " ") for cell in row]
            self._widths = [max(w, len(c)) for w, c in zip(self._widths, cells, strict=True)]
        header = [c.header for c in self._columns]
        self._line(header, bold=True)
        self.print_rows(rows)

    def print_rows(self, rows: Sequence[Sequence[str]]) -> None:
        for row in rows:
            self._line(row)
        self._stream.flush()

    def _line(self, cells: Sequence[str], *, bold: bool = False) -> None:
        out = []
        last = len(cells) - 1
        cells = [clean(cell).replace("\n", " ") for cell in cells]
        for i, (column, cell, width) in enumerate(
            zip(self._columns, cells, self._widths, strict=True)
        ):
            padded = cell.rjust(width) if column.right else cell if i == last else cell.ljust(width)
            colour = "bold" if bold else (column.colour(cell) if column.colour else None)
            out.append(paint(padded, colour, self._colour))
        self._stream.write("  ".join(out).rstrip() + "\n")


def dashboard_url(base_url: str, path: str, query: dict[str, Any] | None = None) -> str | None:
    """The dashboard page at ``path`` of a ``promptrun serve`` at ``base_url``; None for the
    hosted PromptLayer API, whose web app lives elsewhere."""
    from promptrun._config import DEFAULT_BASE_URL

    if base_url.rstrip("/") == DEFAULT_BASE_URL.rstrip("/"):
        return None
    url = f"{base_url.rstrip('/')}/dashboard{path}"
    return f"{url}?{urlencode(query)}" if query else url


def request_ref(text: str) -> str:
    """A request id as the API takes it: ``#155`` and ``155`` are the server's id, anything
    else (``req_...``) the client's; quoted for a URL path."""
    ref = text.strip()
    if ref.startswith("#") and ref[1:].isdigit():
        ref = ref[1:]
    return segment(ref)


def utc(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def cost_text(cost: Any, estimated: bool = False) -> str:
    """Dollars as the dashboard writes them (cents from a dollar up, four significant digits
    below: ``$0.00001875``), ``~`` before an estimate from the price table; ``-`` unpriced."""
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        return "-"
    sign = "~" if estimated else ""
    if cost == 0:
        return f"{sign}$0"
    if abs(cost) >= 1:
        return f"{sign}${cost:,.2f}"
    if abs(cost) < 1e-6:
        return f"{sign}<$0.000001"
    digits = 3 - math.floor(math.log10(abs(cost)))
    whole, _, decimals = f"{cost:.{digits}f}".rstrip("0").partition(".")
    return f"{sign}${whole}.{decimals.ljust(2, '0')}"


def message_lines(prompt_template: Any) -> list[str]:
    """A prompt template's messages as ``[role]`` then its text (tool calls written out);
    a completion template as ``[prompt]``."""
    if not isinstance(prompt_template, dict):
        return []
    messages = prompt_template.get("messages")
    if not isinstance(messages, list):
        messages = [{"role": "prompt", "content": prompt_template.get("content")}]
    lines: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        texts = [
            str(part.get("text") or "")
            for part in message.get("content") or ()
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        for call in message.get("tool_calls") or ():
            function = (call.get("function") or {}) if isinstance(call, dict) else {}
            texts.append(f"[tool call] {function.get('name')}({function.get('arguments') or ''})")
        lines.append(clean(f"[{message.get('role')}]"))
        lines.extend(clean("\n".join(texts)).splitlines() or [""])
    return lines
