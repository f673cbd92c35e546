"""OpenAI Chat Completions and Responses without the openai SDK's HTTP stack (the native
transport).

The request is the one ``AsyncOpenAI().chat.completions.create(**kwargs)`` (or
``.responses.create``) sends: the same URL (``{base}/chat/completions`` or
``{base}/responses``, base from the template, ``OPENAI_BASE_URL`` or the public API), the
same JSON body, and the same headers except the SDK's telemetry (``User-Agent`` and the
``X-Stainless-*`` headers are not sent). ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` are
carried as ``OpenAI-Organization`` / ``OpenAI-Project``, as the SDK does.

Answers become the SDK's own objects (``ChatCompletion`` / ``Response``, with
``_request_id``; chunks ``ChatCompletionChunk``, Responses events the SDK's event union
members such as ``ResponseTextDeltaEvent``; see :func:`typed`), errors the SDK's own
exception classes with the same message, status and body, and the retries are the SDK's
(:mod:`._wire`).

What is covered: provider ``openai``, chat templates on Chat Completions and any template on
the Responses API (``api_type: responses``), with parameters the installed SDK's ``create``
names (plus ``extra_body``). Everything else (legacy completions, Azure, OpenRouter, a
parameter the SDK does not know, a client with no ``OPENAI_API_KEY``) goes through the SDK;
:meth:`OpenAIWire.covers` decides from the plan.
"""

from __future__ import annotations

import os
import typing
from typing import Any

import httpx2
import msgspec
import openai
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import ValidationError

from promptrun.pipeline.providers._base import CallPlan, accepted_params
from promptrun.pipeline.providers._wire import END, Exchange, NativeWire, WireFailure

__all__ = ["OPENAI_URL", "OpenAIWire"]

OPENAI_URL = "https://api.openai.com/v1"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_NOT_PARAMS = frozenset({"self", "extra_headers", "extra_query", "timeout", "stream"})
#: The keyword names the installed SDK's ``chat.completions.create`` sends in the body.
CHAT_PARAMS = (accepted_params(AsyncCompletions.create) or frozenset()) - _NOT_PARAMS
#: The same for ``responses.create``.
RESPONSES_PARAMS = (accepted_params(AsyncResponses.create) or frozenset()) - _NOT_PARAMS


def _event_models(union: Any) -> dict[str, Any]:
    """The members of the SDK's discriminated event union, by their ``type`` literal."""
    members = typing.get_args(typing.get_args(union)[0])
    by_type: dict[str, Any] = {}
    for member in members:
        field = member.model_fields.get("type")
        for literal in typing.get_args(field.annotation) if field is not None else ():
            by_type.setdefault(literal, member)
    return by_type


#: ``ResponseStreamEvent``'s members (``response.output_text.delta``: ResponseTextDeltaEvent).
_RESPONSE_EVENTS = _event_models(ResponseStreamEvent)


def typed(model: Any, data: Any) -> Any:
    """``data`` as the SDK's ``model``: validated by pydantic-core (about 10x cheaper than the
    SDK's own recursive ``construct``, and equal to it for data that fits the model), else
    built the SDK's way, which accepts what its models do not describe (as the SDK does)."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return model.construct(**data)


def _response_event(data: Any) -> Any:
    """One Responses stream event as the SDK builds it: its union member for the ``type``
    (an event type the installed SDK does not know is built the SDK's loose way)."""
    kind = data.get("type") if isinstance(data, dict) else None
    model = _RESPONSE_EVENTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        from openai._models import construct_type

        return construct_type(type_=ResponseStreamEvent, value=data)
    return typed(model, data)


class OpenAIWire(NativeWire):
    """Chat Completions and Responses on an aiohttp session, answering with the openai SDK's
    objects."""

    def __init__(self, session: Any, base_url: str | None, api_key: str) -> None:
        self.session = session
        base = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.url = base + "/chat/completions"
        self.responses_url = base + "/responses"
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {api_key}",
        }
        organization = os.environ.get("OPENAI_ORG_ID")
        project = os.environ.get("OPENAI_PROJECT_ID")
        if organization is not None:
            headers["OpenAI-Organization"] = organization
        if project is not None:
            headers["OpenAI-Project"] = project
        self.headers = headers

    def covers(self, plan: CallPlan, stream: bool) -> bool:
        """Whether this transport sends ``plan`` exactly as the SDK would."""
        if plan.api_type == "responses":
            params = RESPONSES_PARAMS
        elif plan.template_type == "chat":
            params = CHAT_PARAMS
        else:
            return False
        kwargs = plan.llm_kwargs
        extra = kwargs.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            return False
        return kwargs.keys() <= params or (kwargs.keys() - params) == {"extra_body"}

    def exchange(self, plan: CallPlan, stream: bool) -> Exchange:
        body = dict(plan.llm_kwargs)
        extra = body.pop("extra_body", None)
        responses = plan.api_type == "responses"
        if stream:
            body["stream"] = True
            if not responses:
                body.setdefault("stream_options", {"include_usage": True})
        if extra:
            body.update(extra)
        url = self.responses_url if responses else self.url
        return Exchange(url, self.headers, _encode(body))

    def answer(self, plan: CallPlan, exchange: Exchange, response: Any, body: bytes) -> Any:
        model = Response if plan.api_type == "responses" else ChatCompletion
        answer = typed(model, _decode(body))
        answer._request_id = response.headers.get("x-request-id")
        return answer

    def event(
        self, plan: CallPlan, exchange: Exchange, response: Any, name: str | None, data: str
    ) -> Any:
        if data.startswith("[DONE]"):
            return END
        decoded = _decode(data)
        if isinstance(decoded, dict) and decoded.get("error"):
            raise self._stream_error(decoded["error"], exchange)
        if plan.api_type == "responses":
            return _response_event(decoded)
        return typed(ChatCompletionChunk, decoded)

    # -- errors as the SDK raises them ---------------------------------------------------
    def _request(self, exchange: Exchange) -> Any:
        return httpx2.Request("POST", exchange.url, headers=dict(exchange.headers))

    def wire_error(self, failure: WireFailure, exchange: Exchange) -> Exception:
        request = self._request(exchange)
        if failure.timed_out:
            return openai.APITimeoutError(request=request)
        return openai.APIConnectionError(request=request)

    def _stream_error(self, error: Any, exchange: Exchange) -> Exception:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        return openai.APIError(message=message, request=self._request(exchange), body=error)

    def status_error(self, response: Any, exchange: Exchange, raw: bytes) -> Exception:
        status = response.status
        text = raw.decode("utf-8", "replace").strip()
        message = f"Error code: {status}"
        body: Any = text
        try:
            body = _decode(text) if text else text
        except msgspec.DecodeError:
            pass
        else:
            error = body.get("error", body) if isinstance(body, dict) else None
            said = error.get("message") if isinstance(error, dict) else None
            if isinstance(said, str) and said:
                message += f" - {said}"
        httpx_response = httpx2.Response(
            status,
            headers=list(response.raw_headers),
            content=raw,
            request=self._request(exchange),
        )
        data = body.get("error", body) if isinstance(body, dict) else body
        kind = _STATUS_ERRORS.get(status) or ("InternalServerError" if status >= 500 else "")
        cls = getattr(openai, kind) if kind else openai.APIStatusError
        return cls(message, response=httpx_response, body=data)


_STATUS_ERRORS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}
