"""Gemini ``generateContent`` / ``streamGenerateContent`` without google-genai's HTTP stack.

The request is the one ``client.aio.models.generate_content(...)`` (and ``_stream``) sends
for the Gemini API: the URL from the same base (the template's, ``GOOGLE_GEMINI_BASE_URL``
or the public API, as the SDK's ``get_base_url`` says), ``GOOGLE_GENAI_API_VERSION`` or the
installed SDK's default API version, the ``x-goog-api-key`` header, less the SDK's
``user-agent`` / ``x-goog-api-client`` telemetry (:func:`endpoint`); the body is built by
:mod:`._google_body`. Answers are parsed by the SDK's own stream reader and become
``GenerateContentResponse`` objects through the SDK's own converter and ``_from_response``,
with ``sdk_http_response`` (the headers) and, for a plain call, the empty
``automatic_function_calling_history`` the SDK sets. Errors are raised by the SDK's own
``APIError.raise_for_async_response`` (``ClientError`` / ``ServerError`` with its code,
status, message and details); a connection error is aiohttp's, after the SDK's one implicit
retry (1 to 10 s later), and a stream cut short raises aiohttp's ``ClientPayloadError``, as
with the SDK. google-genai retries nothing else unless ``HttpOptions.retry_options`` is set
(promptrun sets none), so neither does this transport.

Not covered (the SDK is called): Vertex AI, a body :mod:`._google_body` does not map
(response schemas, OpenAPI ``parameters``, built-in tools ...), ephemeral ``auth_tokens/``
keys, and an SDK older than the one ``tests/differential`` checks. Automatic continuation
(``finishReason: CONTINUATION`` with a continuation token, which the SDK follows with more
requests) is not followed: the first answer is returned as it came.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import anyio
import msgspec
from aiohttp import (
    ClientConnectorError,
    ClientOSError,
    ClientTimeout,
    ServerDisconnectedError,
)
from google import genai
from google.genai import _api_client, _base_url, errors, models, types
from pydantic import ValidationError

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._google_body import (
    CALL_KEYS,
    Enums,
    Json,
    model_path,
    request_body,
)
from promptrun.pipeline.providers._wire import Exchange, NativeWire, WireFailure

__all__ = ["VERIFIED_SINCE", "GoogleWire", "sdk_verified"]

#: The oldest google-genai release whose request and answers this transport reproduces
#: (tests/differential checks them); with an older SDK installed, calls go through the SDK.
VERIFIED_SINCE = (3, 6)


def sdk_verified() -> bool:
    """Whether the installed google-genai is one this transport is verified against."""
    try:
        return tuple(int(p) for p in genai.__version__.split(".")[:2]) >= VERIFIED_SINCE
    except ValueError:
        return False


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
#: The SDK's aiohttp request: no timeout at all (its HttpOptions.timeout is unset).
_NO_TIMEOUT = ClientTimeout(total=None)
#: What the SDK's aiohttp path retries once, 1 to 10 s later, without retry_options.
_TRANSIENT = (ClientConnectorError, ClientOSError, ServerDisconnectedError)
_GEMINI_URL = "https://generativelanguage.googleapis.com/"
#: What generate_content passes _from_response for a call with a config (no response schema).
_NO_SCHEMA: dict[str, object] = {
    "config": {"response_schema": None, "response_json_schema": None, "include_all_fields": None}
}


@dataclass(frozen=True, slots=True)
class _Exchange(Exchange):
    """A Gemini request, and what the SDK's ``generate_content`` does with its answer, which
    depends on the config: its response schema (none here), and its automatic function
    calling, which records an (empty) history unless the tools are declarations it cannot
    call."""

    configured: bool
    history: bool


class GoogleWire(NativeWire):
    """The Gemini API on an aiohttp session, answering with google-genai's objects.

    google-genai's policy, not the openai / anthropic one: the stream's request is sent on
    its first read; only a refused connection is retried, once; any status but 200 is an
    error; aiohttp's own errors go up as they are.
    """

    lazy_stream = True

    def __init__(self, session: Any, base_url: str | None, api_key: str) -> None:
        self.session = session
        self.prefix, self.headers = endpoint(base_url, api_key)
        self._enums = Enums()
        # covers() builds the body; call() and stream() run right after it for the same
        # plan, with no await between, and take it from here.
        self._built: tuple[CallPlan, str, bytes, bool, bool] | None = None

    def covers(self, plan: CallPlan, stream: bool) -> bool:
        """Whether this transport sends ``plan`` exactly as the SDK would."""
        self._built = self._prepare(plan)
        return self._built is not None

    def _prepare(self, plan: CallPlan) -> tuple[CallPlan, str, bytes, bool, bool] | None:
        kwargs = plan.llm_kwargs
        if not kwargs.keys() <= CALL_KEYS:
            return None
        from promptrun.blueprint import google_call_args

        model, contents, config = google_call_args(kwargs)
        path = model_path(model)
        body = request_body(contents, config, self._enums) if path is not None else None
        if path is None or body is None:
            return None
        return plan, path, _encode(body), bool(config), "tools" not in body

    def exchange(self, plan: CallPlan, stream: bool) -> Exchange:
        built, self._built = self._built, None
        if built is None or built[0] is not plan:  # not the plan covers() just checked
            built = self._prepare(plan)
            if built is None:
                raise ValueError("this Gemini call is not one the native transport sends")
        _, path, body, configured, history = built
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return _Exchange(f"{self.prefix}{path}:{action}", self.headers, body, configured, history)

    async def post(self, exchange: Exchange, *, stream: bool) -> tuple[Any, bytes]:
        try:
            response = await self._post(exchange)
        except _TRANSIENT:
            # google-genai's aiohttp path tries once more after 1-10 s, then raises.
            await anyio.sleep(1 + random.randint(0, 9))
            response = await self._post(exchange)
        if response.status == 200 and stream:
            return response, b""
        try:
            return response, await response.read()
        finally:
            response.release()

    async def _post(self, exchange: Exchange) -> Any:
        return await self.session.post(
            exchange.url, data=exchange.body, headers=exchange.headers, timeout=_NO_TIMEOUT
        )

    async def check(self, response: Any, exchange: Exchange, body: bytes) -> None:
        # The SDK's own reading of a refused answer (the body is read: it reads it again).
        await errors.APIError.raise_for_async_response(response)

    def answer(self, plan: CallPlan, exchange: Exchange, response: Any, body: bytes) -> Any:
        built = cast(_Exchange, exchange)
        text = body.decode(response.get_encoding())  # aiohttp's response.text()
        result = _typed(_loads(text) if text else {}, built.configured)
        result.sdk_http_response = types.HttpResponse(headers=_headers(response))
        if built.history:
            result.automatic_function_calling_history = []
        return result

    def read(self, response: Any) -> AsyncIterator[tuple[str | None, Any]]:
        return _segments(response)

    def event(
        self, plan: CallPlan, exchange: Exchange, response: Any, name: str | None, data: Any
    ) -> Any:
        segments, chunk = data
        if isinstance(chunk, dict) and next(iter(chunk), None) == "error":
            error = chunk.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            errors.APIError.raise_error(code, chunk, segments)  # type: ignore[arg-type]
        result = _typed(chunk if chunk else {}, cast(_Exchange, exchange).configured)
        result.sdk_http_response = types.HttpResponse(headers=segments.headers)
        return result

    def wire_error(self, failure: WireFailure, exchange: Exchange) -> Exception | None:
        return None  # a stream cut short raises aiohttp's ClientPayloadError, as the SDK


async def _segments(response: Any) -> AsyncIterator[tuple[str | None, Any]]:
    """The SDK's own stream reader ("data: " lines, and bare JSON errors across lines): each
    decoded chunk with the reader, whose headers and response the SDK's objects take."""
    segments = _api_client.HttpResponse(response.headers, response)
    async for chunk in segments.async_segments():
        yield None, (segments, chunk)


