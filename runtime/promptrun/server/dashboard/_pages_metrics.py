"""Per prompt and version: requests, errors, latency percentiles, tokens, cost, mean score."""

from __future__ import annotations

import math
import time

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard._pages_requests import version_view
from promptrun.server.dashboard._prices import PriceTable
from promptrun.server.dashboard._web import DashboardError, render, session_of

__all__ = ["RANGES", "routes"]

routes = web.RouteTableDef()
RANGES = {"24h": 1, "7d": 7, "30d": 30}  # whole UTC days back, today included
_DAY = 86400


@routes.get("/requests/prompts")
async def prompt_metrics(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    range_name = request.query.get("range", "7d")
    if range_name not in RANGES:
        raise DashboardError(400, f"range must be one of {', '.join(RANGES)}")
    # The per-prompt rollup is daily: a range is whole UTC days, today's so far included.
    since = (math.floor(time.time() / _DAY) - RANGES[range_name] + 1) * _DAY
    prices = PriceTable(await store.model_prices(session.workspace))
    metrics = await store.prompt_metrics(session.workspace, since=since, until=None)
    return render(
        request,
        "prompt_metrics.html",
        nav="requests",
        range_name=range_name,
        ranges=list(RANGES),
        since=since,
        rows=[version_view(m, prices) for m in metrics],
    )
