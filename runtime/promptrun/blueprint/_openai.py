"""OpenAI (and Azure OpenAI): blueprint to kwargs, and responses or kwargs back to blueprint.

Three call shapes: Chat Completions (``messages``), legacy Completions (``prompt``) and the
Responses API (``input`` plus ``instructions``).
"""

from __future__ import annotations

from typing import Any

from promptrun.blueprint._util import (
    Json,
    _get,
    dump_arguments,
    message,
    parts_text,
    text_part,
    tool_call,
)


def _params(model: Json) -> Json:
    return {k: v for k, v in (model.get("parameters") or {}).items() if v is not None}


def _finish(out: Json, params: Json) -> Json:
    for key, value in params.items():
        out.setdefault(key, value)
    return out


# -- building -------------------------------------------------------------------------------


def build(prompt_template: Json, model: Json) -> Json:
    """The kwargs of ``chat.completions.create``, ``completions.create`` or ``responses.create``."""
    params = _params(model)
    name = model.get("name")
    if model.get("api_type") == "responses":
        return _build_responses(prompt_template, name, params)
    if prompt_template.get("type") == "completion":
        return _finish(
            {"model": name, "prompt": parts_text(prompt_template.get("content"))}, params
        )
    out: Json = {"model": name, "messages": [_chat_message(m) for m in _messages(prompt_template)]}
    tools = prompt_template.get("tools")
    if tools:
        out["tools"] = tools
        if prompt_template.get("tool_choice") is not None:
            out["tool_choice"] = prompt_template["tool_choice"]
    if prompt_template.get("functions"):
        out["functions"] = prompt_template["functions"]
        if prompt_template.get("function_call") is not None:
            out["function_call"] = prompt_template["function_call"]
    return _finish(out, params)


def _messages(prompt_template: Json) -> list[Json]:
    return [m for m in prompt_template.get("messages") or () if isinstance(m, dict)]


def _chat_part(part: Any) -> Json | None:
    if isinstance(part, str):
        return text_part(part)
    kind = part.get("type")
    if kind == "text":
        return text_part(part.get("text") or "")
    if kind == "thinking":
        return None  # Chat Completions has no way to send reasoning back
    return dict(part)


def _chat_message(msg: Json) -> Json:
    role = msg.get("role")
    content = msg.get("content")
    parts = (
        [text_part(content)]
        if isinstance(content, str)
        else [p for p in map(_chat_part, content or ()) if p is not None]
    )
    out: Json = {"role": role}
    if len(parts) == 1 and parts[0]["type"] == "text":
        out["content"] = parts[0]["text"]
    elif parts:
        out["content"] = parts
    else:
        out["content"] = None if role == "assistant" and msg.get("tool_calls") else ""
    if role == "assistant" and msg.get("tool_calls"):
        out["tool_calls"] = [
            tool_call(
                tc.get("id", ""),
                (tc.get("function") or {}).get("name", ""),
                dump_arguments((tc.get("function") or {}).get("arguments")),
            )
            for tc in msg["tool_calls"]
        ]
    if role == "tool":
        out["tool_call_id"] = msg.get("tool_call_id")
    if msg.get("name") is not None:
        out["name"] = msg["name"]
    return out


def _image_url(part: Json) -> tuple[str, Any]:
    image = part.get("image_url")
    if isinstance(image, dict):
        return image.get("url", ""), image.get("detail")
    return str(image or ""), None


def _responses_part(part: Any, role: str) -> Json | None:
    if isinstance(part, str):
        part = text_part(part)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text") or ""
        return {"type": "output_text" if role == "assistant" else "input_text", "text": text}
    if kind == "image_url":
        url, detail = _image_url(part)
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind == "thinking":
        return None
    return dict(part)


def _build_responses(prompt_template: Json, name: Any, params: Json) -> Json:
    items: list[Json] = []
    instructions: list[str] = []
    if prompt_template.get("type") == "completion":
        text = parts_text(prompt_template.get("content"))
        items.append({"role": "user", "content": [{"type": "input_text", "text": text}]})
    for msg in _messages(prompt_template):
        role = msg.get("role") or "user"
        content = msg.get("content")
        if role == "system":
            instructions.append(parts_text(content))
            continue
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": msg.get("tool_call_id"),
                    "output": parts_text(content),
                }
            )
            continue
        parts = [
            p
            for p in (
                _responses_part(x, role)
                for x in ([content] if isinstance(content, str) else content or ())
            )
            if p is not None
        ]
        if parts or not msg.get("tool_calls"):
            items.append({"role": role, "content": parts})
        for tc in msg.get("tool_calls") or ():
            function = tc.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": tc.get("id"),
                    "name": function.get("name"),
                    "arguments": dump_arguments(function.get("arguments")),
                }
            )
    out: Json = {"model": name, "input": items}
    if instructions:
        out["instructions"] = "\n\n".join(instructions)
    tools = prompt_template.get("tools")
    if tools:
        out["tools"] = [_responses_tool(t) for t in tools]
        choice = prompt_template.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function" and "function" in choice:
            choice = {"type": "function", "name": choice["function"].get("name")}
        if choice is not None:
            out["tool_choice"] = choice
    if "max_tokens" in params:
        params = dict(params)
        params.setdefault("max_output_tokens", params.pop("max_tokens"))
    return _finish(out, params)