def _headers(response: Any) -> dict[str, str]:
    headers: dict[str, str] = _api_client.HttpResponse(response.headers).headers
    return headers


def endpoint(base_url: str | None, api_key: str) -> tuple[str, dict[str, str]]:
    """The URL prefix (``{base}/{version}/``) and headers a ``genai.Client(api_key=...)``
    sends to the Gemini API, from the SDK's own defaults and environment variables.

    (Building an SDK client to ask it costs about 80 ms, an SSL context and httpx clients.)
    """
    options = types.HttpOptions(base_url=base_url) if base_url else None
    base = _base_url.get_base_url(False, options) or _GEMINI_URL
    said = os.environ.get("GOOGLE_GENAI_API_VERSION")
    version = "v1beta" if said == "beta" else (said or _api_client.GOOGLE_AI_API_DEFAULT_VERSION)
    prefix = _api_client.join_url_path(base, f"{version}/")
    return prefix, {"Content-Type": "application/json", "x-goog-api-key": api_key.strip()}


def _loads(text: str) -> Any:
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)  # what the SDK accepts (NaN), or the SDK's own error


def _typed(data: Json, configured: bool) -> Any:
    """A ``GenerateContentResponse`` built from the decoded JSON the SDK's way.

    The SDK's ``_from_response`` drops the fields its models do not know, then validates.
    With no field to drop (its models forbid unknown ones, so validation says so) that is
    plain validation, which costs a third as much; anything else takes the SDK's way.
    """
    converted = models._GenerateContentResponse_from_mldev(data, None, None)
    try:
        return types.GenerateContentResponse.model_validate(converted)
    except ValidationError:
        return types.GenerateContentResponse._from_response(
            response=converted, kwargs=_NO_SCHEMA if configured else {}
        )
