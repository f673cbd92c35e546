"""The JSON body google-genai sends for ``generate_content``, built without its pydantic models.

``models.generate_content(model, contents, config)`` validates its arguments into the SDK's
pydantic types, converts them with its ``_GenerateContentParameters_to_mldev`` converter and
dumps what is left with ``model_dump(exclude_none=True)``: the outer names become camelCase
(``generationConfig``, ``systemInstruction``, ``functionCall``), while objects the converter
copies whole keep their snake_case field names (``inlineData.mime_type``,
``functionDeclarations[].parameters_json_schema``, ``thinkingConfig.thinking_budget``), and
bytes go out as URL-safe base64. :func:`request_body` reproduces that for the shapes
promptrun's blueprint conversion produces, and returns None for anything else (a field it
does not map, a value the SDK would coerce or refuse): such a call goes through the SDK.
``tests/providers/test_google_body.py`` compares it with the installed SDK's converter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

__all__ = ["CALL_KEYS", "model_path", "request_body"]

Json = dict[str, Any]

#: The llm_kwargs keys promptrun's ``google_call_args`` reads.
CALL_KEYS = frozenset(
    {
        "model", "contents", "history", "generation_config", "config",
        "system_instruction", "tools", "tool_config", "safety_settings",
    }
)  # fmt: skip


class _Unmapped(Exception):
    """A shape this module does not build: the SDK sends the call."""


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unmapped
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unmapped
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Unmapped
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Unmapped
    return value


def _strs(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Unmapped
    return [_str(v) for v in value]


def _dict(value: Any, allowed: frozenset[str]) -> Json:
    if not isinstance(value, dict) or not value.keys() <= allowed:
        raise _Unmapped
    return {k: v for k, v in value.items() if v is not None}


def _bytes64(value: Any) -> str:
    """A base64 text as the SDK resends it: decoded to bytes, then URL-safe base64."""
    text = _str(value)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Unmapped from None
    return base64.urlsafe_b64encode(raw).decode("ascii")


# -- generation parameters -------------------------------------------------------------------
_GENERATION: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "temperature": ("temperature", _float),
    "top_p": ("topP", _float),
    "top_k": ("topK", _float),
    "candidate_count": ("candidateCount", _int),
    "max_output_tokens": ("maxOutputTokens", _int),
    "stop_sequences": ("stopSequences", _strs),
    "response_logprobs": ("responseLogprobs", _bool),
    "logprobs": ("logprobs", _int),
    "presence_penalty": ("presencePenalty", _float),
    "frequency_penalty": ("frequencyPenalty", _float),
    "seed": ("seed", _int),
    "response_mime_type": ("responseMimeType", _str),
}
_THINKING = frozenset({"thinking_budget", "include_thoughts"})
_SAFETY = frozenset({"category", "threshold"})
_CALLING = frozenset({"mode", "allowed_function_names"})
_DECLARATION = frozenset({"name", "description", "parameters_json_schema"})


def _thinking(value: Any) -> Json:
    config = _dict(value, _THINKING)
    out: Json = {}
    if "thinking_budget" in config:
        out["thinking_budget"] = _int(config["thinking_budget"])
    if "include_thoughts" in config:
        out["include_thoughts"] = _bool(config["include_thoughts"])
    return out


# -- contents --------------------------------------------------------------------------------
def _part(value: Any) -> Json:
    if not isinstance(value, dict) or not value:
        raise _Unmapped
    out: Json = {}
    for key, item in value.items():
        if item is None:
            continue
        if key == "text":
            out["text"] = _str(item)
        elif key == "thought":
            out["thought"] = _bool(item)
        elif key == "thought_signature":
            out["thoughtSignature"] = _bytes64(item)
        elif key == "inline_data":
            blob = _dict(item, frozenset({"mime_type", "data"}))
            out["inlineData"] = {
                "data": _bytes64(blob.get("data")),
                **({"mime_type": _str(blob["mime_type"])} if "mime_type" in blob else {}),
            }
        elif key == "file_data":
            data = _dict(item, frozenset({"file_uri", "mime_type"}))
            out["fileData"] = {k: _str(v) for k, v in data.items()}
        elif key == "function_call":
            call = _dict(item, frozenset({"id", "name", "args"}))
            out["functionCall"] = _named(call, "args")
        elif key == "function_response":
            answer = _dict(item, frozenset({"id", "name", "response"}))
            out["functionResponse"] = _named(answer, "response")
        else:
            raise _Unmapped
    if not out:
        raise _Unmapped
    return out


def _named(value: Json, payload: str) -> Json:
    out: Json = {}
    for key, item in value.items():
        if key == payload:
            if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
                raise _Unmapped
            out[key] = item
        else:
            out[key] = _str(item)
    return out


def _content(value: Any) -> Json:
    content = _dict(value, frozenset({"role", "parts"}))
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _Unmapped
    out: Json = {"parts": [_part(p) for p in parts]}
    if "role" in content:
        out["role"] = _str(content["role"])
    return out


# -- tools -----------------------------------------------------------------------------------
def _declaration(value: Any) -> Json:
    declaration = _dict(value, _DECLARATION)
    if "name" not in declaration:
        raise _Unmapped
    for key in ("name", "description"):
        if key in declaration:
            _str(declaration[key])
    return declaration


def _tools(value: Any) -> list[Json]:
    if not isinstance(value, list) or not value:
        raise _Unmapped
    declarations: list[Json] = []
    for tool in value:
        found = _dict(tool, frozenset({"function_declarations"})).get("function_declarations")
        if not isinstance(found, list) or not found:
            raise _Unmapped
        declarations.extend(_declaration(d) for d in found)
    # The SDK merges every tool's function declarations into one tool.
    return [{"functionDeclarations": declarations}]


def _tool_config(value: Any, modes: frozenset[str]) -> Json:
    config = _dict(value, frozenset({"function_calling_config"}))
    calling = _dict(config.get("function_calling_config"), _CALLING)
    out: Json = {}
    if "mode" in calling:
        if calling["mode"] not in modes:
            raise _Unmapped
        out["mode"] = calling["mode"]
    if "allowed_function_names" in calling:
        out["allowedFunctionNames"] = _strs(calling["allowed_function_names"])
    return {"functionCallingConfig": out}


def _safety(value: Any, categories: frozenset[str], thresholds: frozenset[str]) -> list[Json]:
    if not isinstance(value, list):
        raise _Unmapped
    out: list[Json] = []
    for setting in value:
        item = _dict(setting, _SAFETY)
        if "category" in item and item["category"] not in categories:
            raise _Unmapped
        if "threshold" in item and item["threshold"] not in thresholds:
            raise _Unmapped
        out.append(item)
    return out


# -- the request -----------------------------------------------------------------------------
class Enums:
    """The enum values the installed SDK accepts (read once from its ``types``)."""

    def __init__(self) -> None:
        from google.genai import types

        self.modes = frozenset(m.value for m in types.FunctionCallingConfigMode)
        self.categories = frozenset(c.value for c in types.HarmCategory)
        self.thresholds = frozenset(t.value for t in types.HarmBlockThreshold)


def model_path(model: Any) -> str | None:
    """``models/{model}`` as the SDK names it in the URL, or None where it refuses the name."""
    if not isinstance(model, str) or not model or "/" in model.removeprefix("models/"):
        return None
    if ".." in model or "?" in model or "&" in model or "#" in model or "%" in model:
        return None
    return model if model.startswith("models/") else f"models/{model}"


def request_body(contents: Any, config: Json, enums: Enums) -> Json | None:
    """The JSON body for ``generate_content(contents=contents, config=config)``, or None."""
    try:
        return _body(contents, config, enums)
    except _Unmapped:
        return None


def _body(contents: Any, config: Json, enums: Enums) -> Json:
    if not isinstance(contents, list) or not contents:
        raise _Unmapped
    body: Json = {"contents": [_content(c) for c in contents]}
    if not config:
        return body
    generation: Json = {}
    for key, value in config.items():
        if value is None:
            continue
        mapped = _GENERATION.get(key)
        if mapped is not None:
            name, convert = mapped
            generation[name] = convert(value)
        elif key == "system_instruction":
            body["systemInstruction"] = _content(value)
        elif key == "thinking_config":
            generation["thinkingConfig"] = _thinking(value)
        elif key == "tools":
            body["tools"] = _tools(value)
        elif key == "tool_config":
            body["toolConfig"] = _tool_config(value, enums.modes)
        elif key == "safety_settings":
            body["safetySettings"] = _safety(value, enums.categories, enums.thresholds)
        else:
            raise _Unmapped
    body["generationConfig"] = generation
    return body
