"""``GET /health``: answers once the store is open (no key needed)."""

from __future__ import annotations

from aiohttp import web

from promptrun.server._http import json_response
from promptrun.server._responses import Health
from promptrun.server.openapi import Operation

__all__ = ["OPERATIONS", "routes"]

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


OPERATIONS = [
    Operation(
        method="GET", path="/health", summary="Whether the server is up", tag="promptrun",
        response=Health, auth=False,
    ),
]  # fmt: skip
