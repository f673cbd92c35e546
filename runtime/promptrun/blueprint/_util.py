"""Small helpers shared by the blueprint modules: dict-or-attribute access and message shapes."""

from __future__ import annotations

import json
from typing import Any

from promptrun._errors import PromptLayerValidationError

Json = dict[str, Any]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a dict, ``obj.name`` for anything else (provider SDK objects)."""
    if type(obj) is dict:
        return obj.get(name, default)
    return getattr(obj, name, default)


def _gget(obj: Any, snake: str, camel: str) -> Any:
    """Like :func:`_get` for Google shapes, whose JSON may use either key style."""
    if type(obj) is dict:
        value = obj.get(snake)
        return obj.get(camel) if value is None else value
    return getattr(obj, snake, None)


#: Every provider a template may name, and the family whose kwargs shape it uses.
#: ``vertexai`` serves Gemini (google) and Claude (anthropic) models: see :func:`family`.
FAMILIES: dict[str, str] = {
    "openai": "openai",
    "openai.azure": "openai",
    "openrouter": "openai",
    "mistral": "openai",
    "anthropic": "anthropic",
    "anthropic.bedrock": "anthropic",
    "google": "google",
    "vertexai": "google",
    "amazon.bedrock": "bedrock",
}


def family(provider: str, model_name: Any = None) -> str:
    """The family whose kwargs shape a provider uses: openai, anthropic, google or bedrock.

    ``vertexai`` is anthropic for Claude models (``model_name`` containing "claude"), else
    google.
    """
    kind = FAMILIES.get(provider)
    if kind is None:
        raise PromptLayerValidationError(
            f"Provider {provider!r} is not supported: use one of {', '.join(FAMILIES)}."
        )
    if provider == "vertexai" and "claude" in str(model_name or "").lower():
        return "anthropic"
    return kind


def reader_family(provider: str, payload: Any) -> str:
    """The family whose shapes ``payload`` (kwargs or a response) has, for any provider name.

    Known providers map as :func:`family` does (``vertexai`` by shape). Others are recognised
    by shape, so a server can describe a request logged by any client.
    """
    kind = FAMILIES.get(provider)
    if kind is not None and provider != "vertexai":
        return kind
    if _get(payload, "output") is not None and _get(payload, "stopReason") is not None:
        return "bedrock"
    if _get(payload, "modelId") is not None or _get(payload, "inferenceConfig") is not None:
        return "bedrock"
    if any(_get(payload, key) is not None for key in ("candidates", "contents", "history")):
        return "google"
    if _get(payload, "type") == "message" or _get(payload, "system") is not None:
        return "anthropic"
    if provider == "vertexai" and _get(payload, "messages") is not None:
        return "anthropic"
    return "openai"


def text_part(text: str) -> Json:
    return {"type": "text", "text": text}


def message(role: str, content: list[Json], **extra: Any) -> Json:
    """A blueprint message with the default input_variables and template_format."""
    out: Json = {
        "role": role,
        "content": content,
        "input_variables": [],
        "template_format": "f-string",
    }
    out.update(extra)
    return out


def tool_call(call_id: str, name: str, arguments: str) -> Json:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def parts_text(parts: Any, sep: str = "") -> str:
    """The text of a blueprint content value: its text parts joined (a string stays as it is)."""
    if isinstance(parts, str):
        return parts
    if not parts:
        return ""
    return sep.join(
        p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"
    )


def dump_arguments(value: Any) -> str:
    """Tool-call arguments as the JSON text blueprints carry."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, separators=(",", ":"), default=str)


def load_arguments(arguments: Any, where: str) -> Any:
    """Tool-call arguments as a JSON object, for providers that want one (Anthropic, Google)."""
    if arguments is None or arguments == "":
        return {}
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        raise PromptLayerValidationError(
            f"Tool call {where} has arguments that are not valid JSON: {arguments[:200]!r}"
        ) from None


def plain(obj: Any) -> Any:
    """A JSON-ready copy of an SDK object (``model_dump``); dicts and scalars pass through."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_none=True)
    return obj


def enum_value(value: Any) -> Any:
    """The plain value of an SDK enum member (Google's FinishReason), else the value itself."""
    return getattr(value, "value", value)
