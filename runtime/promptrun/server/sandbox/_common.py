"""What every sandbox provider route does around its reply.

Keys, statistics, per-request overrides, injected failures, latency, and sending JSON or a
server-sent-event stream (with cuts and delays) live here; the provider modules only build
bodies in their provider's shape.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from promptrun.server._bodies import read_body_bytes
from promptrun.server.sandbox._state import (
    MAX_CHUNKS,
    MAX_LATENCY_MS,
    ControlError,
    Failure,
    RequestRecord,
    SandboxState,
    parse_failure_header,
)

__all__ = [
    "STATE_KEY",
    "Call",
    "ProviderSpec",
    "encode",
    "error_response",
    "json_response",
    "new_id",
    "open_call",
    "send_events",
    "sse_data",
    "sse_event",
]

STATE_KEY = web.AppKey("promptrun_sandbox_state", SandboxState)

encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_KEY_HEADERS = ("x-api-key", "api-key", "x-goog-api-key")
_JSON_HEADERS = {"Content-Type": "application/json"}
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DISCONNECT_POLL = 0.02
# A per-process prefix keeps ids from two sandbox runs apart; the counter keeps them cheap.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``chatcmpl-1a2b3c4d000000000007``."""
    return f"{prefix}{_ID_PREFIX}{next(_ids):012x}"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider's name and how it spells errors."""

    name: str
    error_body: Callable[[int, str], dict[str, Any]]
    retry_after_ms: bool = False
    #: Streams end with token usage whether or not the request asked (Mistral, OpenRouter).
    stream_usage: bool = False


@dataclass(slots=True)
class Call:
    """An accepted request: its JSON body and how its answer should be delivered."""

    request: web.Request
    spec: ProviderSpec
    body: dict[str, Any]
    stream: bool
    chunks: int
    chunk_delay: float
    cut_after: int | None


def json_response(payload: Any, status: int = 200) -> web.Response:
    """Send `payload` as JSON."""
    return web.Response(body=encode(payload), status=status, headers=_JSON_HEADERS)


def error_response(
    spec: ProviderSpec, status: int, message: str, retry_after: float | None = None
) -> web.Response:
    """Send an error in the provider's own shape, with retry hints on a 429."""
    response = json_response(spec.error_body(status, message), status)
    if retry_after is not None:
        response.headers["Retry-After"] = f"{retry_after:g}"
        if spec.retry_after_ms:
            response.headers["retry-after-ms"] = f"{retry_after * 1000:g}"
    return response


def sse_data(payload: Any) -> bytes:
    """One server-sent event with only a data line."""
    return b"data: " + encode(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """One server-sent event with an event line and a data line."""
    return b"event: " + name.encode() + b"\ndata: " + encode(payload) + b"\n\n"


def _key_headers(request: web.Request) -> tuple[str, ...]:
    headers = request.headers
    found: list[str] = []
    auth = headers.get("Authorization")
    if auth and auth.removeprefix("Bearer ").strip():
        found.append("authorization")
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            found.append(name)
    if "key=" in request.query_string and request.query.get("key", "").strip():
        found.append("?key")
    return tuple(found)


async def open_call(
    request: web.Request,
    spec: ProviderSpec,
    route: str,
    *,
    required: Sequence[str] | None,
    stream: bool | None = None,
) -> Call | web.StreamResponse:
    """Check and record a request, then either accept it or answer it with an error.

    `required` None means the route takes no body; otherwise the body must be a JSON object
    with those keys. `stream` None means the body's `"stream": true` decides. Order: overrides
    and latency, key (401), body (400), then an injected failure from the header or the queue.
    """
    state = request.app[STATE_KEY]
    keys = _key_headers(request)
    body: Any = {}
    if required is not None:
        try:
            body = _decode(await read_body_bytes(request))
        except msgspec.DecodeError:
            body = None
    if stream is None:
        stream = isinstance(body, dict) and body.get("stream") is True
    agent = request.headers.get("User-Agent")
    record = RequestRecord(spec.name, request.path, stream, bool(keys), keys, agent and agent[:120])
    state.record(route, record)

    settings = state.settings
    latency, chunks, delay = settings.latency_ms, settings.chunks, settings.chunk_delay_ms
    failure: Failure | None = None
    headers = request.headers
    try:
        if (value := headers.get("x-sandbox-latency-ms")) is not None:
            latency = _header_number(value, "x-sandbox-latency-ms", MAX_LATENCY_MS)
        if (value := headers.get("x-sandbox-chunks")) is not None:
            chunks = max(1, int(_header_number(value, "x-sandbox-chunks", MAX_CHUNKS)))
        if (value := headers.get("x-sandbox-fail")) is not None:
            failure = parse_failure_header(value)
    except ControlError as exc:
        return error_response(spec, 400, str(exc))
    if latency > 0:
        await asyncio.sleep(latency / 1000)

    if not keys:
        return error_response(spec, 401, "No API key was sent. Any non-empty key is accepted.")
    if not isinstance(body, dict):
        return error_response(spec, 400, "The request body must be a JSON object.")
    missing = [name for name in required or () if body.get(name) is None]
    if missing:
        return error_response(spec, 400, f"Missing required parameter: '{missing[0]}'.")

    if failure is None:
        failure = state.take_failure(spec.name)
    cut_after: int | None = None
    if failure is not None:
        if failure.status is not None:
            message = f"Sandbox injected a {failure.status} error."
            return error_response(spec, failure.status, message, failure.retry_after)
        if failure.hang:
            return await _hang(request)
        cut_after = failure.cut_after_chunks
        if not stream:
            return _abort(request)
    return Call(request, spec, body, stream, chunks, delay / 1000, cut_after)


def _header_number(value: str, name: str, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ControlError(f"{name} must be a number, got {value!r:.40}") from None
    if not math.isfinite(number) or not 0 <= number <= high:
        raise ControlError(f"{name} must be a number between 0 and {high:g}")
    return number


async def _hang(request: web.Request) -> web.StreamResponse:
    # aiohttp has no disconnect event to wait on; polling works whether or not the server
    # cancels handlers when their client leaves.
    while (transport := request.transport) is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(_DISCONNECT_POLL)
    return web.Response(status=499)


def _abort(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    # No terminating chunk or event: the client must see a broken connection, not an answer.
    if request.transport is not None:
        request.transport.abort()
    return response if response is not None else web.Response(status=499)


async def send_events(
    call: Call,
    head: Iterable[bytes],
    pieces: Sequence[bytes],
    tail: Iterable[bytes],
    content_type: str | None = None,
) -> web.StreamResponse:
    """Stream `head`, the content `pieces` (with delays or a cut), then `tail`.

    Server-sent events unless `content_type` names another framing (AWS event stream).
    """
    headers = _SSE_HEADERS if content_type is None else {"Content-Type": content_type}
    if call.cut_after is None and not call.chunk_delay:
        # Nothing to pace: one buffer is far cheaper than a write per event.
        body = b"".join(itertools.chain(head, pieces, tail))
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(call.request)
    try:
        await response.write(b"".join(head))
        for index, piece in enumerate(pieces):
            if index == call.cut_after:
                return _abort(call.request, response)
            if index and call.chunk_delay:
                await asyncio.sleep(call.chunk_delay)
            await response.write(piece)
        if call.cut_after is not None:
            return _abort(call.request, response)
        await response.write(b"".join(tail))
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; nothing more to send
    return response
