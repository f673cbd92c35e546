"""Amazon Bedrock Converse API: blueprint to kwargs, and responses or kwargs back to blueprint.

The kwargs are those of boto3's ``bedrock-runtime`` ``converse`` (and ``converse_stream``)::

    {"modelId", "messages": [{"role": "user" | "assistant", "content": [block, ...]}],
     "system": [{"text"}], "inferenceConfig": {"maxTokens", "temperature", "topP",
     "stopSequences"}, "toolConfig": {"tools": [{"toolSpec": ...}], "toolChoice": ...},
     "additionalModelRequestFields": {...}}

A block is ``{"text"}``, ``{"image": {"format", "source": {"bytes"}}}``, ``{"toolUse":
{"toolUseId", "name", "input"}}``, ``{"toolResult": {"toolUseId", "content": [...]}}`` or
``{"reasoningContent": {"reasoningText": {"text", "signature"}}}``. Image bytes are base64 text
in kwargs (they travel as JSON); the provider adapter decodes them before calling boto3.
"""

from __future__ import annotations

import base64
from typing import Any

from promptrun.blueprint._util import (
    Json,
    _get,
    dump_arguments,
    load_arguments,
    message,
    parts_text,
    text_part,
    tool_call,
)

#: Blueprint or OpenAI-style parameter names and their ``inferenceConfig`` names. Anything
#: else is a model-specific field and goes to ``additionalModelRequestFields``.
INFERENCE_NAMES = {
    "maxTokens": "maxTokens",
    "max_tokens": "maxTokens",
    "max_completion_tokens": "maxTokens",
    "temperature": "temperature",
    "topP": "topP",
    "top_p": "topP",
    "stopSequences": "stopSequences",
    "stop_sequences": "stopSequences",
    "stop": "stopSequences",
}
_PLAIN_KEYS = frozenset(
    {"modelId", "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
     "additionalModelRequestFields", "additionalModelResponseFieldPaths", "promptVariables",
     "requestMetadata", "performanceConfig"}
)  # fmt: skip


#: Client settings the PromptLayer SDK reads from Bedrock kwargs: top-level, never model fields.
CLIENT_KEYS = frozenset({"aws_access_key", "aws_secret_key", "aws_session_token", "aws_region"})


def split_parameters(params: Json) -> tuple[Json, Json]:
    """``(inferenceConfig, additionalModelRequestFields)`` of blueprint parameters."""
    inference: Json = {}
    extra: Json = {}
    for key, value in params.items():
        if value is None or key in CLIENT_KEYS:
            continue
        name = INFERENCE_NAMES.get(key)
        if name is None:
            extra[key] = value
        elif name == "stopSequences" and isinstance(value, str):
            inference[name] = [value]
        else:
            inference[name] = value
    return inference, extra


def apply_overrides(llm_kwargs: Json, overrides: Json) -> Json:
    """A copy of Converse kwargs with ``model_parameter_overrides`` applied where they belong."""
    top = {k: v for k, v in overrides.items() if k in _PLAIN_KEYS or k in CLIENT_KEYS}
    inference, extra = split_parameters({k: v for k, v in overrides.items() if k not in top})
    out = {**llm_kwargs, **top}
    if inference:
        out["inferenceConfig"] = {**(llm_kwargs.get("inferenceConfig") or {}), **inference}
    if extra:
        fields = llm_kwargs.get("additionalModelRequestFields") or {}
        out["additionalModelRequestFields"] = {**fields, **extra}
    return out


# -- building -------------------------------------------------------------------------------


def _image(part: Json) -> Json:
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        kind = media_type.rpartition("/")[2] or "png"
        return {"image": {"format": "jpeg" if kind == "jpg" else kind, "source": {"bytes": data}}}
    return {"image": {"format": "png", "source": {"s3Location": {"uri": url}}}}


def _blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[Json] = []
    for part in content or ():
        if isinstance(part, str):
            part = text_part(part)
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):  # Converse rejects empty text blocks
                out.append({"text": part["text"]})
        elif kind == "image_url":
            out.append(_image(part))
        elif kind == "thinking":
            reasoning: Json = {"text": part.get("thinking") or ""}
            if part.get("signature"):
                reasoning["signature"] = part["signature"]
            out.append({"reasoningContent": {"reasoningText": reasoning}})
        else:
            out.append({k: v for k, v in part.items() if k != "type"})
    return out


def _tool_spec(tool: Json) -> Json:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        return tool  # already Converse-shaped
    spec: Json = {"name": function.get("name")}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["inputSchema"] = {"json": function.get("parameters") or {"type": "object"}}
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> Json | None:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return {"tool": {"name": name}}
    return None  # "none" has no Converse spelling: the tools stay, unforced


