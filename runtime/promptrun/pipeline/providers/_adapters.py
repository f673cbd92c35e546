"""The dispatch table: each provider name to the adapter that calls it.

A native transport for a provider (aiohttp instead of its SDK) is one more adapter class here.
"""

from __future__ import annotations

from typing import Any

from promptrun._errors import PromptLayerValidationError
from promptrun.pipeline.providers._anthropic import AnthropicAdapter, BedrockAnthropicAdapter
from promptrun.pipeline.providers._base import Adapter
from promptrun.pipeline.providers._bedrock import BedrockConverseAdapter
from promptrun.pipeline.providers._google import GoogleAdapter, VertexAdapter
from promptrun.pipeline.providers._mistral import MistralAdapter
from promptrun.pipeline.providers._openai import OpenAIAdapter
from promptrun.pipeline.providers._table import PROVIDERS, TABLE

__all__ = ["ADAPTERS", "adapter_for", "split_client_options"]

ADAPTERS: dict[str, type[Adapter]] = {
    "openai": OpenAIAdapter,
    "openai.azure": OpenAIAdapter,
    "openrouter": OpenAIAdapter,
    "mistral": MistralAdapter,
    "anthropic": AnthropicAdapter,
    "anthropic.bedrock": BedrockAnthropicAdapter,
    "amazon.bedrock": BedrockConverseAdapter,
    "google": GoogleAdapter,
    "vertexai": VertexAdapter,
}
assert set(ADAPTERS) == set(TABLE), "every provider in the table has an adapter"


def adapter_for(provider: str) -> Adapter:
    """A new adapter for ``provider``; a clear error for names promptrun does not call."""
    kind = ADAPTERS.get(provider)
    if kind is None:
        raise PromptLayerValidationError(
            f"provider {provider!r} is not supported; use one of {', '.join(PROVIDERS)} "
            "(any OpenAI-compatible server works as 'openai' with a base URL)"
        )
    return kind(TABLE[provider])


def split_client_options(
    provider: str, llm_kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(call kwargs, client options)``: credentials and client settings a template's
    llm_kwargs carry (Bedrock's ``aws_*``) come out, so they choose the client and are
    never sent as call parameters nor logged."""
    kind = ADAPTERS.get(provider)
    keys = kind.client_option_keys if kind is not None else frozenset()
    if not keys or not any(k in llm_kwargs for k in keys):
        return llm_kwargs, {}
    call = {k: v for k, v in llm_kwargs.items() if k not in keys}
    options = {k: v for k, v in llm_kwargs.items() if k in keys and v is not None}
    for key, value in options.items():
        if not isinstance(value, str) or not value.strip():
            raise PromptLayerValidationError(
                f"llm_kwargs[{key!r}] of a {provider} template must be a non-empty string, "
                f"not {type(value).__name__}"
            )
    return call, options
