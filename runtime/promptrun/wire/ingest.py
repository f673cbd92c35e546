"""promptrun's own ingestion protocol: many log records in one body, idempotent by client id.

Not part of the PromptLayer API. A client learns whether a server speaks it from
``GET /promptrun/v1/info`` (``{"features": ["ingest", ...]}``); the hosted API answers 404
there, and the client then falls back to one ``/track-request`` or ``/log-request`` per record.

``POST /promptrun/v1/ingest`` (auth: ``X-API-KEY``) takes an :class:`IngestBatch` and answers
200 with an :class:`IngestResponse` holding one :class:`IngestResult` per record, in order.
A record whose ``client_request_id`` the workspace already has is not stored again (status
``duplicate``, with the id stored the first time), so a batch retried after a lost answer
never duplicates anything. A record the server cannot accept gets status ``rejected`` with the
reason; the rest of the batch is still stored.

"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from promptrun.wire.tracking import TrackEndpoint

__all__ = [
    "INFO_PATH",
    "INGEST_PATH",
    "MAX_BATCH",
    "IngestBatch",
    "IngestResponse",
    "IngestResult",
    "LogRecord",
    "Record",
    "ServerInfo",
    "TrackCallRecord",
    "TrackRecord",
]

INFO_PATH = "/promptrun/v1/info"
INGEST_PATH = "/promptrun/v1/ingest"


class TrackRecord(
    msgspec.Struct, tag="track", forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """A provider run: ``body`` is a ``/track-request`` body without ``api_key``."""

    client_request_id: str
    body: dict[str, Any]


class LogRecord(
    msgspec.Struct, tag="log", forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """A manual log: ``body`` is a ``/log-request`` body."""

    client_request_id: str
    body: dict[str, Any]


class TrackCallRecord(
    msgspec.Struct, tag="track_call", forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """A ``track.*`` call. ``body["request_id"]`` is a server id (int) or a client id (str).

    ``client_request_id`` here identifies the call itself, so a retried call applies once.
    """

    client_request_id: str
    endpoint: TrackEndpoint
    body: dict[str, Any]


Record = TrackRecord | LogRecord | TrackCallRecord
"""Anything a client ships: a run, a manual log, a ``track.*`` call."""


MAX_BATCH = 10_000
"""Records in one ingest batch."""


class IngestBatch(msgspec.Struct, forbid_unknown_fields=True):
    records: Annotated[list[Record], msgspec.Meta(max_length=MAX_BATCH)]


class IngestResult(msgspec.Struct, omit_defaults=True, kw_only=True):
    client_request_id: str
    status: Literal["stored", "duplicate", "rejected"]
    request_id: int | None = None
    error: str | None = None


class IngestResponse(msgspec.Struct):
    results: list[IngestResult]


class ServerInfo(msgspec.Struct, omit_defaults=True, kw_only=True):
    server: str = "promptrun"
    version: str = ""
    features: list[str] = msgspec.field(default_factory=list)
