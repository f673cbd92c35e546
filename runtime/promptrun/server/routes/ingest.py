"""promptrun's own ingestion endpoints (see :mod:`promptrun.wire.ingest` for the protocol).

A batch is checked record by record; the ones that pass are stored in one write, in order,
so a ``track_call`` naming a client id earlier in the same batch finds it.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from promptrun._version import __version__
from promptrun.server._bodies import takes_records
from promptrun.server._http import ApiError, json_response, read_body
from promptrun.server._records import TRACK_BODIES, log_row, track_call, track_row
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation
from promptrun.server.store.base import Rejected, RequestRow, TrackCall
from promptrun.wire._limits import MAX_NAME
from promptrun.wire.ingest import (
    INFO_PATH,
    INGEST_PATH,
    IngestBatch,
    IngestResponse,
    LogRecord,
    ServerInfo,
    TrackCallRecord,
    TrackRecord,
)
from promptrun.wire.tracking import LogRequestBody, TrackRequestBody

__all__ = ["FEATURES", "OPERATIONS", "routes"]

FEATURES = ["ingest", "client-request-ids"]

routes = web.RouteTableDef()

_BATCH = msgspec.json.Decoder(IngestBatch)
# As a dict: ServerInfo omits defaults, and "server": "promptrun" is the point of the answer.
_INFO = msgspec.json.encode(
    msgspec.structs.asdict(ServerInfo(version=__version__, features=FEATURES))
)

_Item = RequestRow | TrackCall | Rejected


def _prepare(record: TrackRecord | LogRecord | TrackCallRecord) -> _Item:
    client_id = record.client_request_id
    if not client_id or len(client_id) > MAX_NAME:
        return Rejected(client_id, f"client_request_id must be 1 to {MAX_NAME} characters")
    try:
        if isinstance(record, TrackRecord):
            body = msgspec.convert(record.body, TrackRequestBody)
            return track_row(body, client_request_id=client_id)[0]
        if isinstance(record, LogRecord):
            log_body = msgspec.convert(record.body, LogRequestBody)
            return log_row(log_body, client_request_id=client_id)[0]
        call_body = msgspec.convert(record.body, TRACK_BODIES[record.endpoint])
        return track_call(record.endpoint, call_body, client_call_id=client_id)
    except msgspec.ValidationError as exc:
        return Rejected(client_id, f"invalid body: {exc}")
    except ApiError as exc:
        return Rejected(client_id, exc.message)


@routes.get(INFO_PATH)
async def info(request: web.Request) -> web.Response:
    return web.Response(body=_INFO, content_type="application/json")


@routes.post(INGEST_PATH)
@takes_records
async def ingest(request: web.Request) -> web.Response:
    # The key comes from a header here, so an unknown client is refused before the body is read.
    workspace = await request.app[KEYRING].workspace(request)
    batch = await read_body(request, _BATCH)
    results = await request.app[STORE].ingest(workspace, [_prepare(r) for r in batch.records])
    return json_response(IngestResponse(results))


OPERATIONS = [
    Operation(
        method="GET", path=INFO_PATH, summary="What this server is and which features it has",
        tag="promptrun", response=ServerInfo, auth=False,
    ),
    Operation(
        method="POST", path=INGEST_PATH, summary="Store a batch of log records, idempotently",
        tag="promptrun", request=IngestBatch, response=IngestResponse,
        description="One result per record, in order: stored, duplicate (by client id) or "
        "rejected (with the reason; the rest of the batch is still stored).",
    ),
]  # fmt: skip
