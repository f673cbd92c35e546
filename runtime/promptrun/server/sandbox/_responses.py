"""OpenAI-compatible Responses API: ``POST /responses``, JSON or the typed SSE event stream."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from promptrun.server.sandbox._common import (
    Call,
    ProviderSpec,
    json_response,
    new_id,
    open_call,
    send_events,
    sse_data,
)
from promptrun.server.sandbox._openai import OPENAI, first_tool, model_name, text_of
from promptrun.server.sandbox._reply import Reply, plan_reply, split_pieces, word_count

__all__ = ["responses"]


def _responses_reply(body: dict[str, Any]) -> Reply:
    items = body["input"]
    texts: list[str] = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    last_user = ""
    answering_tool = False
    if isinstance(items, str):
        texts.append(items)
        last_user = items
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("output"), str):
                texts.append(item["output"])
            text = text_of(item.get("content"))
            texts.append(text)
            if item.get("role") == "user":
                last_user = text
        answering_tool = (
            bool(items)
            and isinstance(items[-1], dict)
            and items[-1].get("type") == "function_call_output"
        )
    return plan_reply(
        last_user,
        word_count(texts),
        first_tool(body, nested=False),
        answering_tool_result=answering_tool,
    )


def _response_object(
    call: Call, response_id: str, created: int, status: str, output: list[Any], usage: Any
) -> dict[str, Any]:
    body = call.body
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model_name(call),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "metadata": body.get("metadata") or {},
    }


async def responses(request: web.Request, spec: ProviderSpec = OPENAI) -> web.StreamResponse:
    call = await open_call(request, spec, "responses", required=("model", "input"))
    if not isinstance(call, Call):
        return call
    reply = _responses_reply(call.body)
    response_id, created = new_id("resp_"), int(time.time())
    usage = {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.total_tokens,
    }
    if reply.tool_name is None:
        item_id = new_id("msg_")
        part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
    else:
        item_id = new_id("fc_")
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "call_id": new_id("call_"),
            "name": reply.tool_name,
            "arguments": reply.arguments_json,
        }
    if not call.stream:
        return json_response(
            _response_object(call, response_id, created, "completed", [item], usage)
        )

    sequence = iter(range(1 << 30))

    def event(kind: str, **fields: Any) -> bytes:
        # The SDK reads the type from the data; the event line mirrors the real API.
        payload = {"type": kind, "sequence_number": next(sequence), **fields}
        return b"event: " + kind.encode() + b"\n" + sse_data(payload)

    pending = _response_object(call, response_id, created, "in_progress", [], None)
    head = [
        event("response.created", response=pending),
        event("response.in_progress", response=pending),
    ]
    at = {"item_id": item_id, "output_index": 0}
    if reply.tool_name is None:
        head.append(
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "status": "in_progress", "content": []},
            )
        )
        head.append(
            event("response.content_part.added", **at, content_index=0, part={**part, "text": ""})
        )
        pieces = [
            event("response.output_text.delta", **at, content_index=0, delta=p, logprobs=[])
            for p in split_pieces(reply.text, call.chunks)
        ]
        tail = [
            event("response.output_text.done", **at, content_index=0, text=reply.text, logprobs=[]),
            event("response.content_part.done", **at, content_index=0, part=part),
        ]
    else:
        head.append(
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "status": "in_progress", "arguments": ""},
            )
        )
        pieces = [
            event("response.function_call_arguments.delta", **at, delta=p)
            for p in split_pieces(reply.arguments_json, call.chunks)
        ]
        tail = [
            event(
                "response.function_call_arguments.done",
                **at,
                name=reply.tool_name,
                arguments=reply.arguments_json,
            )
        ]
    tail.append(event("response.output_item.done", output_index=0, item=item))
    done = _response_object(call, response_id, created, "completed", [item], usage)
    tail.append(event("response.completed", response=done))
    return await send_events(call, head, pieces, tail)
