"""From a decoded logging body to what the store keeps: provider, model, tokens, blueprint.

Shared by ``/track-request``, ``/log-request``, the ``track.*`` endpoints and the ingest
endpoint, so a record means the same whichever way it arrived.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from promptrun import blueprint as bp
from promptrun._errors import PromptLayerValidationError
from promptrun.pipeline import encode_record
from promptrun.server._http import ApiError
from promptrun.server.store.base import RequestRow, TrackCall
from promptrun.wire._limits import MAX_TOKENS
from promptrun.wire.ingest import TrackRecord
from promptrun.wire.tracking import (
    LogRequestBody,
    TrackEndpoint,
    TrackGroupBody,
    TrackMetadataBody,
    TrackPromptBody,
    TrackRequestBody,
    TrackScoreBody,
    epoch_seconds,
)

__all__ = ["TRACK_BODIES", "TrackBody", "log_row", "run_row", "track_call", "track_row"]

log = logging.getLogger("promptrun.server")

TrackBody = TrackMetadataBody | TrackScoreBody | TrackPromptBody | TrackGroupBody
TRACK_BODIES: dict[TrackEndpoint, type[TrackBody]] = {
    "metadata": TrackMetadataBody,
    "score": TrackScoreBody,
    "prompt": TrackPromptBody,
    "group": TrackGroupBody,
}

_encode = msgspec.json.encode
_TRACK_BODY = msgspec.json.Decoder(TrackRequestBody)

# kwargs that carry the conversation or the call's plumbing; the rest are model parameters.
_NOT_PARAMETERS = frozenset(
    {
        "model", "messages", "input", "instructions", "prompt", "system", "contents",
        "history", "system_instruction", "tools", "tool_choice", "functions",
        "function_call", "stream", "stream_options", "config", "modelId", "toolConfig",
    }
)  # fmt: skip
_BLUEPRINT_FAILURES = (PromptLayerValidationError, KeyError, TypeError, ValueError, AttributeError)


def _count(value: Any) -> int:
    """A token count from a logged response: the response is the provider's, stored as sent,
    so a count that is not a whole number from 0 to MAX_TOKENS counts as unknown (0) rather
    than losing the record."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    return 0


def _json(value: Any) -> str:
    return _encode(value).decode()


def _bare_blueprint(provider: str, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_template": {"type": "chat", "messages": [], "input_variables": []},
        "metadata": {"model": {"provider": provider, "name": model, "parameters": parameters}},
    }


def _api_type(body: TrackRequestBody) -> str | None:
    if body.api_type:
        return body.api_type
    if ".responses." in body.function_name:
        return "responses"
    if ".images." in body.function_name:
        return "images"
    return None


def track_row(
    body: TrackRequestBody, *, client_request_id: str | None = None
) -> tuple[RequestRow, dict[str, Any]]:
    """The row for a ``/track-request`` body, and the blueprint the endpoint answers with.

    The blueprint is derived from the provider kwargs and response. A provider or shape the
    blueprint code does not know still gets stored, with an empty conversation, because
    losing the record would be worse than a thin blueprint.
    """
    provider = body.provider_type or body.function_name.partition(".")[0] or "unknown"
    kwargs = body.kwargs
    model = str(kwargs.get("model") or kwargs.get("modelId") or "")  # modelId: Bedrock
    parameters = {k: v for k, v in kwargs.items() if k not in _NOT_PARAMETERS}
    response = body.request_response or {}
    api_type = _api_type(body)
    try:
        blueprint = bp.logged_blueprint(provider, model, parameters, kwargs, response, api_type)
    except _BLUEPRINT_FAILURES as exc:
        log.debug("no blueprint for a %s request: %s", provider, exc)
        blueprint = _bare_blueprint(provider, model, parameters)
    input_tokens = output_tokens = 0
    if response:
        try:
            input_tokens, output_tokens = map(_count, bp.usage_of(provider, response))
        except _BLUEPRINT_FAILURES as exc:
            log.debug("no token usage in a %s response: %s", provider, exc)
    row = RequestRow(
        kind="track",
        client_request_id=client_request_id,
        provider=provider,
        model=model,
        function_name=body.function_name,
        api_type=api_type,
        start_time=epoch_seconds(body.request_start_time),
        end_time=epoch_seconds(body.request_end_time),
        prompt_id=body.prompt_id,
        prompt_version=body.prompt_version,
        input_variables=_json(body.prompt_input_variables or {}),
        tags=_json(body.tags or []),
        metadata=_json(body.metadata or {}),
        group_id=body.group_id,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        status=body.status,
        error_type=body.error_type,
        error_message=body.error_message,
        score=body.score,
        body=_json(msgspec.structs.replace(body, api_key=None)),
        blueprint=_json(blueprint),
        span_id=body.span_id.lower() if body.span_id else None,
    )
    return row, blueprint


def run_row(record: TrackRecord) -> RequestRow:
    """The row for a run's record from this server's own pipeline (its response is the
    provider SDK's object, so it goes through JSON once, as a client's record would)."""
    body = _TRACK_BODY.decode(encode_record(record.body))
    return track_row(body, client_request_id=record.client_request_id)[0]


def log_row(
    body: LogRequestBody, *, client_request_id: str | None = None
) -> tuple[RequestRow, dict[str, Any]]:
    """The row for a ``/log-request`` body, and its blueprint (input plus output)."""
    try:
        blueprint = bp.log_request_blueprint(
            body.provider, body.model, body.parameters, body.api_type, body.input, body.output
        )
    except PromptLayerValidationError as exc:
        raise ApiError(400, exc.message) from None
    row = RequestRow(
        kind="log",
        client_request_id=client_request_id,
        provider=body.provider,
        model=body.model,
        function_name=body.function_name,
        api_type=body.api_type,
        start_time=epoch_seconds(body.request_start_time),
        end_time=epoch_seconds(body.request_end_time),
        prompt_id=body.prompt_id,
        prompt_version=body.prompt_version_number,
        prompt_name=body.prompt_name,
        input_variables=_json(body.prompt_input_variables or {}),
        tags=_json(body.tags or []),
        metadata=_json(body.metadata or {}),
        input_tokens=body.input_tokens,
        output_tokens=body.output_tokens,
        price=body.price,
        status=body.status,
        error_type=body.error_type,
        error_message=body.error_message,
        score=body.score,
        score_name=body.score_name,
        body=_json(msgspec.structs.replace(body, api_key=None)),
        blueprint=_json(blueprint),
        span_id=body.span_id.lower() if body.span_id else None,
    )
    return row, blueprint


def track_call(
    endpoint: TrackEndpoint, body: TrackBody, *, client_call_id: str | None = None
) -> TrackCall:
    """A decoded ``/library-track-*`` or ``/track-group`` body as a store call."""
    values: dict[str, Any]
    if isinstance(body, TrackMetadataBody):
        values = dict(body.metadata)
    elif isinstance(body, TrackScoreBody):
        values = {"score": body.score, "name": body.name}
    elif isinstance(body, TrackPromptBody):
        values = {
            "prompt_name": body.prompt_name,
            "version": body.version,
            "label": body.label,
            "prompt_input_variables": body.prompt_input_variables,
        }
    else:
        values = {"group_id": body.group_id}
    return TrackCall(
        endpoint=endpoint,
        request_ref=body.request_id,
        values=values,
        client_call_id=client_call_id,
    )
