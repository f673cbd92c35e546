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
from typing import Any

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


class GoogleWire:
    """The Gemini API on an aiohttp session, answering with google-genai's objects."""

    def __init__(self, session: Any, base_url: str | None, api_key: str) -> None:
        self.session = session
        self.prefix, self.headers = endpoint(base_url, api_key)
        self._enums = Enums()
        # covers() builds the body; call() and stream() run right after it for the same
        # plan, with no await between, and take it from here.
        self._built: tuple[CallPlan, str, Json] | None = None

    def covers(self, plan: CallPlan, stream: bool) -> bool:
        """Whether this transport sends ``plan`` exactly as the SDK would."""
        self._built = self._prepare(plan)
        return self._built is not None

    def _prepare(self, plan: CallPlan) -> tuple[CallPlan, str, Json] | None:
        kwargs = plan.llm_kwargs
        if not kwargs.keys() <= CALL_KEYS:
            return None
        from promptrun.blueprint import google_call_args

        model, contents, config = google_call_args(kwargs)
        path = model_path(model)
        body = request_body(contents, config, self._enums) if path is not None else None
        if path is None or body is None:
            return None
        # What the SDK's generate_content does with the answer depends on the config: its
        # response schema (none here), and its automatic function calling, which records an
        # (empty) history unless the tools are declarations it cannot call.
        prepared = {
            "body": _encode(body),
            "configured": bool(config),
            "history": "tools" not in body,
        }
        return plan, path, prepared

    def _exchange(self, plan: CallPlan, action: str) -> tuple[str, Json]:
        built, self._built = self._built, None
        if built is None or built[0] is not plan:  # not the plan covers() just checked
            built = self._prepare(plan)
            if built is None:
                raise ValueError("this Gemini call is not one the native transport sends")
        _, path, prepared = built
        return f"{self.prefix}{path}:{action}", prepared

    async def call(self, plan: CallPlan) -> Any:
        url, built = self._exchange(plan, "generateContent")
        response = await self._post(url, built["body"])
        try:
            await errors.APIError.raise_for_async_response(response)
            text = await response.text()
        finally:
            response.release()
        result = _typed(_loads(text) if text else {}, built["configured"])
        result.sdk_http_response = types.HttpResponse(
            headers=_api_client.HttpResponse(response.headers).headers
        )
        if built["history"]:
            result.automatic_function_calling_history = []
        return result

    async def stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        """The chunks; as with the SDK, the request is sent on the first read."""
        url, built = self._exchange(plan, "streamGenerateContent?alt=sse")
        return self._chunks(url, built)

    async def _post(self, url: str, body: bytes) -> Any:
        try:
            return await self.session.post(
                url, data=body, headers=self.headers, timeout=_NO_TIMEOUT
            )
        except _TRANSIENT:
            # google-genai's aiohttp path tries once more after 1-10 s, then raises.
            await anyio.sleep(1 + random.randint(0, 9))
            return await self.session.post(
                url, data=body, headers=self.headers, timeout=_NO_TIMEOUT
            )

    async def _chunks(self, url: str, built: Json) -> AsyncIterator[Any]:
        response = await self._post(url, built["body"])
        try:
            await errors.APIError.raise_for_async_response(response)
            # The SDK's own reader: "data: " lines, and bare JSON errors across lines.
            segments = _api_client.HttpResponse(response.headers, response)
            headers = segments.headers
            async for chunk in segments.async_segments():
                if isinstance(chunk, dict) and next(iter(chunk), None) == "error":
                    error = chunk.get("error")
                    code = error.get("code") if isinstance(error, dict) else None
                    await errors.APIError.raise_error_async(code, chunk, segments)  # type: ignore[arg-type]
                result = _typed(chunk if chunk else {}, built["configured"])
                result.sdk_http_response = types.HttpResponse(headers=headers)
                yield result
        finally:
            response.release()


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
