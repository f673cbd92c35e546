"""Read back the request log: ``/promptrun/v1/requests`` (tests, the CLI, the dashboard)."""

from __future__ import annotations

from aiohttp import web

from promptrun.server._http import json_response, query_int
from promptrun.server._state import KEYRING, STORE

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/promptrun/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    """Newest first: ``{"items": [summary, ...], "total": n}``; filter with ``prompt_name``."""
    workspace = await request.app[KEYRING].workspace(request)
    limit = query_int(request, "limit", 50, low=1, high=1000)
    offset = query_int(request, "offset", 0, low=0)
    items, total = await request.app[STORE].list_requests(
        workspace, limit=limit, offset=offset, prompt_name=request.query.get("prompt_name")
    )
    return json_response({"items": items, "total": total})


@routes.get("/promptrun/v1/requests/{ref}")
async def get_request(request: web.Request) -> web.Response:
    """One request by server id (digits) or client request id (anything else)."""
    workspace = await request.app[KEYRING].workspace(request)
    raw = request.match_info["ref"]
    ref: int | str = int(raw) if raw.isdigit() else raw
    return json_response(await request.app[STORE].get_request(workspace, ref))
