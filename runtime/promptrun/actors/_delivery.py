"""How log records reach a server: promptrun's batch endpoint, or one request per record.

The shipper decides what to ship and when; this module sends it and says what became of each
record. A server that speaks promptrun's ingest protocol (``GET /promptrun/v1/info`` lists
``ingest``) takes batches and stores each record once however often it is sent (idempotent by
client request id). Other servers, such as the hosted API, get one ``/track-request``,
``/log-request`` or ``/library-track-*`` request per record, in order; there a record whose
answer was lost (the connection dropped after the server stored it) can be stored twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
    PromptLayerAuthenticationError,
    PromptLayerError,
    PromptLayerInternalServerError,
    PromptLayerNotFoundError,
    PromptLayerPermissionDeniedError,
    PromptLayerRateLimitError,
)
from promptrun._http import ApiTransport
from promptrun._retry import SHIPPER_POLICY, call_with_retries
from promptrun.wire.ingest import INFO_PATH, INGEST_PATH, LogRecord, TrackCallRecord, TrackRecord

__all__ = ["UNREACHABLE", "IdMap", "Mode", "Outcome", "discover", "ship_batch", "ship_one"]

logger = logging.getLogger("promptlayer")

Mode = Literal["ingest", "per-record"]
Record = TrackRecord | LogRecord | TrackCallRecord

# Failures that say nothing about the records: keep them and try again later. A refused key is
# one of them: the records are fine, and dropping them would lose them for good.
UNREACHABLE = (
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    PromptLayerAuthenticationError,
    PromptLayerPermissionDeniedError,
)
_TRACK_PATHS = {
    "metadata": "/library-track-metadata",
    "score": "/library-track-score",
    "prompt": "/library-track-prompt",
    "group": "/track-group",
}
_ID_MAP_SIZE = 100_000
_decode_record = msgspec.json.Decoder(Record).decode
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Outcome:
    """What became of a batch: records ``[0, settled)`` are shipped or refused for good."""

    settled: int = 0
    shipped: int = 0
    failed: int = 0
    deferred: bool = False  # the record at ``settled`` names a record the server lacks yet
    error: Exception | None = None  # why the rest was not shipped (server unreachable)


class IdMap:
    """Client request id -> the server's id, for ``track.*`` on servers without client ids."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, int] = OrderedDict()

    def get(self, client_id: str) -> int | None:
        return self._ids.get(client_id)

    def remember(self, client_id: str, server_id: int) -> None:
        self._ids[client_id] = server_id
        if len(self._ids) > _ID_MAP_SIZE:
            self._ids.popitem(last=False)


async def discover(transport: ApiTransport) -> Mode:
    """Whether the server takes batches (promptrun) or one request per record (hosted API)."""
    try:
        info = await transport.request(
            "GET", INFO_PATH, context="asking the server what it supports"
        )
    except PromptLayerAPIError as exc:
        if isinstance(exc, UNREACHABLE):
            raise
        return "per-record"
    features = info.get("features", []) if isinstance(info, dict) else []
    return "ingest" if "ingest" in features else "per-record"


async def ship_batch(
    transport: ApiTransport,
    batch: list[bytes],
    ids: IdMap,
    may_defer: Callable[[bytes], bool],
) -> Outcome:
    """Ship records through the ingest endpoint; a batch the server finds too big is halved."""
    body = b'{"records":[' + b",".join(batch) + b"]}"

    async def once() -> Any:
        return await transport.request(
            "POST", INGEST_PATH, body=body, context="shipping log records"
        )

    try:
        answer = await call_with_retries(SHIPPER_POLICY, "shipping log records", once, quiet=True)
    except UNREACHABLE as exc:
        return Outcome(error=exc)
    except PromptLayerAPIError as exc:
        if len(batch) > 1 and exc.status_code in (400, 413, 422):
            return await _halves(transport, batch, ids, may_defer)
        if isinstance(exc, PromptLayerNotFoundError):  # not a promptrun server after all
            return Outcome(error=exc)
        data = batch[0] if batch else b""
        logger.warning("the server refused log record %s: %s", _client_id(data), exc)
        return Outcome(settled=len(batch), failed=len(batch))
    results = answer.get("results", []) if isinstance(answer, dict) else []
    out = Outcome()
    for data, result in zip(batch, results, strict=False):
        status = result.get("status") if isinstance(result, dict) else None
        if status in ("stored", "duplicate"):
            out.shipped += 1
            rid = result.get("request_id")
            if isinstance(rid, int):
                ids.remember(str(result.get("client_request_id", "")), rid)
        elif _names_missing_record(data, str(result.get("error"))) and may_defer(data):
            out.deferred = True
            return out
        else:
            out.failed += 1
            logger.warning(
                "the server rejected log record %s: %s", _client_id(data), result.get("error")
            )
        out.settled += 1
    return out


async def _halves(
    transport: ApiTransport, batch: list[bytes], ids: IdMap, may_defer: Callable[[bytes], bool]
) -> Outcome:
    half = len(batch) // 2
    first = await ship_batch(transport, batch[:half], ids, may_defer)
    if first.settled < half:
        return first
    second = await ship_batch(transport, batch[half:], ids, may_defer)
    return Outcome(
        first.settled + second.settled,
        first.shipped + second.shipped,
        first.failed + second.failed,
        second.deferred,
        second.error,
    )


def _names_missing_record(data: bytes, error: str) -> bool:
    return data.startswith(b'{"type":"track_call"') and "not found" in error


def _client_id(data: bytes) -> str:
    try:
        return _decode_record(data).client_request_id
    except msgspec.DecodeError:
        return "(undecodable)"


async def ship_one(
    transport: ApiTransport, data: bytes, ids: IdMap, may_defer: Callable[[bytes], bool]
) -> Literal["shipped", "failed", "deferred"]:
    """Ship one record the way the hosted API takes it; raises UNREACHABLE errors."""
    record = _decode_record(data)
    key = transport.api_key
    expect: tuple[int, ...]
    if isinstance(record, TrackRecord):
        path, expect, body = "/track-request", (200,), {**record.body, "api_key": key}
    elif isinstance(record, LogRecord):
        path, expect, body = "/log-request", (200, 201), record.body
    else:
        path, expect = _TRACK_PATHS[record.endpoint], (200,)
        body = {**record.body, "api_key": key}
        target = body.get("request_id")
        if isinstance(target, str):
            server_id = ids.get(target)
            if server_id is None:
                if may_defer(data):
                    return "deferred"
                logger.warning(
                    "track.%s: request %s is not known to this client (it was logged by "
                    "another process or before a restart); not applied",
                    record.endpoint,
                    target,
                )
                return "failed"
            body["request_id"] = server_id
    encoded = _encode(body)

    async def once() -> Any:
        return await transport.request(
            "POST", path, body=encoded, context=f"shipping to {path}", expect=expect
        )

    try:
        answer = await call_with_retries(SHIPPER_POLICY, f"shipping to {path}", once, quiet=True)
    except UNREACHABLE:
        raise
    except PromptLayerError as exc:
        logger.warning("the server refused log record %s: %s", record.client_request_id, exc)
        return "failed"
    if isinstance(answer, dict) and not isinstance(record, TrackCallRecord):
        rid = answer.get("request_id", answer.get("id"))
        if isinstance(rid, int):
            ids.remember(record.client_request_id, rid)
    return "shipped"
