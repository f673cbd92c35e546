"""Read back the request log: ``/promptrun/v1/requests`` (tests, the CLI, the dashboard)."""

from __future__ import annotations

from aiohttp import web

from promptrun.server._http import json_response, query_int
from promptrun.server._responses import RequestDetail, RequestList
from promptrun.server._state import KEYRING, STORE
from promptrun.server.dashboard._prices import PriceTable, request_cost
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import NotFoundError
from promptrun.wire._limits import MAX_ID

__all__ = ["OPERATIONS", "routes"]

routes = web.RouteTableDef()


@routes.get("/promptrun/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    """Newest first: ``{"items": [summary, ...], "total": n}``; filter with ``prompt_name``.

    Each summary carries ``cost`` as the dashboard shows it (the logged price, else the
    tokens priced from the workspace's price table, ``cost_estimated``).
    """
    workspace = await request.app[KEYRING].workspace(request)
    limit = query_int(request, "limit", 50, low=1, high=1000)
    offset = query_int(request, "offset", 0, low=0, high=MAX_ID)
    store = request.app[STORE]
    items, total = await store.list_requests(
        workspace, limit=limit, offset=offset, prompt_name=request.query.get("prompt_name")
    )
    prices = PriceTable(await store.model_prices(workspace))
    for item in items:
        item["cost"], item["cost_estimated"] = request_cost(prices, item)
    return json_response({"items": items, "total": total})


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
    return json_response(await request.app[STORE].get_request(workspace, ref))


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
