"""A logged request's conversation, split into what was sent and what came back, for display.

Works on the stored blueprint (and a ``log-request`` body's own input and output), whichever
provider produced it; anything it does not recognise is shown as JSON rather than dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Conversation", "Message", "Part", "ToolCall", "conversation_of"]


@dataclass(frozen=True, slots=True)
class Part:
    """One content part: ``kind`` is text, thinking, image or other (shown as JSON)."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    parts: list[Part]
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    sent: list[Message]
    received: list[Message]
    tools: list[str]


def _pretty(value: Any) -> str:
    """JSON, indented; a string that holds JSON (tool arguments) is indented too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _part(part: Any) -> Part:
    if isinstance(part, str):
        return Part("text", part)
    if not isinstance(part, dict):
        return Part("other", _pretty(part))
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return Part("text", part["text"])
    if kind == "thinking":
        return Part("thinking", str(part.get("thinking") or ""))
    if kind in ("image_url", "media"):
        image = part.get("image_url") or part.get("media") or {}
        url = image.get("url") if isinstance(image, dict) else image
        text = str(url or "")
        if text.startswith("data:"):
            text = text.split(",", 1)[0] + ",…"  # a data URL can be megabytes; name it only
        return Part("image", text)
    return Part("other", _pretty(part))


def _tool_call(call: Any) -> ToolCall:
    if not isinstance(call, dict):
        return ToolCall("", "?", _pretty(call))
    function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
    return ToolCall(
        id=str(call.get("id") or ""),
        name=str(function.get("name") or call.get("name") or "?"),
        arguments=_pretty(function.get("arguments", call.get("arguments", ""))),
    )


def _message(raw: Any) -> Message:
    if not isinstance(raw, dict):
        return Message("?", [Part("other", _pretty(raw))])
    content = raw.get("content")
    if content is None:
        parts: list[Part] = []
    elif isinstance(content, list):
        parts = [_part(p) for p in content]
    else:
        parts = [_part(content)]
    calls = raw.get("tool_calls")
    return Message(
        role=str(raw.get("role") or "?"),
        parts=parts,
        tool_calls=[_tool_call(c) for c in calls] if isinstance(calls, list) else [],
        tool_call_id=raw.get("tool_call_id"),
        name=raw.get("name") if isinstance(raw.get("name"), str) else None,
    )


def _messages(template: Any) -> list[Message]:
    """A prompt template (chat or completion) as messages."""
    if not isinstance(template, dict):
        return []
    if template.get("type") == "completion" or (
        "content" in template and "messages" not in template
    ):
        content = template.get("content")
        parts = [_part(p) for p in content] if isinstance(content, list) else []
        return [Message("prompt", parts)] if parts else []
    messages = template.get("messages")
    return [_message(m) for m in messages] if isinstance(messages, list) else []


def _tool_names(blueprint: dict[str, Any]) -> list[str]:
    template = blueprint.get("prompt_template")
    tools = template.get("tools") if isinstance(template, dict) else None
    names = []
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        name = (function or {}).get("name") if isinstance(function, dict) else None
        names.append(str(name or (tool.get("name") if isinstance(tool, dict) else "?")))
    return names


def conversation_of(item: dict[str, Any]) -> Conversation:
    """What was sent and received in a stored request (``GET /promptrun/v1/requests/{id}``)."""
    blueprint = item.get("prompt_blueprint") or {}
    body = item.get("body") or {}
    tools = _tool_names(blueprint) if isinstance(blueprint, dict) else []
    if item.get("kind") == "log" and isinstance(body, dict) and "output" in body:
        return Conversation(_messages(body.get("input")), _messages(body.get("output")), tools)
    messages = _messages(blueprint.get("prompt_template") if isinstance(blueprint, dict) else None)
    answered = isinstance(body, dict) and bool(body.get("request_response"))
    if answered and messages and messages[-1].role == "assistant":
        return Conversation(messages[:-1], messages[-1:], tools)
    return Conversation(messages, [], tools)
