"""The PromptLayer logging endpoints: track and log requests, scores, metadata, groups.

Status codes are the ones the peer SDK insists on: ``/track-request`` 200, ``/log-request``
201, the rest 200. ``request_id`` in the ``track.*`` bodies may be the server's id or, for
records that came through ``/promptrun/v1/ingest``, the client's own id.

An ``Idempotency-Key`` header names a record (or a ``track.*`` call) by its client id: sent
again, it is not stored (applied) again, and gets the answer the first one got. promptrun's
client sends it; the peer SDK does not, and each of its requests is a new record.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._bodies import takes_records
from promptrun.server._http import ApiError, json_response
from promptrun.server._records import TRACK_BODIES, log_row, track_call, track_row
from promptrun.server._responses import GroupCreated, LoggedRequest, Success, TrackedRequest
from promptrun.server._state import KEYRING, STORE
from promptrun.server.auth import authorized_body
from promptrun.server.openapi import Operation, Param
from promptrun.wire._limits import MAX_NAME
from promptrun.wire.tracking import (
    IDEMPOTENCY_KEY,
    TRACK_PATHS,
    CreateGroupBody,
    LogRequestBody,
    TrackEndpoint,
    TrackRequestBody,
)

__all__ = ["OPERATIONS", "routes"]

routes = web.RouteTableDef()

_TRACK_BODY = msgspec.json.Decoder(TrackRequestBody)
_LOG_BODY = msgspec.json.Decoder(LogRequestBody)
_GROUP_BODY = msgspec.json.Decoder(CreateGroupBody)
_SUCCESS = msgspec.json.encode({"success": True})


def _client_id(request: web.Request) -> str | None:
    """The record's client id from its ``Idempotency-Key`` header (None: none was sent)."""
    value = request.headers.get(IDEMPOTENCY_KEY)
    if value is not None and not 0 < len(value) <= MAX_NAME:
        raise ApiError(
            400,
            f"the {IDEMPOTENCY_KEY} header must be 1 to {MAX_NAME} characters (a client's id "
            f"for the record, such as req_...), got {len(value)}; send it, or leave it out",
        )
    return value


@routes.post("/track-request")
@takes_records
async def track_request(request: web.Request) -> web.Response:
    workspace, body = await authorized_body(request, request.app[KEYRING], _TRACK_BODY)
    client_id = _client_id(request)  # after the key: a stranger learns nothing
    row, blueprint = track_row(body, client_request_id=client_id)
    request_id = await request.app[STORE].insert_request(workspace, row)
    return json_response({"success": True, "request_id": request_id, "prompt_blueprint": blueprint})


@routes.post("/log-request")
@takes_records
async def log_request(request: web.Request) -> web.Response:
    workspace, body = await authorized_body(request, request.app[KEYRING], _LOG_BODY)
    client_id = _client_id(request)  # after the key: a stranger learns nothing
    row, blueprint = log_row(body, client_request_id=client_id)
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
        workspace, body = await authorized_body(request, request.app[KEYRING], decoder)
        client_id = _client_id(request)
        await request.app[STORE].track(
            workspace, track_call(endpoint, body, client_call_id=client_id)
        )
        return web.Response(body=_SUCCESS, content_type="application/json")

    return handler


for _endpoint, _path in TRACK_PATHS.items():
    routes.post(_path)(_track_handler(_endpoint))


@routes.post("/create-group")
async def create_group(request: web.Request) -> web.Response:
    workspace, _ = await authorized_body(request, request.app[KEYRING], _GROUP_BODY)
    group_id = await request.app[STORE].create_group(workspace)
    return json_response({"success": True, "id": group_id})


_IDEMPOTENCY = Param(
    name=IDEMPOTENCY_KEY,
    where="header",
    schema={"type": "string", "minLength": 1, "maxLength": MAX_NAME},
    description="The client's id for this record or call: sent again, it is not stored or "
    "applied again, and is answered as the first time",
)

OPERATIONS = [
    Operation(
        method="POST", path="/track-request", tag="logging",
        summary="Log a provider call as run() reports it", request=TrackRequestBody,
        response=TrackedRequest, errors=(404,), params=(_IDEMPOTENCY,),
    ),
    Operation(
        method="POST", path="/log-request", success=201, tag="logging",
        summary="Log a request made outside run()", request=LogRequestBody,
        response=LoggedRequest, errors=(404,), params=(_IDEMPOTENCY,),
    ),
    *(
        Operation(
            method="POST", path=path, tag="logging", summary=f"track.{endpoint}: on a request",
            request=TRACK_BODIES[endpoint], response=Success, errors=(404,),
            params=(_IDEMPOTENCY,),
        )
        for endpoint, path in TRACK_PATHS.items()
    ),
    Operation(
        method="POST", path="/create-group", tag="logging", summary="A new request group",
        request=CreateGroupBody, request_required=False, response=GroupCreated,
    ),
]  # fmt: skip
