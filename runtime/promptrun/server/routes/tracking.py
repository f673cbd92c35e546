"""The PromptLayer logging endpoints: track and log requests, scores, metadata, groups.

Status codes are the ones the peer SDK insists on: ``/track-request`` 200, ``/log-request``
201, the rest 200. ``request_id`` in the ``track.*`` bodies may be the server's id or, for
records that came through ``/promptrun/v1/ingest``, the client's own id.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._http import json_response, read_body
from promptrun.server._records import TRACK_BODIES, log_row, track_call, track_row
from promptrun.server._state import KEYRING, STORE
from promptrun.server.store.base import TrackEndpoint
from promptrun.wire.tracking import CreateGroupBody, LogRequestBody, TrackRequestBody

__all__ = ["routes"]

routes = web.RouteTableDef()

_TRACK_BODY = msgspec.json.Decoder(TrackRequestBody)
_LOG_BODY = msgspec.json.Decoder(LogRequestBody)
_GROUP_BODY = msgspec.json.Decoder(CreateGroupBody)
_SUCCESS = msgspec.json.encode({"success": True})


@routes.post("/track-request")
async def track_request(request: web.Request) -> web.Response:
    body = await read_body(request, _TRACK_BODY)
    workspace = await request.app[KEYRING].workspace(request, body.api_key)
    row, blueprint = track_row(body)
    request_id = await request.app[STORE].insert_request(workspace, row)
    return json_response({"success": True, "request_id": request_id, "prompt_blueprint": blueprint})


@routes.post("/log-request")
async def log_request(request: web.Request) -> web.Response:
    body = await read_body(request, _LOG_BODY)
    workspace = await request.app[KEYRING].workspace(request, body.api_key)
    row, blueprint = log_row(body)
    request_id = await request.app[STORE].insert_request(workspace, row)
    return json_response(
        {
            "id": request_id,
            "request_id": request_id,
            "prompt_version": {
                "prompt_template": blueprint["prompt_template"],
                "metadata": blueprint["metadata"],
            },
        },
        status=201,
    )


def _track_handler(endpoint: TrackEndpoint) -> Handler:
    decoder = msgspec.json.Decoder(TRACK_BODIES[endpoint])

    async def handler(request: web.Request) -> web.Response:
        body = await read_body(request, decoder)
        workspace = await request.app[KEYRING].workspace(request, body.api_key)
        await request.app[STORE].track(workspace, track_call(endpoint, body))
        return web.Response(body=_SUCCESS, content_type="application/json")

    return handler


for _endpoint in TRACK_BODIES:
    _path = "/track-group" if _endpoint == "group" else f"/library-track-{_endpoint}"
    routes.post(_path)(_track_handler(_endpoint))


@routes.post("/create-group")
async def create_group(request: web.Request) -> web.Response:
    body = await read_body(request, _GROUP_BODY)
    workspace = await request.app[KEYRING].workspace(request, body.api_key)
    group_id = await request.app[STORE].create_group(workspace)
    return json_response({"success": True, "id": group_id})
