"""Anthropic-compatible sandbox route: ``POST /anthropic/v1/messages``, JSON or SSE."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from promptrun.server.sandbox._common import (
    Call,
    ProviderSpec,
    json_response,
    new_id,
    open_call,
    send_events,
    sse_event,
)
from promptrun.server.sandbox._reply import Reply, ToolSpec, plan_reply, split_pieces, word_count

__all__ = ["ANTHROPIC", "add_anthropic_routes", "answer", "error_body", "send_answer"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


ANTHROPIC = ProviderSpec("anthropic", error_body)


def _blocks_text(content: Any) -> tuple[str, bool]:
    """Text of a message's content, and whether it carries a tool result."""
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        return "", False
    texts: list[str] = []
    tool_result = False
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            tool_result = True
            inner, _ = _blocks_text(block.get("content"))
            texts.append(inner)
        elif isinstance(block.get("text"), str):
            texts.append(block["text"])
    return " ".join(texts), tool_result


def _first_tool(body: dict[str, Any]) -> ToolSpec | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    for tool in tools:
        # Server tools (web search and the like) have no input schema to call with.
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool:
            schema = tool["input_schema"]
            return ToolSpec(tool["name"], schema if isinstance(schema, dict) else {})
    return None


def _reply(body: dict[str, Any]) -> Reply:
    texts = [_blocks_text(body.get("system"))[0]]
    last_user = ""
    answering_tool = False
    messages = body["messages"]
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        text, tool_result = _blocks_text(message.get("content"))
        texts.append(text)
        if message.get("role") == "user":
            answering_tool = tool_result
            if not tool_result:
                last_user = text
        else:
            answering_tool = False
    return plan_reply(
        last_user, word_count(texts), _first_tool(body), answering_tool_result=answering_tool
    )


Event = tuple[str, dict[str, Any]]


def answer(
    body: dict[str, Any], model: str, chunks: int
) -> tuple[dict[str, Any], list[Event], list[Event], list[Event]]:
    """The Message for a Messages API body, and the same as stream events (head, content
    pieces, tail), each ``(event name, payload)``; framing is the route's business."""
    reply = _reply(body)
    message_id = new_id("msg_")
    if reply.tool_name is None:
        block: dict[str, Any] = {"type": "text", "text": reply.text, "citations": None}
        stop_reason = "end_turn"
    else:
        block = {
            "type": "tool_use",
            "id": new_id("toolu_"),
            "name": reply.tool_name,
            "input": reply.arguments,
        }
        stop_reason = "tool_use"
    usage = {
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    if reply.tool_name is None:
        opening = {**block, "text": ""}
        delta_kind, key, text = "text_delta", "text", reply.text
    else:
        opening = {**block, "input": {}}
        delta_kind, key, text = "input_json_delta", "partial_json", reply.arguments_json
    pieces: list[Event] = [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": delta_kind, key: p}},
        )
        for p in split_pieces(text, chunks)
    ]
    head: list[Event] = [
        ("message_start", {"type": "message_start", "message": started}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": opening},
        ),
        ("ping", {"type": "ping"}),
    ]
    tail: list[Event] = [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return message, head, pieces, tail


async def send_answer(call: Call, model: str) -> web.StreamResponse:
    """Answer an accepted Messages API call as JSON or as server-sent events."""
    message, head, pieces, tail = answer(call.body, model, call.chunks)
    if not call.stream:
        return json_response(message)
    return await send_events(
        call,
        [sse_event(*e) for e in head],
        [sse_event(*e) for e in pieces],
        [sse_event(*e) for e in tail],
    )


async def messages(request: web.Request) -> web.StreamResponse:
    """Answer a Messages API request the way Claude would, deterministically."""
    call = await open_call(request, ANTHROPIC, "messages", required=("model", "messages"))
    if not isinstance(call, Call):
        return call
    return await send_answer(call, str(call.body["model"]))


def add_anthropic_routes(app: web.Application) -> None:
    """Serve the Anthropic Messages API under ``/anthropic``."""
    app.router.add_post("/anthropic/v1/messages", messages)
