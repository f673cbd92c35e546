"""Bodies of the logging endpoints: ``/track-request``, ``/log-request``, ``track.*``, groups.

Times are epoch seconds (the peer's floats); an ISO 8601 string is accepted too. A time
before 1970 or from 2100 on (a time in milliseconds by mistake, a negative or huge number) is
refused with a 400 naming the field; an end before the start is stored as given (clocks step
back), and shows as an unknown latency. Token counts are 0 to 10^9 and a logged price 0 to
$1,000,000. A ``request_id`` is the server's id (int) or, on a promptrun server, the id a
client chose for its record (str). A logged ``status`` is ``SUCCESS``, ``WARNING`` or
``ERROR`` (any case; stored in upper case): the dashboard's filters and error counts know no
other. Metadata holds at most 1,000 keys, with short values (:mod:`promptrun.wire._metadata`).

Every key the server knows is type-checked (a 400 naming it); keys it does not know are
ignored, as the hosted API does, so a newer PromptLayer SDK that sends one more key is not
refused on every log.

promptrun's client sends each record's client request id (``req_...``) in the
:data:`IDEMPOTENCY_KEY` header on these endpoints, a header the hosted API ignores: a
promptrun server stores the record once however often it is sent (its answer was lost, so it
was sent again), as ``/promptrun/v1/ingest`` does by the same id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from promptrun.wire._limits import (
    MAX_EPOCH,
    Id,
    Key,
    Metadata,
    Name,
    NonEmptyName,
    Price,
    StrMetadata,
    Tags,
    Text,
    Tokens,
)
from promptrun.wire._metadata import metadata_problem

__all__ = [
    "IDEMPOTENCY_KEY",
    "STATUSES",
    "TRACK_PATHS",
    "CreateGroupBody",
    "LogRequestBody",
    "RequestRef",
    "Score",
    "Timestamp",
    "TrackEndpoint",
    "TrackGroupBody",
    "TrackMetadataBody",
    "TrackPromptBody",
    "TrackRequestBody",
    "TrackScoreBody",
    "check_metadata",
    "checked_status",
    "epoch_seconds",
    "time_problem",
]

IDEMPOTENCY_KEY = "Idempotency-Key"
"""The request header naming a record (or ``track.*`` call) by its client id: sent again, it
is not stored (or applied) again. The IETF's name for it (draft-ietf-httpapi-idempotency-key)."""

TrackEndpoint = Literal["metadata", "score", "prompt", "group"]
"""What a ``track.*`` call attaches to a logged request."""
TRACK_PATHS: dict[TrackEndpoint, str] = {
    "metadata": "/library-track-metadata",
    "score": "/library-track-score",
    "prompt": "/library-track-prompt",
    "group": "/track-group",
}
"""The PromptLayer endpoint of each ``track.*`` call."""

Timestamp = (
    Annotated[float, msgspec.Meta(description="epoch seconds (time.time()), 1970 to 2100")]
    | datetime
)
RequestRef = Id | Name
Score = Annotated[int, msgspec.Meta(ge=0, le=100)]


def epoch_seconds(value: Timestamp) -> float:
    """A :data:`Timestamp` as epoch seconds; a naive datetime is taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def time_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a time the log accepts for the field ``name``, or None."""
    seconds = epoch_seconds(value) if isinstance(value, datetime) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return f"{name} must be epoch seconds, as time.time() gives; got {value!r:.80}"
    if 0 <= seconds < MAX_EPOCH:  # written so that NaN is refused too
        return None
    if isinstance(value, datetime):
        return f"{name} {value.isoformat()} is not a time from 1970 to 2100"
    hint = ""
    if MAX_EPOCH <= seconds < MAX_EPOCH * 1e6:
        hint = " (a time in milliseconds or microseconds? divide it by 1000 or 10^6)"
    return (
        f"{name} is {value!r:.80}: not a time from 1970 to 2100 in epoch seconds, "
        f"as time.time() gives{hint}"
    )


