"""How log records reach a server: promptrun's batch endpoint, or one request per record.

The shipper decides what to ship and when; this module sends it and says what became of each
record. A server that speaks promptrun's ingest protocol (``GET /promptrun/v1/info`` lists
``ingest``) takes batches and stores each record once however often it is sent (idempotent by
client request id). Other servers, such as the hosted API, get one ``/track-request``,
``/log-request`` or ``/library-track-*`` request per record, in order, each with the
record's client id in its ``Idempotency-Key`` header: a promptrun server behind something
that hides its batch endpoint still stores a record whose answer was lost once; the hosted
API ignores the header, and there such a record can be stored twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from promptrun._errors import (
    TRANSIENT,
    PromptLayerAPIError,
    PromptLayerAuthenticationError,
    PromptLayerError,
    PromptLayerNotFoundError,
    PromptLayerPermissionDeniedError,
    PromptLayerUnexpectedAnswerError,
)
from promptrun._http import ApiTransport, Shape
from promptrun._retry import SHIPPER_POLICY, call_with_retries
from promptrun.actors._refused import DeadLetters
from promptrun.wire.ingest import (
    INFO_PATH,
    INGEST_PATH,
    Record,
    TrackCallRecord,
    TrackRecord,
)
from promptrun.wire.tracking import IDEMPOTENCY_KEY, TRACK_PATHS

__all__ = [
    "LOGGED_SHAPE",
    "UNREACHABLE",
    "IdMap",
    "Mode",
    "Outcome",
    "discover",
    "ship_batch",
    "ship_one",
]

logger = logging.getLogger("promptlayer")

Mode = Literal["ingest", "per-record"]

# Failures that say nothing about the records: keep them and try again later. A refused key is
# one of them: the records are fine, and dropping them would lose them for good. So is an
# answer that did not come from the API (HTML from a wrong base URL, a proxy's page).
UNREACHABLE: tuple[type[PromptLayerError], ...] = (
    *TRANSIENT,
    PromptLayerAuthenticationError,
    PromptLayerPermissionDeniedError,
    PromptLayerUnexpectedAnswerError,
)


def _answer(v: Any) -> bool:
    return isinstance(v, dict)


def _logged(v: Any) -> bool:
    # A refusal with a success status ({"success": false, ...}) is an answer too.
    return isinstance(v, dict) and ("request_id" in v or "id" in v or v.get("success") is False)


#: What the API answers when it stored a record (``/track-request``, ``/log-request``).
LOGGED_SHAPE: Shape = ("a logged request's id", _logged)
_INGESTED: Shape = (
    "the ingest endpoint's results",
    lambda v: isinstance(v, dict) and isinstance(v.get("results"), list),
)
_ANSWER: Shape = ("a JSON object", _answer)
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
        # An answer that is not the API's may come from a server without the info route:
        # per-record shipping checks each answer, and says what is wrong if it goes on.
        if isinstance(exc, UNREACHABLE) and not isinstance(exc, PromptLayerUnexpectedAnswerError):
            raise
        return "per-record"
    features = info.get("features", []) if isinstance(info, dict) else []
    return "ingest" if "ingest" in features else "per-record"


async def ship_batch(
    transport: ApiTransport,
    batch: list[bytes],
    ids: IdMap,
    may_defer: Callable[[bytes], bool],
    dead: DeadLetters,
) -> Outcome:
    """Ship records through the ingest endpoint; a batch the server finds too big is halved."""
    body = b'{"records":[' + b",".join(batch) + b"]}"

    async def once() -> Any:
        return await transport.request(
            "POST", INGEST_PATH, body=body, context="shipping log records", shape=_INGESTED
        )

    try:
        answer = await call_with_retries(SHIPPER_POLICY, "shipping log records", once, quiet=True)
    except UNREACHABLE as exc:
        return Outcome(error=exc)
    except PromptLayerAPIError as exc:
        if len(batch) > 1 and exc.status_code in (400, 413, 422):
            return await _halves(transport, batch, ids, may_defer, dead)
        if isinstance(exc, PromptLayerNotFoundError):  # not a promptrun server after all
            return Outcome(error=exc)
        refuse(dead, batch, str(exc), exc.status_code)
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
            refuse(dead, [data], str(result.get("error")), None)
        out.settled += 1
    return out


async def _halves(
    transport: ApiTransport,
    batch: list[bytes],
    ids: IdMap,
    may_defer: Callable[[bytes], bool],
    dead: DeadLetters,
) -> Outcome:
    half = len(batch) // 2
    first = await ship_batch(transport, batch[:half], ids, may_defer, dead)
    if first.settled < half:
        return first
    second = await ship_batch(transport, batch[half:], ids, may_defer, dead)
    return Outcome(
        first.settled + second.settled,
        first.shipped + second.shipped,
        first.failed + second.failed,
        second.deferred,
        second.error,
    )


def _names_missing_record(data: bytes, error: str) -> bool:
    return data.startswith(b'{"type":"track_call"') and "not found" in error


def refuse(dead: DeadLetters, batch: list[bytes], why: str, status: int | None) -> None:
    """Records the server refused for good: warn once, saying why and what to do; keep them."""
    if status == 413 and len(batch) == 1:
        why = (
            f"it is {len(batch[0]):,} bytes, more than the server takes in one request ({why}). "
            "Log less in one record (e.g. trim long documents from its input or output), or, "
            "on a promptrun server, raise its limit for log records (`promptrun serve "
            "--max-record-bytes`, or PROMPTRUN_MAX_RECORD_BYTES)"
        )
    kept = dead.keep(batch, why)
    if len(batch) == 1:
        logger.warning("the server refused log record %s: %s. %s", _client_id(batch[0]), why, kept)
    else:
        logger.warning(
            "the server refused %d log records (%s to %s): %s. %s",
            len(batch),
            _client_id(batch[0]),
            _client_id(batch[-1]),
            why,
            kept,
        )


def _client_id(data: bytes) -> str:
    try:
        return _decode_record(data).client_request_id
    except msgspec.DecodeError:
        return "(undecodable)"


async def ship_one(
    transport: ApiTransport,
    data: bytes,
    ids: IdMap,
    may_defer: Callable[[bytes], bool],
    dead: DeadLetters,
) -> Literal["shipped", "failed", "deferred"]:
    """Ship one record the way the hosted API takes it; raises UNREACHABLE errors."""
    record = _decode_record(data)
    key = transport.api_key
    expect: tuple[int, ...]
    shape = LOGGED_SHAPE
    if isinstance(record, TrackRecord):
        # As InlineSink sends it, so a record sent both ways is one request to the API.
        body = {**record.body, "api_key": key, "return_prompt_blueprint": True}
        path, expect = "/track-request", (200,)
    elif isinstance(record, TrackCallRecord):
        path, expect, shape = TRACK_PATHS[record.endpoint], (200,), _ANSWER
        body = {**record.body, "api_key": key}
        target = body.get("request_id")
        if isinstance(target, str):
            server_id = ids.get(target)
            if server_id is None:
                if may_defer(data):
                    return "deferred"
                why = (
                    f"track.{record.endpoint}: request {target} is not known to this client "
                    "(it was logged by another process or before a restart); not applied"
                )
                logger.warning("%s. %s", why, dead.keep([data], why))
                return "failed"
            body["request_id"] = server_id
    else:
        path, expect, body = "/log-request", (200, 201), record.body
    encoded = _encode(body)
    headers = {IDEMPOTENCY_KEY: record.client_request_id}

    async def once() -> Any:
        return await transport.request(
            "POST",
            path,
            body=encoded,
            context=f"shipping to {path}",
            expect=expect,
            shape=shape,
            headers=headers,
        )

    try:
        answer = await call_with_retries(SHIPPER_POLICY, f"shipping to {path}", once, quiet=True)
    except UNREACHABLE:
        raise
    except PromptLayerError as exc:
        refuse(dead, [data], str(exc), getattr(exc, "status_code", None))
        return "failed"
    if answer.get("success") is False:  # refused with a success status
        refuse(dead, [data], f"shipping to {path}: {answer.get('message', answer)!r}", None)
        return "failed"
    if not isinstance(record, TrackCallRecord):
        rid = answer.get("request_id", answer.get("id"))
        if isinstance(rid, int):
            ids.remember(record.client_request_id, rid)
    return "shipped"
