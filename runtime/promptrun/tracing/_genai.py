"""The provider call's span attributes, as OpenTelemetry's GenAI semantic conventions name them.

Request attributes come from the call plan (provider, model, parameters); response attributes
(id, model, token usage, finish reasons) from the provider's answer, read with the same
readers the server uses for its records (:func:`promptrun.blueprint.usage_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptrun import blueprint
from promptrun.pipeline import CallPlan, dump_provider_object

__all__ = ["request_attributes", "response_attributes", "span_name"]

# promptrun's provider names -> gen_ai.system (semantic conventions' well-known values).
_SYSTEMS = {
    "openai": "openai",
    "openai.azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "anthropic.bedrock": "aws.bedrock",
    "amazon.bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "openrouter": "openrouter",
}
_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}


def model_of(plan: CallPlan) -> str:
    kwargs = plan.llm_kwargs
    return str(kwargs.get("model") or kwargs.get("modelId") or "")


def span_name(plan: CallPlan) -> str:
    """``{operation} {model}``, as the conventions name a GenAI client span."""
    return f"{_operation(plan)} {model_of(plan)}".strip()


def _operation(plan: CallPlan) -> str:
    return "text_completion" if plan.template_type == "completion" else "chat"


def request_attributes(plan: CallPlan, *, streamed: bool) -> dict[str, Any]:
    system = _SYSTEMS.get(plan.provider, plan.provider)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": _operation(plan),
        "gen_ai.system": system,
        "gen_ai.provider.name": system,
        "gen_ai.request.model": model_of(plan),
        "promptrun.provider": plan.provider,
        "promptrun.prompt.name": plan.template,
        "promptrun.stream": streamed,
    }
    if plan.api_type:
        attributes["promptrun.api_type"] = plan.api_type
    for key, name in _PARAMETERS.items():
        value = plan.llm_kwargs.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    return attributes


def response_attributes(provider: str, response: Any) -> dict[str, Any]:
    """id, model, token usage and finish reasons of an answer (what it says of them)."""
    if response is None:
        return {}
    data = response if isinstance(response, Mapping) else dump_provider_object(response)
    if not isinstance(data, Mapping):
        return {}
    attributes: dict[str, Any] = {}
    response_id = data.get("id") or data.get("responseId") or data.get("response_id")
    if isinstance(response_id, str):
        attributes["gen_ai.response.id"] = response_id
    model = data.get("model") or data.get("modelVersion") or data.get("model_version")
    if isinstance(model, str):
        attributes["gen_ai.response.model"] = model
    try:
        input_tokens, output_tokens = blueprint.usage_of(provider, data)
    except (KeyError, TypeError, ValueError, AttributeError):
        input_tokens = output_tokens = 0
    if input_tokens or output_tokens:
        attributes["gen_ai.usage.input_tokens"] = int(input_tokens)
        attributes["gen_ai.usage.output_tokens"] = int(output_tokens)
    reasons = _finish_reasons(data)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    return attributes


def _finish_reasons(data: Mapping[str, Any]) -> list[str]:
    for key in ("choices", "candidates"):  # OpenAI-style and Mistral; Gemini
        items = data.get(key)
        if isinstance(items, list):
            found = [
                str(item.get("finish_reason") or item.get("finishReason"))
                for item in items
                if isinstance(item, Mapping)
                and (item.get("finish_reason") or item.get("finishReason"))
            ]
            if found:
                return found
    for key in ("stop_reason", "stopReason"):  # Anthropic; Bedrock Converse
        value = data.get(key)
        if value:
            return [str(value)]
    if data.get("object") == "response" and data.get("status"):  # OpenAI Responses
        return [str(data["status"])]
    return []
