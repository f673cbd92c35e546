"""Anthropic Messages without the anthropic SDK's HTTP stack (the native transport).

The request is the one ``AsyncAnthropic().messages.create(**kwargs)`` sends: the URL and the
headers are taken once from an SDK client built with the same key and base URL (so its
``anthropic-version`` and credential headers are the installed SDK's), less its
``User-Agent`` and ``X-Stainless-*`` telemetry; the body is the kwargs, as the SDK sends them
(parameters its ``create`` no longer names, such as ``temperature``, go in the body as
promptrun's SDK path sends them through ``extra_body``).

Answers become the SDK's ``Message`` and stream events (``RawMessageStartEvent``, ...), with
``_request_id``; errors are made by the SDK's own error factory (``make_status_error``, and
the client's connection and timeout errors), so classes, messages and bodies are the SDK's.

Not covered (the SDK is called): legacy completions, a ``max_tokens`` the SDK refuses to send
without streaming, models the SDK warns about, per-call headers or timeouts in the kwargs.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import anthropic
import httpx2
import msgspec
from aiohttp import ClientPayloadError
from anthropic import types
from anthropic._constants import MODEL_NONSTREAMING_TOKENS
from anthropic._error_classes import make_status_error
from anthropic.resources.messages import messages as _messages_module

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._openai_native import typed
from promptrun.pipeline.providers._wire import SKIP, Exchange, NativeWire, WireFailure

__all__ = ["VERIFIED_SINCE", "AnthropicWire", "sdk_verified"]

# The oldest anthropic release whose errors and stream failures this transport reproduces
# (tests/differential checks them); with an older SDK installed, calls go through the SDK.
VERIFIED_SINCE = (2, 17)


def sdk_verified() -> bool:
    """Whether the installed anthropic SDK is one this transport is verified against."""
    parts = anthropic.__version__.split(".")[:2]
    try:
        return tuple(int(p) for p in parts) >= VERIFIED_SINCE
    except ValueError:
        return False


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
#: Per-call options the SDK takes out of the body, or that change how it sends.
_NOT_BODY = frozenset({"extra_headers", "extra_query", "timeout", "stream", "betas"})
_EVENTS: dict[str, Any] = {
    "message_start": types.RawMessageStartEvent,
    "message_delta": types.RawMessageDeltaEvent,
    "message_stop": types.RawMessageStopEvent,
    "content_block_start": types.RawContentBlockStartEvent,
    "content_block_delta": types.RawContentBlockDeltaEvent,
    "content_block_stop": types.RawContentBlockStopEvent,
}
_WARNED_MODELS = frozenset(getattr(_messages_module, "DEPRECATED_MODELS", {})) | frozenset(
    getattr(_messages_module, "MODELS_TO_WARN_WITH_THINKING_ENABLED", ())
)
# What httpx2 says when a body is cut short, as the SDK's connection error quotes it.
_CUT = "peer closed connection without sending complete message body (incomplete chunked read)"


class AnthropicWire(NativeWire):
    """Messages on an aiohttp session, answering with the anthropic SDK's objects."""

    def __init__(self, session: Any, base_url: str | None, api_key: str) -> None:
        self.session = session
        # The SDK's own client says which URL and headers it would send (never used to call).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sdk = anthropic.Anthropic(api_key=api_key, base_url=base_url)
        try:
            headers = {**sdk.auth_headers, **sdk.default_headers}
            self.url = str(sdk.base_url).rstrip("/") + "/v1/messages"
        finally:
            sdk.close()
        self._errors = sdk  # its error factories need no connection
        self.headers = {
            k: v
            for k, v in headers.items()
            if isinstance(v, str)
            and k.lower() != "user-agent"
            and not k.lower().startswith("x-stainless")
        }

    def covers(self, plan: CallPlan, stream: bool) -> bool:
        """Whether this transport sends ``plan`` exactly as the SDK would."""
        kwargs = plan.llm_kwargs
        if not stream and not self._fits_without_streaming(plan):
            return False  # the SDK refuses it (ValueError): let it say so
        if plan.template_type != "chat" and "messages" not in kwargs:
            return False
        if kwargs.keys() & _NOT_BODY or kwargs.get("model") in _WARNED_MODELS:
            return False
        extra = kwargs.get("extra_body")
        return extra is None or isinstance(extra, dict)

    def _fits_without_streaming(self, plan: CallPlan) -> bool:
        max_tokens = plan.llm_kwargs.get("max_tokens")
        if not isinstance(max_tokens, int):
            return False
        limit = MODEL_NONSTREAMING_TOKENS.get(str(plan.llm_kwargs.get("model")))
        return 3600 * max_tokens / 128_000 <= 600 and not (limit and max_tokens > limit)

    def exchange(self, plan: CallPlan, stream: bool) -> Exchange:
        body = dict(plan.llm_kwargs)
        extra = body.pop("extra_body", None)
        if stream:
            body["stream"] = True
        if extra:
            body.update(extra)
        return Exchange(self.url, self.headers, _encode(body))

    def answer(self, plan: CallPlan, exchange: Exchange, response: Any, body: bytes) -> Any:
        message = typed(types.Message, _decode(body))
        message._request_id = response.headers.get("request-id")
        return message

    def event(
        self, plan: CallPlan, exchange: Exchange, response: Any, name: str | None, data: str
    ) -> Any:
        if name is None or name == "ping":
            return SKIP
        if name == "error":
            raise self._event_error(response, exchange, data)
        if not data:
            return SKIP
        decoded = _decode(data)
        kind = decoded.get("type") if isinstance(decoded, dict) else None
        model = _EVENTS.get(kind) if isinstance(kind, str) else None
        if model is None:
            from anthropic._models import construct_type

            return construct_type(type_=types.RawMessageStreamEvent, value=decoded)
        return typed(model, decoded)

    # -- errors as the SDK raises them ---------------------------------------------------
    def _request(self, exchange: Exchange) -> httpx2.Request:
        return httpx2.Request("POST", exchange.url, headers=dict(exchange.headers))

    def wire_error(self, failure: WireFailure, exchange: Exchange) -> Exception:
        request = self._request(exchange)
        cause = failure.__cause__
        if failure.timed_out:
            return self._sdk_error("_make_timeout_error", request, httpx2.ReadTimeout(str(failure)))
        if isinstance(cause, ClientPayloadError):
            return self._sdk_error(
                "_make_connection_error", request, httpx2.RemoteProtocolError(_CUT)
            )
        return self._sdk_error("_make_connection_error", request, httpx2.ConnectError(str(failure)))

    def _sdk_error(self, factory: str, request: httpx2.Request, cause: Exception) -> Exception:
        """The error the SDK would raise for ``cause``: its own wording where the installed
        version has a factory for it (anthropic 2.17+), else its public classes' defaults."""
        make = getattr(self._errors, factory, None)
        if make is not None:
            made: Exception = make(request, cause)
            return made
        if isinstance(cause, httpx2.TimeoutException):
            return anthropic.APITimeoutError(request=request)
        return anthropic.APIConnectionError(request=request)

    def _httpx_response(self, response: Any, exchange: Exchange, raw: bytes) -> httpx2.Response:
        return httpx2.Response(
            response.status,
            headers=list(response.raw_headers),
            content=raw,
            request=self._request(exchange),
        )

    def status_error(self, response: Any, exchange: Exchange, raw: bytes) -> Exception:
        # The installed SDK's own wording (it changes between versions), where it has one.
        from_response = getattr(self._errors, "_make_status_error_from_response", None)
        if from_response is not None:
            made: Exception = from_response(self._httpx_response(response, exchange, raw))
            return made
        text = raw.decode("utf-8", "replace").strip()
        body: Any = text
        with contextlib.suppress(msgspec.DecodeError):
            body = _decode(text) if text else text
        err = f"Error code: {response.status}"
        return make_status_error(
            err, body=body, response=self._httpx_response(response, exchange, raw)
        )

    def _event_error(self, response: Any, exchange: Exchange, data: str) -> Exception:
        body: Any = data
        try:
            body = _decode(data)
            err = f"{body}"
        except msgspec.DecodeError:
            err = data or f"Error code: {response.status}"
        return make_status_error(
            err, body=body, response=self._httpx_response(response, exchange, b"")
        )
