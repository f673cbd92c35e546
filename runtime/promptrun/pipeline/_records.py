"""The record stage: a run's log record, built in one place whatever became of the run.

A record is a :class:`~promptrun.wire.ingest.TrackRecord`: a ``/track-request`` body (without
``api_key``) and the request id made here, on the client side, so it exists before the record
is stored anywhere. A run that failed (status ``ERROR``, with the provider's error category)
or was cut short (a stream closed early: ``WARNING``, with what had arrived) is logged too.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from promptrun.pipeline._prepare import PreparedRun
from promptrun.pipeline.providers import ProviderKeyError, status_of
from promptrun.wire.ingest import TrackRecord

__all__ = [
    "LogOptions",
    "dump_provider_object",
    "encode_record",
    "error_type_of",
    "failure_record",
    "new_request_id",
    "run_record",
]

_ids = itertools.count(1)
_prefix = ""


def _new_prefix() -> None:
    global _prefix
    # 80 random bits per process (new after fork) and a counter: unique like a uuid4,
    # at a tenth of its cost on the caller's path.
    _prefix = f"req_{secrets.token_hex(10)}"


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """A request id made on the client, so it exists before the log ships."""
    return f"{_prefix}{next(_ids):x}"


@dataclass(frozen=True, slots=True)
class LogOptions:
    """What the caller asked to log with a run: tags, metadata, a group."""

    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    group_id: int | None = None


def dump_provider_object(obj: Any) -> Any:
    """msgspec's ``enc_hook`` for provider SDK objects (pydantic models) in a log record.

    Never raises: an object it cannot describe is logged as its ``repr``.
    """
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_none=True)
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    return repr(obj)


encode_record = msgspec.json.Encoder(enc_hook=dump_provider_object).encode
"""A record (or any body holding provider objects) as JSON bytes."""


def run_record(
    prepared: PreparedRun,
    options: LogOptions,
    request_id: str,
    started: float,
    response: Any,
    *,
    streamed: bool = False,
    status: str = "SUCCESS",
    error_type: str | None = None,
    error_message: str | None = None,
) -> TrackRecord:
    """The record of one run: what was called, with what, what came back, and how it ended."""
    kwargs = prepared.plan.llm_kwargs
    body: dict[str, Any] = {
        "function_name": prepared.function_name,
        "provider_type": prepared.plan.provider,
        "args": [],
        "kwargs": {**kwargs, "stream": True} if streamed else kwargs,
        "request_start_time": started,
        "request_end_time": time.time(),
        "prompt_input_variables": prepared.variables,
        "request_response": response if response is not None else {},
        "status": status,
    }
    template = prepared.template
    for key, value in (
        ("tags", options.tags),
        ("metadata", options.metadata),
        ("group_id", options.group_id),
        ("prompt_id", template.get("id")),
        ("prompt_version", template.get("version")),
        ("api_type", prepared.plan.api_type),
        ("error_type", error_type),
        ("error_message", error_message[:1024] if error_message else None),
    ):
        if value is not None:
            body[key] = value
    return TrackRecord(client_request_id=request_id, body=body)


def failure_record(
    prepared: PreparedRun,
    options: LogOptions,
    started: float,
    exc: BaseException,
    *,
    request_id: str | None = None,
    streamed: bool = False,
    response: Any = None,
    message: str | None = None,
) -> TrackRecord:
    """The record of a run whose provider call failed (status ``ERROR``)."""
    return run_record(
        prepared,
        options,
        request_id or new_request_id(),
        started,
        response,
        streamed=streamed,
        status="ERROR",
        error_type=error_type_of(exc),
        error_message=message if message is not None else str(exc),
    )


def error_type_of(exc: BaseException) -> str:
    """The PromptLayer error category of a provider exception (any provider's SDK)."""
    if isinstance(exc, ProviderKeyError):
        return "PROVIDER_AUTH_ERROR"
    name = type(exc).__name__
    text = str(exc).lower()
    status = status_of(exc)
    if "RateLimit" in name or status == 429 or "Throttling" in text:
        return "PROVIDER_QUOTA_LIMIT" if "quota" in text else "PROVIDER_RATE_LIMIT"
    if "Timeout" in name:
        return "PROVIDER_TIMEOUT"
    if "Authentication" in name or "PermissionDenied" in name or status in (401, 403):
        return "PROVIDER_AUTH_ERROR"
    if "APIError" in name or "APIStatusError" in name or status is not None:
        return "PROVIDER_ERROR"
    return "UNKNOWN_ERROR"
