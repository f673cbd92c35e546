"""``POST /v1/traces``: the OTLP/HTTP traces endpoint, so OpenTelemetry SDKs export here.

Point any OTLP/HTTP exporter at ``{server}/v1/traces`` with the API key in ``X-Api-Key`` (or
``Authorization: Bearer``): the PromptLayer SDK's ``enable_tracing=True`` does exactly that.
Binary protobuf and JSON, gzip or not. Answers follow the OTLP specification, in the
request's encoding:

- 200 with an ``ExportTraceServiceResponse``: empty when every span was stored (or was stored
  before: spans are idempotent by trace and span id), else ``partial_success`` with the number
  of spans refused and why (the others are stored);
- 400 for a body that is not an ``ExportTraceServiceRequest`` (or not valid gzip), 401 for a
  missing or unknown key, 413 for a body over ``--max-body-bytes`` (after decompression), 415
  for another content type, each with a ``google.rpc.Status`` saying what was wrong; these
  are not retried;
- 429 (this workspace) or 503 (the server) with ``Retry-After`` when more spans wait to be
  stored than ``--max-pending-spans`` allows: the exporter retries after that many seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiohttp import web

from promptrun.server import otlp
from promptrun.server._bodies import read_body_bytes
from promptrun.server._http import ApiError, errors_as
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation
from promptrun.server.otlp_json import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    RpcStatus,
)
from promptrun.server.store.base import SpanRow

__all__ = ["BACKLOG", "OPERATIONS", "TRACES_PATH", "SpanBacklog", "routes"]

log = logging.getLogger("promptrun.server")

TRACES_PATH = "/v1/traces"
_DECODE_ON_LOOP_BYTES = 32 * 1024
RETRY_AFTER = "1"
# gRPC status codes for the google.rpc.Status of a failed export.
INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, UNAUTHENTICATED = 3, 8, 14, 16
_ENCODINGS: dict[str, otlp.Encoding] = {
    "application/x-protobuf": otlp.PROTOBUF,
    "application/protobuf": otlp.PROTOBUF,
    "application/json": otlp.JSON,
}


class SpanBacklog:
    """Spans received and not yet stored, in all and per workspace, within a limit.

    One workspace may hold at most half of it (past that its exports get a 429), so one busy
    sender cannot keep the others out; past the whole limit everyone gets a 503. A request
    is always let in when nothing of its kind is waiting, however large, so the limit slows
    senders down and never refuses a batch for good.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self._by_workspace: Counter[int] = Counter()

    def refusal(self, workspace: int, spans: int) -> int | None:
        """The status refusing ``spans`` more from ``workspace`` now (429 or 503), or None."""
        mine = self._by_workspace[workspace]
        if mine and mine + spans > max(1, self.limit // 2):
            return 429
        if self.pending and self.pending + spans > self.limit:
            return 503
        return None

    def take(self, workspace: int, spans: int) -> None:
        self.pending += spans
        self._by_workspace[workspace] += spans

    def give_back(self, workspace: int, spans: int) -> None:
        self.pending -= spans
        self._by_workspace[workspace] -= spans
        if not self._by_workspace[workspace]:
            del self._by_workspace[workspace]


BACKLOG = web.AppKey("promptrun_span_backlog", SpanBacklog)

routes = web.RouteTableDef()


_CODES = {401: UNAUTHENTICATED, 429: RESOURCE_EXHAUSTED, 503: UNAVAILABLE}
INTERNAL = 13


def _encoding_of(request: web.Request) -> otlp.Encoding:
    return _ENCODINGS.get(request.content_type, otlp.JSON)


def otlp_error(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A failed export's answer: a ``google.rpc.Status`` in the request's encoding."""
    code = _CODES.get(status, INTERNAL if status >= 500 else INVALID_ARGUMENT)
    encoding = _encoding_of(request)
    response = web.Response(
        body=otlp.encode_status(encoding, code, message), status=status, content_type=encoding
    )
    if headers:
        response.headers.update(headers)
    return response


def _retry_later(status: int, who: str) -> ApiError:
    return ApiError(
        status,
        f"{who} too many spans waiting to be stored; retry after the Retry-After seconds",
        headers={"Retry-After": RETRY_AFTER},
    )


@routes.post(TRACES_PATH)
@errors_as(otlp_error)
async def export_traces(request: web.Request) -> web.Response:
    encoding = _ENCODINGS.get(request.content_type)
    if encoding is None:
        raise ApiError(
            415,
            f"Content-Type {request.content_type!r} is not OTLP: send application/x-protobuf "
            "or application/json",
        )
    try:
        workspace = await request.app[KEYRING].workspace(request)  # before the body is read
    except ApiError as exc:
        missing = "missing" if exc.message.startswith("missing") else "unknown"
        raise ApiError(
            401,
            f"{missing} API key: send a key of this server in the X-Api-Key header or as "
            "Authorization: Bearer <key> (OTEL_EXPORTER_OTLP_HEADERS=x-api-key=<key>)",
        ) from None
    raw = await read_body_bytes(request)
    try:
        if len(raw) > _DECODE_ON_LOOP_BYTES:
            # A large export takes tens of milliseconds to decode (a 4 MiB one, about half a
            # second): off the event loop, so other requests are answered meanwhile.
            decoded = await asyncio.to_thread(otlp.decode_request, raw, encoding)
        else:
            decoded = otlp.decode_request(raw, encoding)
    except otlp.ProtobufUnavailable as exc:
        raise ApiError(415, exc.message) from None
    except otlp.OtlpError as exc:
        raise ApiError(400, exc.message) from None
    if decoded.spans:
        await _store(request, workspace, decoded.spans)
    body = otlp.encode_response(encoding, decoded.rejected, decoded.message())
    return web.Response(body=body, content_type=encoding)


async def _store(request: web.Request, workspace: int, spans: list[SpanRow]) -> None:
    """Store the spans, unless too many wait already (then a 429 or 503 to retry later)."""
    backlog = request.app[BACKLOG]
    refusal = backlog.refusal(workspace, len(spans))
    if refusal is not None:
        raise _retry_later(refusal, "this workspace has" if refusal == 429 else "the server has")
    backlog.take(workspace, len(spans))
    try:
        await request.app[STORE].insert_spans(workspace, spans)
    except Exception:
        log.exception("storing %d spans failed", len(spans))
        raise ApiError(
            503,
            "the spans could not be stored (the server log has the details); retry later",
            headers={"Retry-After": RETRY_AFTER},
        ) from None
    finally:
        backlog.give_back(workspace, len(spans))


def setup_otlp(app: web.Application, max_pending_spans: int) -> None:
    app[BACKLOG] = SpanBacklog(max_pending_spans)


_PROTOBUF_BODY: dict[str, Any] = {"type": "string", "format": "binary"}

OPERATIONS = [
    Operation(
        method="POST", path=TRACES_PATH, tag="tracing",
        summary="Receive OpenTelemetry spans (OTLP/HTTP, protobuf or JSON, gzip or not)",
        request=ExportTraceServiceRequest, response=ExportTraceServiceResponse,
        error_schema=RpcStatus, errors=(415, 429, 503),
        other_content={"application/x-protobuf": _PROTOBUF_BODY},
        description="OTLP/HTTP as the OpenTelemetry specification describes it: answers are "
        "in the request's encoding, failures are a google.rpc.Status, a partial success "
        "says how many spans were refused and why. 429 and 503 carry Retry-After.",
    ),
]  # fmt: skip
