"""Google Gemini (google-genai): blueprint to kwargs, and responses or kwargs back to blueprint.

The kwargs shape is the one PromptLayer serves and the PromptLayer SDK consumes:

- chat: ``{"model", "history": [Content...], "generation_config": {...}}``; the conversation,
  last user turn included, is ``history``.
- completion: ``{"model", "contents": [Content...], "generation_config": {...}}``.

``generation_config`` holds the generation parameters (``temperature``, ``max_output_tokens``
...) and ``system_instruction``, ``tools``, ``tool_config``: it is a ``GenerateContentConfig``
as a dict. A Content is ``{"role": "user" | "model", "parts": [{"text": ...}, ...]}``.
:func:`call_args` turns either shape into the arguments of ``models.generate_content``.
Dicts read here may use snake_case or camelCase keys (Google's JSON uses the latter).
"""

from __future__ import annotations

import base64
from typing import Any

from promptrun.blueprint._util import (
    Json,
    _get,
    _gget,
    dump_arguments,
    load_arguments,
    message,
    parts_text,
    text_part,
    tool_call,
)

#: Blueprint or OpenAI-style parameter names and their GenerateContentConfig names.
PARAMETER_NAMES = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "stop": "stop_sequences",
}


def config_params(params: Json) -> Json:
    """Parameters as GenerateContentConfig fields (None values dropped, names translated)."""
    return {PARAMETER_NAMES.get(k, k): v for k, v in params.items() if v is not None}


# -- building -------------------------------------------------------------------------------


def _image(part: Json) -> Json:
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        mime_type, data = url[5:].split(";base64,", 1)
        return {"inline_data": {"mime_type": mime_type, "data": data}}
    return {"file_data": {"file_uri": url}}


def _parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[Json] = []
    for part in content or ():
        if isinstance(part, str):
            part = text_part(part)
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                out.append({"text": part["text"]})
        elif kind == "image_url":
            out.append(_image(part))
        elif kind == "thinking":
            thought: Json = {"text": part.get("thinking") or "", "thought": True}
            if part.get("signature"):
                thought["thought_signature"] = part["signature"]
            out.append(thought)
        else:
            out.append({k: v for k, v in part.items() if k != "type"})
    return out


def _tool_config(choice: Any) -> Json | None:
    if choice in ("auto", "none", "required"):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]
        return {"function_calling_config": {"mode": mode}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return {"function_calling_config": {"mode": "ANY", "allowed_function_names": [name]}}
    return None


def _declarations(tools: list[Json]) -> list[Json]:
    functions: list[Json] = []
    others: list[Json] = []
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, dict):
            declaration: Json = {"name": function.get("name")}
            if function.get("description"):
                declaration["description"] = function["description"]
            if function.get("parameters"):
                # Arbitrary JSON schema: Gemini's own Schema type is a narrower dialect.
                declaration["parameters_json_schema"] = function["parameters"]
            functions.append(declaration)
        else:
            others.append(tool)
    return ([{"function_declarations": functions}] if functions else []) + others


