"""The request list's matches as CSV or JSONL, streamed a page of the store at a time.

Nothing is built in memory: each page of ``_CHUNK`` requests is written to the response as it
is read, in the list's order, with the cost the list shows and the conversation's text. A
client that goes away ends the export. CSV cells that a spreadsheet would run as a formula
(``=``, ``+``, ``-``, ``@``, tab, carriage return first) get a ``'`` in front.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard._log_query import LogAddress, parse_address
from promptrun.server.dashboard._pages_requests import priced
from promptrun.server.dashboard._previews import input_output
from promptrun.server.dashboard._prices import PriceTable, token_prices
from promptrun.server.dashboard._web import session_of
from promptrun.server.store.base import PageRequest

__all__ = ["CSV_COLUMNS", "routes"]

routes = web.RouteTableDef()
_CHUNK = 500
CSV_COLUMNS = (
    "id", "client_request_id", "start_time", "end_time", "latency_seconds", "prompt_name",
    "prompt_version", "provider", "model", "status", "error_type", "error_message",
    "input_tokens", "output_tokens", "cost_usd", "cost_estimated", "score", "tags", "metadata",
    "input", "output",
)  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_encode = msgspec.json.Encoder()


def _iso(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            pass
    return "" if value is None else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _json_text(value) if isinstance(value, dict | list) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _json_text(value: Any) -> str:
    try:
        return _encode.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _record(item: dict[str, Any]) -> dict[str, Any]:
    sent, received = input_output(item)
    return {**item, "input": sent, "output": received}


def csv_lines(items: Iterable[dict[str, Any]], *, header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for item in items:
        record = _record(item)
        writer.writerow(
            [
                _cell(record.get("id")),
                _cell(record.get("client_request_id")),
                _iso(record.get("request_start_time")),
                _iso(record.get("request_end_time")),
                _cell(record.get("latency")),
                _cell(record.get("prompt_name")),
                _cell(record.get("prompt_version")),
                _cell(record.get("provider")),
                _cell(record.get("model")),
                _cell(record.get("status")),
                _cell(record.get("error_type")),
                _cell(record.get("error_message")),
                _cell(record.get("input_tokens")),
                _cell(record.get("output_tokens")),
                _cell(record.get("cost")),
                _cell(record.get("cost_estimated")),
                _cell(record.get("score")),
                _cell(record.get("tags")),
                _cell(record.get("metadata")),
                _cell(record["input"]),
                _cell(record["output"]),
            ]
        )
    return out.getvalue()


def jsonl_lines(items: Iterable[dict[str, Any]]) -> str:
    lines = []
    for item in items:
        record = _record(item)
        try:
            lines.append(_encode.encode(record).decode())
        except (TypeError, ValueError, OverflowError):  # an odd stored value: as text
            lines.append(_encode.encode({k: _json_safe(v) for k, v in record.items()}).decode())
    return "".join(line + "\n" for line in lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


async def _export(request: web.Request, kind: str) -> web.StreamResponse:
    session = session_of(request)
    store = request.config_dict[STORE]
    address: LogAddress = parse_address(request.query)
    prices = PriceTable(await store.model_prices(session.workspace))
    costs = token_prices(prices, (await store.request_facets(session.workspace))["models"])
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8"
            if kind == "csv"
            else "application/x-ndjson; charset=utf-8",
            "Content-Disposition": f'attachment; filename="requests-{stamp}.{kind}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    page = PageRequest(sort=address.page.sort, descending=address.page.descending, limit=_CHUNK)
    first = True
    while True:
        found = await store.request_page(
            session.workspace, address.query, page, costs=costs, with_blueprints=True
        )
        items = [priced(item, prices) for item in found.items]
        text = csv_lines(items, header=first) if kind == "csv" else jsonl_lines(items)
        if text:
            await response.write(text.encode())
        first = False
        if found.after is None:
            break
        page = PageRequest(
            sort=found.sort, descending=page.descending, after=found.after, limit=_CHUNK
        )
    await response.write_eof()
    return response


@routes.get("/requests/export.csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "csv")


@routes.get("/requests/export.jsonl")
async def export_jsonl(request: web.Request) -> web.StreamResponse:
    return await _export(request, "jsonl")