STATUSES = ("SUCCESS", "WARNING", "ERROR")
"""The statuses a logged request can have."""


def checked_status(value: str) -> str:
    """``value`` as one of :data:`STATUSES` (case folded), else a ValueError listing them."""
    upper = value.upper()
    if upper not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {value!r:.80}")
    return upper


def _check_times(start: Timestamp, end: Timestamp) -> None:
    for name, value in (("request_start_time", start), ("request_end_time", end)):
        if (problem := time_problem(name, value)) is not None:
            raise ValueError(problem)


def check_metadata(metadata: dict[str, Any] | None, *, workflow: bool = False) -> None:
    """A ValueError (a 400 from the decoder) saying which metadata limit ``metadata`` breaks."""
    if metadata and (problem := metadata_problem(metadata, workflow=workflow)) is not None:
        raise ValueError(problem)


class TrackRequestBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /track-request``: one provider call, as the peer's ``run()`` reports it.

    ``kwargs`` are the arguments given to the provider SDK and ``request_response`` its
    answer as JSON; a failed call has ``status="ERROR"`` and an empty response.
    """

    function_name: Name
    kwargs: dict[str, Any]
    request_start_time: Timestamp
    request_end_time: Timestamp
    provider_type: Name | None = None
    args: list[Any] = msgspec.field(default_factory=list)
    tags: Tags | None = None
    api_key: Key | None = None
    metadata: Metadata | None = None
    prompt_id: Id | None = None
    prompt_version: Id | None = None
    prompt_input_variables: dict[str, Any] | None = None
    group_id: Id | None = None
    return_prompt_blueprint: bool = False
    span_id: Name | None = None
    request_response: dict[str, Any] | None = None
    status: Name = "SUCCESS"
    error_type: Name | None = None
    error_message: Text | None = None
    score: Score | None = None
    api_type: Name | None = None

    def __post_init__(self) -> None:
        _check_times(self.request_start_time, self.request_end_time)
        self.status = checked_status(self.status)
        check_metadata(self.metadata)


class LogRequestBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /log-request``: a request made outside ``run()``, given as two prompt templates."""

    provider: Name
    model: Name
    input: dict[str, Any]
    output: dict[str, Any]
    request_start_time: Timestamp
    request_end_time: Timestamp
    parameters: dict[str, Any] | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    prompt_name: Name | None = None
    prompt_version_number: Id | None = None
    prompt_input_variables: dict[str, Any] | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    price: Price = 0.0
    function_name: Name = ""
    score: Score = 0
    prompt_id: Id | None = None
    score_name: Name | None = None
    api_type: Name | None = None
    status: Name = "SUCCESS"
    error_type: Name | None = None
    error_message: Text | None = None
    api_key: Key | None = None
    span_id: Name | None = None  # promptrun's client: the trace span it was logged in

    def __post_init__(self) -> None:
        _check_times(self.request_start_time, self.request_end_time)
        self.status = checked_status(self.status)
        check_metadata(self.metadata)


class TrackMetadataBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /library-track-metadata``: string key/value pairs added to a request."""

    request_id: RequestRef
    metadata: StrMetadata
    api_key: Key | None = None

    def __post_init__(self) -> None:
        check_metadata(self.metadata)


class TrackScoreBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /library-track-score``: a 0..100 score, optionally named."""

    request_id: RequestRef
    score: Score
    name: Name | None = None
    api_key: Key | None = None


class TrackPromptBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /library-track-prompt``: tie a request to a registry template version."""

    request_id: RequestRef
    prompt_name: NonEmptyName
    prompt_input_variables: dict[str, Any] | None = None
    version: Id | None = None
    label: Name | None = None
    api_key: Key | None = None


class TrackGroupBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /track-group``: put a request in a group made by ``/create-group``."""

    request_id: RequestRef
    group_id: Id
    api_key: Key | None = None


class CreateGroupBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /create-group``: the body holds only the key (the peer sends it there)."""

    api_key: Key | None = None
