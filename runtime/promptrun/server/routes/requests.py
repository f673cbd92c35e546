"""Read back the request log: ``/promptrun/v1/requests`` (tests, the CLI, the dashboard).

Each request carries ``cost``, priced as the dashboard prices it (the price it was logged
with, else its tokens at the workspace's price table; ``cost_estimated`` says which), so the
CLI and the dashboard show the same number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from promptrun.server._http import json_response, query_int
from promptrun.server._responses import RequestDetail, RequestList
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import NotFoundError
from promptrun.wire._limits import MAX_ID

if TYPE_CHECKING:
    from promptrun.server.dashboard._prices import PriceTable

__all__ = ["OPERATIONS", "routes"]

routes = web.RouteTableDef()


async def _prices(request: web.Request, workspace: int) -> PriceTable:
    # Imported here: the dashboard package (jinja2) loads only when the app is served.
    from promptrun.server.dashboard._prices import PriceTable

    return PriceTable(await request.app[STORE].model_prices(workspace))


def _priced(item: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    from promptrun.server.dashboard._prices import request_cost

    cost, estimated = request_cost(prices, item)
    return {**item, "cost": cost, "cost_estimated": estimated}


@routes.get("/promptrun/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    """Newest first: ``{"items": [summary, ...], "total": n}``; filter with ``prompt_name``."""
    workspace = await request.app[KEYRING].workspace(request)
    limit = query_int(request, "limit", 50, low=1, high=1000)
    offset = query_int(request, "offset", 0, low=0, high=MAX_ID)
    items, total = await request.app[STORE].list_requests(
        workspace, limit=limit, offset=offset, prompt_name=request.query.get("prompt_name")
    )
    prices = await _prices(request, workspace)
    return json_response({"items": [_priced(item, prices) for item in items], "total": total})


@routes.get("/promptrun/v1/requests/{ref}")
async def get_request(request: web.Request) -> web.Response:
    """One request by server id (digits) or client request id (anything else)."""
    workspace = await request.app[KEYRING].workspace(request)
    raw = request.match_info["ref"]
    ref: int | str = raw
    if raw.isascii() and raw.isdigit():
        ref = int(raw)
        if ref > MAX_ID:
            raise NotFoundError(f"request {raw} not found in this workspace")
    item = await request.app[STORE].get_request(workspace, ref)
    return json_response(_priced(item, await _prices(request, workspace)))


OPERATIONS = [
    Operation(
        method="GET", path="/promptrun/v1/requests", summary="Logged requests, newest first",
        tag="promptrun", response=RequestList,
        params=(
            Param(name="limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
            Param(name="offset", schema={"type": "integer", "minimum": 0, "maximum": MAX_ID}),
            Param(name="prompt_name", schema={"type": "string"}),
        ),
    ),
    Operation(
        method="GET", path="/promptrun/v1/requests/{ref}", summary="One logged request",
        tag="promptrun", response=RequestDetail, errors=(404,),
        params=(
            Param(
                name="ref", where="path", schema={"type": "string"},
                description="the server's id (digits) or the client's request id",
            ),
        ),
    ),
]  # fmt: skip
