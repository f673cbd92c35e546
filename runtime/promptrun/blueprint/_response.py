"""Provider results back to PromptLayer shapes: messages, token usage, logged-request blueprints."""

from __future__ import annotations

from typing import Any

from promptrun.blueprint import _anthropic, _bedrock, _google, _openai
from promptrun.blueprint._util import Json, reader_family

__all__ = ["kwargs_messages", "logged_blueprint", "response_message", "usage_of"]


def response_message(provider: str, api_type: str | None, response: Any) -> Json:
    """The assistant blueprint message of a provider response (SDK object or dict).

    ``{"role": "assistant", "content": [parts], "tool_calls"?: [...], "input_variables": [],
    "template_format": "f-string"}``. OpenAI results are recognised by shape, so ``api_type``
    is only a hint. Providers promptrun does not call are read by shape.
    """
    kind = reader_family(provider, response)
    if kind == "openai":
        return _openai.response_message(response)
    if kind == "anthropic":
        return _anthropic.response_message(response)
    if kind == "bedrock":
        return _bedrock.response_message(response)
    return _google.response_message(response)


def usage_of(provider: str, response: Any) -> tuple[int, int]:
    """``(input_tokens, output_tokens)`` of a provider response; 0 for what it does not say."""
    if response is None:
        return 0, 0
    kind = reader_family(provider, response)
    if kind == "openai":
        return _openai.usage(response)
    if kind == "anthropic":
        return _anthropic.usage(response)
    if kind == "bedrock":
        return _bedrock.usage(response)
    return _google.usage(response)


def kwargs_messages(provider: str, llm_kwargs: Json) -> list[Json]:
    """The input messages of a provider call, as blueprint messages (the inverse of building).

    Providers promptrun does not call are read by the shape of their kwargs.
    """
    kind = reader_family(provider, llm_kwargs)
    if kind == "openai":
        return _openai.kwargs_messages(llm_kwargs)
    if kind == "anthropic":
        return _anthropic.kwargs_messages(llm_kwargs)
    if kind == "bedrock":
        return _bedrock.kwargs_messages(llm_kwargs)
    return _google.kwargs_messages(llm_kwargs)


def _kwargs_tools(provider: str, llm_kwargs: Json) -> list[Json]:
    kind = reader_family(provider, llm_kwargs)
    if kind == "openai":
        return _openai.kwargs_tools(llm_kwargs)
    if kind == "anthropic":
        return _anthropic.kwargs_tools(llm_kwargs)
    if kind == "bedrock":
        return _bedrock.kwargs_tools(llm_kwargs)
    return _google.kwargs_tools(llm_kwargs)


def logged_blueprint(
    provider: str,
    model_name: str | None,
    parameters: Json | None,
    llm_kwargs: Json,
    response: Any,
    api_type: str | None = None,
) -> Json:
    """The prompt blueprint of a logged request: its input messages plus the output message.

    Always a chat template, completion calls included (their prompt becomes one user message
    and their output an assistant message). ``tools`` are included when the call had any;
    with no response (a failed call) there is no output message.
    """
    messages = kwargs_messages(provider, llm_kwargs)
    if response is not None and response != {}:
        messages.append(response_message(provider, api_type, response))
    template: Json = {"type": "chat", "messages": messages, "input_variables": []}
    tools = _kwargs_tools(provider, llm_kwargs)
    if tools:
        template["tools"] = tools
        # Only OpenAI's tool_choice already has the blueprint's shape.
        if (
            reader_family(provider, llm_kwargs) == "openai"
            and llm_kwargs.get("tool_choice") is not None
        ):
            template["tool_choice"] = llm_kwargs["tool_choice"]
    model: Json = {"provider": provider, "name": model_name, "parameters": parameters or {}}
    if api_type is not None:
        model["api_type"] = api_type
    return {"prompt_template": template, "metadata": {"model": model}}
