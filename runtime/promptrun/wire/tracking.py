"""Bodies of the logging endpoints: ``/track-request``, ``/log-request``, ``track.*``, groups.

Times are epoch seconds (the peer's floats); an ISO 8601 string is accepted too. A
``request_id`` is the server's id (int) or, on a promptrun server, the id a client chose
for its record (str).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from promptrun.wire._limits import Count, Id, Key, Name, NonEmptyName, StrMap, Tags, Text

__all__ = [
    "CreateGroupBody",
    "LogRequestBody",
    "RequestRef",
    "Score",
    "Timestamp",
    "TrackGroupBody",
    "TrackMetadataBody",
    "TrackPromptBody",
    "TrackRequestBody",
    "TrackScoreBody",
    "epoch_seconds",
]

Timestamp = float | datetime
RequestRef = Id | Name
Score = Annotated[int, msgspec.Meta(ge=0, le=100)]


def epoch_seconds(value: Timestamp) -> float:
    """A :data:`Timestamp` as epoch seconds; a naive datetime is taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


class TrackRequestBody(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
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
    metadata: dict[str, Any] | None = None
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


class LogRequestBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """``POST /log-request``: a request made outside ``run()``, given as two prompt templates."""

    provider: Name
    model: Name
    input: dict[str, Any]
    output: dict[str, Any]
    request_start_time: Timestamp
    request_end_time: Timestamp
    parameters: dict[str, Any] | None = None
    tags: Tags | None = None
    metadata: dict[str, Any] | None = None
    prompt_name: Name | None = None
    prompt_version_number: Id | None = None
    prompt_input_variables: dict[str, Any] | None = None
    input_tokens: Count = 0
    output_tokens: Count = 0
    price: float = 0.0
    function_name: Name = ""
    score: Score = 0
    prompt_id: Id | None = None
    score_name: Name | None = None
    api_type: Name | None = None
    status: Name = "SUCCESS"
    error_type: Name | None = None
    error_message: Text | None = None
    api_key: Key | None = None


class TrackMetadataBody(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """``POST /library-track-metadata``: string key/value pairs added to a request."""

    request_id: RequestRef
    metadata: StrMap
    api_key: Key | None = None


class TrackScoreBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """``POST /library-track-score``: a 0..100 score, optionally named."""

    request_id: RequestRef
    score: Score
    name: Name | None = None
    api_key: Key | None = None


class TrackPromptBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """``POST /library-track-prompt``: tie a request to a registry template version."""

    request_id: RequestRef
    prompt_name: NonEmptyName
    prompt_input_variables: dict[str, Any] | None = None
    version: Id | None = None
    label: Name | None = None
    api_key: Key | None = None


class TrackGroupBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """``POST /track-group``: put a request in a group made by ``/create-group``."""

    request_id: RequestRef
    group_id: Id
    api_key: Key | None = None


class CreateGroupBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """``POST /create-group``: the body holds only the key (the peer sends it there)."""

    api_key: Key | None = None
