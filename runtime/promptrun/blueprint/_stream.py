"""Pick the stream accumulator for a provider call."""

from __future__ import annotations

from promptrun.blueprint._accumulator import StreamAccumulator
from promptrun.blueprint._anthropic_stream import AnthropicAccumulator
from promptrun.blueprint._bedrock_stream import BedrockAccumulator, MistralAccumulator
from promptrun.blueprint._google_stream import GoogleAccumulator
from promptrun.blueprint._openai_stream import (
    ChatAccumulator,
    CompletionAccumulator,
    ResponsesAccumulator,
)
from promptrun.blueprint._util import family

__all__ = ["stream_accumulator"]


def stream_accumulator(
    provider: str,
    api_type: str | None = None,
    template_type: str | None = "chat",
    model_name: str | None = None,
) -> StreamAccumulator:
    """A new accumulator for one streamed call of ``provider``.

    OpenAI: Chat Completions chunks, legacy Completions chunks (``template_type ==
    "completion"``) or Responses events (``api_type == "responses"``); Anthropic: Messages
    stream events; Google: GenerateContentResponse chunks; Bedrock: ConverseStream events;
    Mistral: mistralai's ``CompletionEvent``. ``model_name`` tells vertexai's Claude from Gemini.
    """
    kind = family(provider, model_name)
    if provider == "mistral":
        return MistralAccumulator()
    if kind == "bedrock":
        return BedrockAccumulator()
    if kind == "openai":
        if api_type == "responses":
            return ResponsesAccumulator()
        if template_type == "completion":
            return CompletionAccumulator()
        return ChatAccumulator()
    if kind == "anthropic":
        return AnthropicAccumulator()
    return GoogleAccumulator()