def _responses_tool(tool: Json) -> Json:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        return tool
    out: Json = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if function.get(key) is not None:
            out[key] = function[key]
    return out


# -- responses back to blueprint --------------------------------------------------------------


def is_responses(response: Any) -> bool:
    kind = _get(response, "object")
    if kind is not None:
        return bool(kind == "response")
    return _get(response, "output") is not None and _get(response, "choices") is None


def response_message(response: Any) -> Json:
    """The assistant message of a ChatCompletion, Completion or Responses object (or dict)."""
    if is_responses(response):
        return _responses_message(response)
    content: list[Json] = []
    extra: Json = {}
    for choice in _get(response, "choices") or ():
        if (_get(choice, "index", 0) or 0) != 0:
            continue
        msg = _get(choice, "message")
        if msg is None:
            text = _get(choice, "text")
            if text:
                content.append(text_part(text))
            break
        text = _get(msg, "content")
        if not text:
            text = _get(msg, "refusal")
        if isinstance(text, str) and text:
            content.append(text_part(text))
        elif isinstance(text, list):  # some compatible servers send parts
            joined = parts_text(text)
            if joined:
                content.append(text_part(joined))
        calls = _get(msg, "tool_calls")
        if calls:
            extra["tool_calls"] = [
                tool_call(
                    _get(tc, "id") or "",
                    _get(_get(tc, "function"), "name") or "",
                    dump_arguments(_get(_get(tc, "function"), "arguments") or ""),
                )
                for tc in calls
            ]
        break
    return message("assistant", content, **extra)


def _responses_message(response: Any) -> Json:
    content: list[Json] = []
    calls: list[Json] = []
    for item in _get(response, "output") or ():
        kind = _get(item, "type")
        if kind == "message":
            for part in _get(item, "content") or ():
                text = _get(part, "text")
                if text is None:
                    text = _get(part, "refusal")
                if text:
                    content.append(text_part(text))
        elif kind == "function_call":
            calls.append(
                tool_call(
                    _get(item, "call_id") or _get(item, "id") or "",
                    _get(item, "name") or "",
                    _get(item, "arguments") or "",
                )
            )
        elif kind == "reasoning":
            summary = "\n\n".join(_get(s, "text") or "" for s in _get(item, "summary") or ())
            if summary:
                content.append({"type": "thinking", "thinking": summary, "signature": None})
    return message("assistant", content, **({"tool_calls": calls} if calls else {}))


def usage(response: Any) -> tuple[int, int]:
    """(input, output) tokens of a Chat Completions, Completions or Responses result."""
    used = _get(response, "usage")
    if used is None:
        return 0, 0
    if is_responses(response):
        return _get(used, "input_tokens") or 0, _get(used, "output_tokens") or 0
    return _get(used, "prompt_tokens") or 0, _get(used, "completion_tokens") or 0


# -- kwargs back to blueprint ----------------------------------------------------------------


def _blueprint_part(part: Any) -> Json:
    if isinstance(part, str):
        return text_part(part)
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        return text_part(part.get("text") or "")
    if kind == "refusal":
        return text_part(part.get("refusal") or "")
    if kind == "input_image" and part.get("image_url"):
        image: Json = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    return dict(part)


def _content(content: Any) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)] if content else []
    return [_blueprint_part(p) for p in content]


def kwargs_messages(llm_kwargs: Json) -> list[Json]:
    """The input messages of an OpenAI call, as blueprint messages."""
    out: list[Json] = []
    if llm_kwargs.get("instructions"):
        out.append(message("system", [text_part(str(llm_kwargs["instructions"]))]))
    for msg in llm_kwargs.get("messages") or ():
        extra: Json = {}
        if msg.get("tool_calls"):
            extra["tool_calls"] = [
                tool_call(
                    tc.get("id", ""),
                    (tc.get("function") or {}).get("name", ""),
                    dump_arguments((tc.get("function") or {}).get("arguments")),
                )
                for tc in msg["tool_calls"]
            ]
        for key in ("tool_call_id", "name"):
            if msg.get(key) is not None:
                extra[key] = msg[key]
        out.append(message(msg.get("role", "user"), _content(msg.get("content")), **extra))
    items = llm_kwargs.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or ():
        kind = item.get("type")
        if kind == "function_call":
            call = tool_call(
                item.get("call_id") or item.get("id") or "",
                item.get("name") or "",
                dump_arguments(item.get("arguments")),
            )
            if not out or out[-1]["role"] != "assistant":
                out.append(message("assistant", []))
            out[-1].setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            output = item.get("output")
            out.append(message("tool", _content(output), tool_call_id=item.get("call_id")))
        elif "role" in item:
            out.append(message(item["role"], _content(item.get("content"))))
    prompt = llm_kwargs.get("prompt")
    if prompt is not None:
        text = "\n".join(prompt) if isinstance(prompt, list) else str(prompt)
        out.append(message("user", [text_part(text)]))
    return out


def kwargs_tools(llm_kwargs: Json) -> list[Json]:
    """The tools of an OpenAI call, in blueprint (Chat Completions) form."""
    out: list[Json] = []
    for tool in llm_kwargs.get("tools") or ():
        if tool.get("type") == "function" and "function" not in tool and "name" in tool:
            function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
            out.append({"type": "function", "function": function})
        else:
            out.append(tool)
    return out
