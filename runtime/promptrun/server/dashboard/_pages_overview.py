"""The overview (charts of requests, latency, errors and cost) and the editable price table."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard import _charts
from promptrun.server.dashboard._format import duration, number, percent, usd
from promptrun.server.dashboard._prices import PriceTable, model_costs
from promptrun.server.dashboard._web import PREFIX, DashboardError, render, session_of
from promptrun.server.store.base import ModelPrice, PageRequest, RequestQuery

__all__ = ["RANGES", "routes"]

routes = web.RouteTableDef()

# range name -> (slots, seconds per slot, strftime for a slot's label)
RANGES: dict[str, tuple[int, int, str]] = {
    "1h": (30, 120, "%H:%M"),
    "24h": (24, 3600, "%H:00"),
    "7d": (28, 6 * 3600, "%a %H:00"),
    "30d": (30, 86400, "%b %d"),
}
_MAX_MODEL = 200
_MAX_PRICE = 1_000_000.0


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    session = session_of(request)
    queries = request.config_dict[STORE]
    range_name = request.query.get("range", "24h")
    if range_name not in RANGES:
        raise DashboardError(400, f"range must be one of {', '.join(RANGES)}")
    slots, step, label_format = RANGES[range_name]
    until = math.ceil(time.time() / step) * step
    since = until - slots * step
    series = await queries.request_series(session.workspace, since=since, until=until, bucket=step)
    # One read of the rollups gives the totals, latency percentiles and cost by model.
    stats = await queries.request_stats(session.workspace, RequestQuery(since=since, until=until))
    prices = PriceTable(await queries.model_prices(session.workspace))

    def label(slot: int) -> str:
        return datetime.fromtimestamp(since + slot * step, UTC).strftime(label_format)

    counts = [float(b.requests) for b in series]
    requests_chart = _charts.time_bars(
        counts, label, number, lambda i, v: f"{label(i)} UTC: {number(v)} requests"
    )
    latency_chart = _charts.time_lines(
        [
            ("p50", "line-mean", [b.p50 if b.requests else None for b in series]),
            ("p95", "line-p95", [b.p95 if b.requests else None for b in series]),
            ("p99", "line-max", [b.p99 if b.requests else None for b in series]),
        ],
        label,
        duration,
    )
    rates = [b.errors / b.requests if b.requests else None for b in series]
    peak_rate = max((r for r in rates if r is not None), default=0.0)
    errors_chart = _charts.time_lines(
        [("error rate", "line-error", rates)],
        label,
        percent,
        ceiling=min(1.0, _charts.nice_ceiling(peak_rate)) if peak_rate else 1.0,
    )
    costs, unpriced = model_costs(stats.usage, prices)
    cost_chart = _charts.rank_bars(costs, usd)
    recent = await queries.request_page(
        session.workspace, RequestQuery(), PageRequest(limit=5), costs={}
    )
    return render(
        request,
        "overview.html",
        nav="overview",
        range_name=range_name,
        ranges=list(RANGES),
        requests_chart=requests_chart,
        latency_chart=latency_chart,
        errors_chart=errors_chart,
        cost_chart=cost_chart,
        unpriced=unpriced,
        stats=stats,
        error_rate=stats.errors / stats.requests if stats.requests else None,
        total_cost=sum(cost for _, cost in costs),
        tokens=stats.input_tokens + stats.output_tokens,
        recent=recent.items,
    )


@routes.get("/prices")
async def price_page(request: web.Request) -> web.Response:
    return await _prices_page(request)


async def _prices_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    session = session_of(request)
    queries = request.config_dict[STORE]
    table = PriceTable(await queries.model_prices(session.workspace))
    usage = await queries.usage_by_model(session.workspace)
    seen_unpriced = sorted({u.model for u in usage if u.model and table.price_of(u.model) is None})
    return render(
        request,
        "prices.html",
        status=status,
        nav="prices",
        rows=table.rows(),
        unpriced=seen_unpriced,
        error=error,
        saved=request.query.get("saved", ""),
    )


def _price(raw: object, what: str) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise DashboardError(400, f"{what} must be a number of dollars, like 2.50") from None
    if not 0 <= value <= _MAX_PRICE or math.isnan(value):
        raise DashboardError(400, f"{what} must be between 0 and {_MAX_PRICE:,.0f} dollars")
    return value


@routes.post("/prices")
async def set_price(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await request.post()
    model = str(form.get("model", "")).strip()
    try:
        if not model or len(model) > _MAX_MODEL:
            raise DashboardError(400, f"The model name must be 1 to {_MAX_MODEL} characters.")
        price = ModelPrice(
            model,
            _price(form.get("input_per_million", ""), "The input price"),
            _price(form.get("output_per_million", ""), "The output price"),
        )
    except DashboardError as exc:
        return await _prices_page(request, error=exc.message, status=400)
    await request.config_dict[STORE].set_model_price(session.workspace, price)
    raise web.HTTPSeeOther(f"{PREFIX}/prices?{urlencode({'saved': model})}")


@routes.post("/prices/reset")
async def reset_price(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await request.post()
    model = str(form.get("model", "")).strip()
    await request.config_dict[STORE].delete_model_price(session.workspace, model)
    raise web.HTTPSeeOther(f"{PREFIX}/prices")
