"""OpenAI Chat Completions without the openai SDK's HTTP stack (the native transport).

The request is the one ``AsyncOpenAI().chat.completions.create(**kwargs)`` sends: the same
URL (``{base}/chat/completions``, base from the template, ``OPENAI_BASE_URL`` or the public
API), the same JSON body, and the same headers except the SDK's telemetry (``User-Agent`` and
the ``X-Stainless-*`` headers are not sent). ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` are
carried as ``OpenAI-Organization`` / ``OpenAI-Project``, as the SDK does.

Answers become the SDK's own objects (``ChatCompletion``, with ``_request_id``; see
:func:`typed`), errors the SDK's own exception classes with the same message, status
and body, and the retries are the SDK's (:mod:`._wire`).

What is covered: provider ``openai``, chat templates on Chat Completions, with parameters the
installed SDK's ``create`` names (plus ``extra_body``). Everything else (the Responses API,
legacy completions, Azure, OpenRouter, a parameter the SDK does not know, a client with no
``OPENAI_API_KEY``) goes through the SDK; :meth:`OpenAIWire.covers` decides from the plan.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import msgspec
import openai
from aiohttp import ClientError
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import ValidationError

from promptrun.pipeline.providers._base import CallPlan, accepted_params
from promptrun.pipeline.providers._wire import Exchange, WireFailure, iter_sse, send

__all__ = ["OPENAI_URL", "OpenAIWire"]

OPENAI_URL = "https://api.openai.com/v1"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_NOT_PARAMS = frozenset({"self", "extra_headers", "extra_query", "timeout", "stream"})
#: The keyword names the installed SDK's ``chat.completions.create`` sends in the body.
CHAT_PARAMS = (accepted_params(AsyncCompletions.create) or frozenset()) - _NOT_PARAMS


def typed(model: Any, data: Any) -> Any:
    """``data`` as the SDK's ``model``: validated by pydantic-core (about 10x cheaper than the
    SDK's own recursive ``construct``, and equal to it for data that fits the model), else
    built the SDK's way, which accepts what its models do not describe (as the SDK does)."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return model.construct(**data)


class OpenAIWire:
    """Chat Completions on an aiohttp session, answering with the openai SDK's objects."""

    def __init__(self, session: Any, base_url: str | None, api_key: str) -> None:
        self.session = session
        base = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.url = base + "/chat/completions"
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
        if plan.api_type == "responses" or plan.template_type != "chat":
            return False
        kwargs = plan.llm_kwargs
        extra = kwargs.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            return False
        return kwargs.keys() <= CHAT_PARAMS or (kwargs.keys() - CHAT_PARAMS) == {"extra_body"}

    def _body(self, plan: CallPlan, stream: bool) -> bytes:
        kwargs = plan.llm_kwargs
        body = dict(kwargs)
        extra = body.pop("extra_body", None)
        if stream:
            body["stream"] = True
            body.setdefault("stream_options", {"include_usage": True})
        if extra:
            body.update(extra)
        return _encode(body)

    async def call(self, plan: CallPlan) -> Any:
        exchange = Exchange(self.url, self.headers, self._body(plan, False))
        response, body = await self._send(exchange, stream=False)
        if response.status >= 300:
            raise self._status_error(response, exchange, body)
        completion = typed(ChatCompletion, _decode(body))
        completion._request_id = response.headers.get("x-request-id")
        return completion

    async def stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        exchange = Exchange(self.url, self.headers, self._body(plan, True))
        response, body = await self._send(exchange, stream=True)
        if response.status >= 300:
            raise self._status_error(response, exchange, body)
        return self._chunks(response, exchange)

    async def _send(self, exchange: Exchange, *, stream: bool) -> tuple[Any, bytes]:
        try:
            return await send(self.session, exchange, stream=stream)
        except WireFailure as exc:
            raise self._wire_error(exc, exchange) from exc.__cause__

    async def _chunks(self, response: Any, exchange: Exchange) -> AsyncIterator[Any]:
        try:
            try:
                async for _event, data in iter_sse(response):
                    if data.startswith("[DONE]"):
                        break
                    decoded = _decode(data)
                    if isinstance(decoded, dict) and decoded.get("error"):
                        raise self._stream_error(decoded["error"], exchange)
                    yield typed(ChatCompletionChunk, decoded)
            except (ClientError, OSError, TimeoutError) as exc:
                timed_out = isinstance(exc, TimeoutError)
                failure = WireFailure(exc, timed_out=timed_out)
                raise self._wire_error(failure, exchange) from exc
        finally:
            response.release()

    # -- errors as the SDK raises them ---------------------------------------------------
    def _request(self, exchange: Exchange) -> Any:
        return httpx2.Request("POST", exchange.url, headers=dict(exchange.headers))

    def _wire_error(self, failure: WireFailure, exchange: Exchange) -> Exception:
        request = self._request(exchange)
        if failure.timed_out:
            return openai.APITimeoutError(request=request)
        return openai.APIConnectionError(request=request)

    def _stream_error(self, error: Any, exchange: Exchange) -> Exception:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        return openai.APIError(message=message, request=self._request(exchange), body=error)

    def _status_error(self, response: Any, exchange: Exchange, raw: bytes) -> Exception:
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