def build(prompt_template: Json, model: Json) -> Json:
    """The kwargs of ``converse``: system text apart, consecutive same roles merged."""
    params = model.get("parameters") or {}
    inference, extra = split_parameters(params)
    out: Json = {"modelId": model.get("name")}
    out.update({k: v for k, v in params.items() if k in CLIENT_KEYS and v is not None})
    system: list[Json] = []
    messages: list[Json] = []
    if prompt_template.get("type") == "completion":
        messages.append({"role": "user", "content": _blocks(prompt_template.get("content"))})
    for msg in prompt_template.get("messages") or ():
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = parts_text(content)
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            result: Json = {
                "toolUseId": msg.get("tool_call_id"),
                "content": [{"text": parts_text(content)}],
            }
            role, blocks = "user", [{"toolResult": result}]
        elif role == "assistant":
            blocks = _blocks(content)
            for tc in msg.get("tool_calls") or ():
                function = tc.get("function") or {}
                arguments = load_arguments(function.get("arguments"), repr(tc.get("id")))
                use = {"toolUseId": tc.get("id"), "name": function.get("name"), "input": arguments}
                blocks.append({"toolUse": use})
        else:
            role, blocks = "user", _blocks(content)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    out["messages"] = messages
    if system:
        out["system"] = system
    if inference:
        out["inferenceConfig"] = inference
    tools = prompt_template.get("tools")
    if tools:
        config: Json = {"tools": [_tool_spec(t) for t in tools]}
        choice = _tool_choice(prompt_template.get("tool_choice"))
        if choice is not None:
            config["toolChoice"] = choice
        out["toolConfig"] = config
    if extra:
        out["additionalModelRequestFields"] = extra
    return out


# -- responses back to blueprint --------------------------------------------------------------


def block_part(block: Any) -> Json | None:
    """A blueprint content part for a text or reasoning block; None for anything else."""
    text = _get(block, "text")
    if isinstance(text, str):
        return text_part(text)
    reasoning = _get(block, "reasoningContent")
    if reasoning is not None:
        inner = _get(reasoning, "reasoningText") or {}
        return {
            "type": "thinking",
            "thinking": _get(inner, "text") or "",
            "signature": _get(inner, "signature"),
        }
    return None


def response_message(response: Any) -> Json:
    """The assistant message of a ``converse`` response (a dict, as boto3 returns it)."""
    content: list[Json] = []
    calls: list[Json] = []
    out_message = _get(_get(response, "output"), "message")
    for block in _get(out_message, "content") or ():
        use = _get(block, "toolUse")
        if use is not None:
            calls.append(
                tool_call(
                    _get(use, "toolUseId") or "",
                    _get(use, "name") or "",
                    dump_arguments(_get(use, "input")),
                )
            )
            continue
        part = block_part(block)
        if part is not None:
            content.append(part)
    return message("assistant", content, **({"tool_calls": calls} if calls else {}))


def usage(response: Any) -> tuple[int, int]:
    """(input, output) tokens; input counts cache reads and writes, as OpenAI's does."""
    used = _get(response, "usage")
    if used is None:
        return 0, 0
    total_in = (
        (_get(used, "inputTokens") or 0)
        + (_get(used, "cacheReadInputTokens") or 0)
        + (_get(used, "cacheWriteInputTokens") or 0)
    )
    return total_in, _get(used, "outputTokens") or 0


# -- kwargs back to blueprint ----------------------------------------------------------------


def _image_part(image: Json) -> Json:
    source = image.get("source") or {}
    data = source.get("bytes")
    if data is not None:
        if isinstance(data, bytes | bytearray):
            data = base64.b64encode(data).decode("ascii")
        fmt = image.get("format") or "png"
        return {"type": "image_url", "image_url": {"url": f"data:image/{fmt};base64,{data}"}}
    location = source.get("s3Location") or {}
    return {"type": "image_url", "image_url": {"url": location.get("uri", "")}}


def _part(block: Any) -> Json:
    if isinstance(block, str):
        return text_part(block)
    image = block.get("image")
    if isinstance(image, dict):
        return _image_part(image)
    part = block_part(block)
    return dict(block) if part is None else part


def _result_part(block: Any) -> Json:
    if isinstance(block, dict) and "json" in block:
        return text_part(dump_arguments(block["json"]))
    return _part(block)


def kwargs_messages(llm_kwargs: Json) -> list[Json]:
    """The input messages of a Converse call, as blueprint messages.

    A user turn holding ``toolResult`` blocks becomes one ``tool`` message per result,
    followed by a user message with the turn's other blocks, if any.
    """
    out: list[Json] = []
    system = llm_kwargs.get("system")
    if system:
        blocks = system if isinstance(system, list) else [system]
        out.append(message("system", [_part(b) for b in blocks if _get(b, "text") is not None]))
    for msg in llm_kwargs.get("messages") or ():
        role = msg.get("role", "user")
        content = msg.get("content")
        if isinstance(content, str):
            out.append(message(role, [text_part(content)]))
            continue
        parts: list[Json] = []
        calls: list[Json] = []
        for block in content or ():
            result = block.get("toolResult") if isinstance(block, dict) else None
            use = block.get("toolUse") if isinstance(block, dict) else None
            if isinstance(result, dict):
                inner = [_result_part(b) for b in result.get("content") or ()]
                out.append(message("tool", inner, tool_call_id=result.get("toolUseId")))
            elif isinstance(use, dict):
                calls.append(
                    tool_call(
                        use.get("toolUseId", ""),
                        use.get("name", ""),
                        dump_arguments(use.get("input")),
                    )
                )
            else:
                parts.append(_part(block))
        if parts or calls or not content:
            out.append(message(role, parts, **({"tool_calls": calls} if calls else {})))
    return out


def kwargs_tools(llm_kwargs: Json) -> list[Json]:
    """The tools of a Converse call, in blueprint (function) form."""
    out: list[Json] = []
    config = llm_kwargs.get("toolConfig") or {}
    for tool in config.get("tools") or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict):
            out.append(tool)
            continue
        function: Json = {"name": spec.get("name")}
        if spec.get("description"):
            function["description"] = spec["description"]
        schema = (spec.get("inputSchema") or {}).get("json")
        if schema:
            function["parameters"] = schema
        out.append({"type": "function", "function": function})
    return out
