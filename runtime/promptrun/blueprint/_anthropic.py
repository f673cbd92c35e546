"""Anthropic Messages API: blueprint to kwargs, and responses or kwargs back to blueprint."""

from __future__ import annotations

import json
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

#: ``max_tokens`` is required by the Messages API; this is used when the template has none.
DEFAULT_MAX_TOKENS = 1024


# -- building -------------------------------------------------------------------------------


def _image(part: Json) -> Json:
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [text_part(content)] if content else []
    out: list[Json] = []
    for part in content or ():
        if isinstance(part, str):
            part = text_part(part)
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):  # the API rejects empty text blocks
                out.append(text_part(part["text"]))
        elif kind == "image_url":
            out.append(_image(part))
        elif kind == "thinking":
            block: Json = {"type": "thinking", "thinking": part.get("thinking") or ""}
            if part.get("signature"):
                block["signature"] = part["signature"]
            out.append(block)
        else:
            out.append(dict(part))
    return out


def _tool(tool: Json) -> Json:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        return tool  # already Anthropic-shaped, or a server tool
    out: Json = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> Any:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return {"type": "tool", "name": name}
    return choice


def build(prompt_template: Json, model: Json) -> Json:
    """The kwargs of ``messages.create``: system text apart, consecutive same roles merged."""
    params = {k: v for k, v in (model.get("parameters") or {}).items() if v is not None}
    out: Json = {
        "model": model.get("name"),
        "max_tokens": params.pop("max_tokens", DEFAULT_MAX_TOKENS),
    }
    system: list[str] = []
    messages: list[Json] = []
    if prompt_template.get("type") == "completion":
        messages.append({"role": "user", "content": _blocks(prompt_template.get("content"))})
    for msg in prompt_template.get("messages") or ():
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = parts_text(content)
            if text:
                system.append(text)
            continue
        if role == "tool":
            result: Json = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id")}
            blocks = _blocks(content)
            if blocks:
                result["content"] = blocks
            role, blocks = "user", [result]
        elif role == "assistant":
            blocks = _blocks(content)
            for tc in msg.get("tool_calls") or ():
                function = tc.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tc.get("id"),
                        "name": function.get("name"),
                        "input": load_arguments(function.get("arguments"), repr(tc.get("id"))),
                    }
                )
        else:
            role, blocks = "user", _blocks(content)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    tools = prompt_template.get("tools")
    if tools:
        out["tools"] = [_tool(t) for t in tools]
        choice = _tool_choice(prompt_template.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
    for key, value in params.items():
        out.setdefault(key, value)
    return out


# -- responses back to blueprint --------------------------------------------------------------


def block_part(block: Any) -> Json | None:
    """A blueprint content part for a non-tool content block of a Message."""
    kind = _get(block, "type")
    if kind == "text":
        return text_part(_get(block, "text") or "")
    if kind == "thinking":
        return {
            "type": "thinking",
            "thinking": _get(block, "thinking") or "",
            "signature": _get(block, "signature"),
        }
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": _get(block, "data")}
    return None


def response_message(response: Any) -> Json:
    """The assistant message of an Anthropic Message (or legacy Completion), object or dict."""
    completion = _get(response, "completion")
    if isinstance(completion, str):
        return message("assistant", [text_part(completion)] if completion else [])
    content: list[Json] = []
    calls: list[Json] = []
    for block in _get(response, "content") or ():
        if _get(block, "type") == "tool_use":
            calls.append(
                tool_call(
                    _get(block, "id") or "",
                    _get(block, "name") or "",
                    dump_arguments(_get(block, "input")),
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
        (_get(used, "input_tokens") or 0)
        + (_get(used, "cache_creation_input_tokens") or 0)
        + (_get(used, "cache_read_input_tokens") or 0)
    )
    return total_in, _get(used, "output_tokens") or 0


# -- kwargs back to blueprint ----------------------------------------------------------------


def _part(block: Any) -> Json:
    if isinstance(block, str):
        return text_part(block)
    kind = block.get("type")
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        else:
            url = source.get("url", "")
        return {"type": "image_url", "image_url": {"url": url}}
    part = block_part(block)
    return dict(block) if part is None else part


def _result_text(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [text_part(content)]
    return [_part(b) for b in content or ()]


def kwargs_messages(llm_kwargs: Json) -> list[Json]:
    """The input messages of an Anthropic call, as blueprint messages.

    A user turn holding ``tool_result`` blocks becomes one ``tool`` message per result,
    followed by a user message with the turn's other blocks, if any.
    """
    out: list[Json] = []
    system = llm_kwargs.get("system")
    if system:
        out.append(message("system", _result_text(system)))
    for msg in llm_kwargs.get("messages") or ():
        role = msg.get("role", "user")
        content = msg.get("content")
        if isinstance(content, str):
            out.append(message(role, [text_part(content)]))
            continue
        parts: list[Json] = []
        calls: list[Json] = []
        for block in content or ():
            kind = block.get("type") if isinstance(block, dict) else "text"
            if kind == "tool_result":
                out.append(
                    message(
                        "tool",
                        _result_text(block.get("content")),
                        tool_call_id=block.get("tool_use_id"),
                    )
                )
            elif kind == "tool_use":
                calls.append(
                    tool_call(
                        block.get("id", ""),
                        block.get("name", ""),
                        dump_arguments(block.get("input")),
                    )
                )
            else:
                parts.append(_part(block))
        if parts or calls or not content:
            out.append(message(role, parts, **({"tool_calls": calls} if calls else {})))
    prompt = llm_kwargs.get("prompt")
    if isinstance(prompt, str):
        out.append(message("user", [text_part(prompt)]))
    return out


def kwargs_tools(llm_kwargs: Json) -> list[Json]:
    """The tools of an Anthropic call, in blueprint (function) form."""
    out: list[Json] = []
    for tool in llm_kwargs.get("tools") or ():
        if "input_schema" in tool:
            function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
            if tool.get("description"):
                function["description"] = tool["description"]
            out.append({"type": "function", "function": function})
        else:
            out.append(tool)
    return out


def loads_input(arguments: str) -> Any:
    """A streamed tool_use input: the joined JSON fragments, ``{}`` when empty or cut short."""
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return {}
