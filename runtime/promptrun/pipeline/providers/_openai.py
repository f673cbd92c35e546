"""The openai SDK: OpenAI, Azure OpenAI, and OpenRouter's OpenAI-compatible endpoint."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from promptrun.pipeline.providers._base import (
    Adapter,
    CallPlan,
    KeyProblem,
    KwargsFitter,
    Wire,
    aiohttp_client,
    status_of,
)
from promptrun.pipeline.providers._table import SANDBOX_KEY

__all__ = ["OpenAIAdapter"]

OPENROUTER_URL = "https://openrouter.ai/api/v1"
_AZURE_SANDBOX_VERSION = "2024-10-21"


class OpenAIAdapter(Adapter):
    """Chat Completions, legacy Completions and Responses through ``AsyncOpenAI``."""

    wire_providers = frozenset({"openai"})
    wire_module = "promptrun.pipeline.providers._openai_native"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._fit_to_sdk = KwargsFitter(self.provider)

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        import openai

        http = aiohttp_client(openai)
        key = SANDBOX_KEY if sandbox else None
        if self.provider == "openai.azure":
            # azure_endpoint=None lets the SDK read AZURE_OPENAI_ENDPOINT
            return openai.AsyncAzureOpenAI(
                azure_endpoint=base_url,  # type: ignore[arg-type]
                api_key=key,
                api_version=_AZURE_SANDBOX_VERSION if sandbox else None,
                http_client=http,
            )
        if self.provider == "openrouter":
            key = key or os.environ.get("OPENROUTER_API_KEY")
            if not key:
                # Never let the SDK fall back to OPENAI_API_KEY: that key is not OpenRouter's.
                raise openai.OpenAIError(
                    "The api_key client option must be set either by passing api_key to the "
                    "client or by setting the OPENROUTER_API_KEY environment variable"
                )
            base = base_url or os.environ.get("OPENROUTER_BASE_URL") or OPENROUTER_URL
            return openai.AsyncOpenAI(base_url=base, api_key=key, http_client=http)
        return openai.AsyncOpenAI(base_url=base_url, api_key=key, http_client=http)

    def open_wire(self, session: Any, base_url: str | None, sandbox: bool) -> Wire | None:
        if self.provider not in self.wire_providers:
            return None
        key = SANDBOX_KEY if sandbox else os.environ.get("OPENAI_API_KEY")
        if not key:
            return None
        from promptrun.pipeline.providers._openai_native import OpenAIWire

        return OpenAIWire(session, base_url, key)

    def _method(self, client: Any, plan: CallPlan) -> Callable[..., Any]:
        if plan.api_type == "responses":
            return client.responses.create  # type: ignore[no-any-return]
        if plan.template_type == "completion" and self.provider != "openrouter":
            return client.completions.create  # type: ignore[no-any-return]
        return client.chat.completions.create  # type: ignore[no-any-return]

    def _kwargs(self, plan: CallPlan, stream: bool) -> dict[str, Any]:
        kwargs = dict(plan.llm_kwargs)
        if self.provider == "openrouter":
            # OpenRouter reports tokens (and cost) only when asked.
            extra = dict(kwargs.get("extra_body") or {})
            extra.setdefault("usage", {"include": True})
            kwargs["extra_body"] = extra
        if stream:
            kwargs["stream"] = True
            if plan.api_type != "responses":
                # Usage arrives only when asked for; the log needs it.
                kwargs.setdefault("stream_options", {"include_usage": True})
        return kwargs

    async def call(self, client: Any, plan: CallPlan) -> Any:
        method = self._method(client, plan)
        return await method(**self._fit_to_sdk(method, self._kwargs(plan, False)))

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        method = self._method(client, plan)
        return await method(**self._fit_to_sdk(method, self._kwargs(plan, True)))  # type: ignore[no-any-return]

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            status = status_of(exc)
            if status == 401:
                return KeyProblem("refused", self.info.key_var, status)
            return None
        if isinstance(exc, openai.APIError):
            return None
        # Construction errors: OpenAIError for a missing key, ValueError (in some versions)
        # for a missing Azure api_version or endpoint.
        if not isinstance(exc, openai.OpenAIError | ValueError):
            return None
        text = str(exc)
        if "api_version" in text:
            return KeyProblem("missing", "OPENAI_API_VERSION")
        if "azure_endpoint" in text or "base_url" in text:
            return KeyProblem("missing", "AZURE_OPENAI_ENDPOINT")
        if "api_key" in text or "API key" in text:
            return KeyProblem("missing", self.info.key_var)
        return None