def build(prompt_template: Json, model: Json) -> Json:
    """The Google kwargs (``history`` for chat, ``contents`` for completion) of a template."""
    config = config_params(model.get("parameters") or {})
    contents: list[Json] = []
    system: list[str] = []
    names: dict[Any, Any] = {}
    if prompt_template.get("type") == "completion":
        contents.append({"role": "user", "parts": _parts(prompt_template.get("content"))})
    for msg in prompt_template.get("messages") or ():
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = parts_text(content)
            if text:
                system.append(text)
            continue
        if role == "assistant":
            role, parts = "model", _parts(content)
            for tc in msg.get("tool_calls") or ():
                function = tc.get("function") or {}
                names[tc.get("id")] = function.get("name")
                args = load_arguments(function.get("arguments"), repr(tc.get("id")))
                parts.append({"function_call": {"name": function.get("name"), "args": args}})
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            name = names.get(call_id) or msg.get("name") or call_id
            result = {"result": parts_text(content)}
            role, parts = "user", [{"function_response": {"name": name, "response": result}}]
        else:
            role, parts = "user", _parts(content)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if system:
        config["system_instruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    tools = prompt_template.get("tools")
    if tools:
        config["tools"] = _declarations(tools)
        tool_config = _tool_config(prompt_template.get("tool_choice"))
        if tool_config is not None:
            config["tool_config"] = tool_config
    key = "contents" if prompt_template.get("type") == "completion" else "history"
    return {"model": model.get("name"), key: contents, "generation_config": config}


def call_args(llm_kwargs: Json) -> tuple[str, list[Any], Json]:
    """``(model, contents, config)`` for ``client.models.generate_content`` from Google kwargs.

    Top-level ``system_instruction``, ``tools``, ``tool_config`` and ``safety_settings`` are
    folded into the config.
    """
    contents = llm_kwargs.get("contents")
    if contents is None:
        contents = llm_kwargs.get("history") or []
    elif isinstance(contents, str | dict):
        contents = [contents]
    config = dict(llm_kwargs.get("generation_config") or llm_kwargs.get("config") or {})
    for key in ("system_instruction", "tools", "tool_config", "safety_settings"):
        if llm_kwargs.get(key) is not None:
            config.setdefault(key, llm_kwargs[key])
    return str(llm_kwargs.get("model") or ""), list(contents), config


# -- responses back to blueprint --------------------------------------------------------------


def signature_text(value: Any) -> Any:
    """A thought signature as JSON text: SDK objects hold bytes, JSON holds base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def response_message(response: Any) -> Json:
    """The assistant message of a GenerateContentResponse, object or dict (either key style)."""
    content: list[Json] = []
    calls: list[Json] = []
    candidates = _get(response, "candidates") or ()
    parts = _get(_get(candidates[0], "content"), "parts") if candidates else None
    for part in parts or ():
        text = _get(part, "text")
        if text is not None:
            if _get(part, "thought"):
                signature = signature_text(_gget(part, "thought_signature", "thoughtSignature"))
                content.append({"type": "thinking", "thinking": text, "signature": signature})
            elif text:
                content.append(text_part(text))
            continue
        call = _gget(part, "function_call", "functionCall")
        if call is not None:
            call_id = _get(call, "id") or f"call_{len(calls)}"
            calls.append(
                tool_call(call_id, _get(call, "name") or "", dump_arguments(_get(call, "args")))
            )
    return message("assistant", content, **({"tool_calls": calls} if calls else {}))


def usage(response: Any) -> tuple[int, int]:
    """(input, output) tokens; output counts thinking tokens, as OpenAI's does."""
    meta = _gget(response, "usage_metadata", "usageMetadata")
    if meta is None:
        return 0, 0
    prompt = _gget(meta, "prompt_token_count", "promptTokenCount") or 0
    output = (_gget(meta, "candidates_token_count", "candidatesTokenCount") or 0) + (
        _gget(meta, "thoughts_token_count", "thoughtsTokenCount") or 0
    )
    return prompt, output


# -- kwargs back to blueprint ----------------------------------------------------------------


def _blob_url(blob: Any) -> str:
    data = signature_text(_get(blob, "data"))
    return f"data:{_gget(blob, 'mime_type', 'mimeType')};base64,{data}"


def _instruction_parts(value: Any) -> list[Json]:
    if isinstance(value, str):
        return [text_part(value)]
    if isinstance(value, dict) and "parts" in value:
        value = value["parts"]
    if isinstance(value, dict):
        value = [value]
    return [
        text_part(p) if isinstance(p, str) else text_part(p.get("text") or "") for p in value or ()
    ]


def kwargs_messages(llm_kwargs: Json) -> list[Json]:
    """The input messages of a Google call (``contents`` or ``history``), as blueprint messages."""
    out: list[Json] = []
    config = llm_kwargs.get("generation_config") or llm_kwargs.get("config") or {}
    instruction = (
        llm_kwargs.get("system_instruction")
        or llm_kwargs.get("systemInstruction")
        or config.get("system_instruction")
        or config.get("systemInstruction")
    )
    if instruction:
        out.append(message("system", _instruction_parts(instruction)))
    contents = llm_kwargs.get("contents")
    if contents is None:
        contents = llm_kwargs.get("history") or []
    if isinstance(contents, str | dict):
        contents = [contents]
    ids_by_name: dict[Any, str] = {}
    for content in contents:
        if isinstance(content, str):
            out.append(message("user", [text_part(content)]))
            continue
        parts_value = content.get("parts") if "parts" in content else [content]
        role = "assistant" if content.get("role") == "model" else "user"
        parts: list[Json] = []
        calls: list[Json] = []
        for part in parts_value or ():
            if isinstance(part, str):
                parts.append(text_part(part))
                continue
            text = part.get("text")
            call = _gget(part, "function_call", "functionCall")
            answer = _gget(part, "function_response", "functionResponse")
            inline = _gget(part, "inline_data", "inlineData")
            file = _gget(part, "file_data", "fileData")
            if text is not None:
                if part.get("thought"):
                    signature = signature_text(_gget(part, "thought_signature", "thoughtSignature"))
                    parts.append({"type": "thinking", "thinking": text, "signature": signature})
                else:
                    parts.append(text_part(text))
            elif call is not None:
                call_id = call.get("id") or f"call_{len(calls)}"
                ids_by_name[call.get("name")] = call_id
                calls.append(
                    tool_call(call_id, call.get("name") or "", dump_arguments(call.get("args")))
                )
            elif answer is not None:
                name = answer.get("name")
                result = answer.get("response")
                text_value = (
                    result["result"]
                    if isinstance(result, dict)
                    and set(result) == {"result"}
                    and isinstance(result["result"], str)
                    else dump_arguments(result)
                )
                call_id = answer.get("id") or ids_by_name.get(name) or name
                out.append(
                    message("tool", [text_part(text_value)], tool_call_id=call_id, name=name)
                )
            elif inline is not None:
                parts.append({"type": "image_url", "image_url": {"url": _blob_url(inline)}})
            elif file is not None:
                parts.append(
                    {"type": "image_url", "image_url": {"url": _gget(file, "file_uri", "fileUri")}}
                )
            else:
                parts.append(dict(part))
        if parts or calls or not parts_value:
            out.append(message(role, parts, **({"tool_calls": calls} if calls else {})))
    return out


def kwargs_tools(llm_kwargs: Json) -> list[Json]:
    """The function declarations of a Google call, in blueprint (function) form."""
    config = llm_kwargs.get("generation_config") or llm_kwargs.get("config") or {}
    out: list[Json] = []
    for tool in llm_kwargs.get("tools") or config.get("tools") or ():
        declarations = _gget(tool, "function_declarations", "functionDeclarations")
        if declarations is None:
            out.append(tool)
            continue
        for d in declarations:
            function = {"name": d.get("name")}
            if d.get("description"):
                function["description"] = d["description"]
            schema = (
                d.get("parameters_json_schema")
                or d.get("parametersJsonSchema")
                or d.get("parameters")
            )
            if schema:
                function["parameters"] = schema
            out.append({"type": "function", "function": function})
    return out
