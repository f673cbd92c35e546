"""``GET /health``: answers once the store is open (no key needed)."""

from __future__ import annotations

from aiohttp import web

from promptrun.server._http import json_response

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})
