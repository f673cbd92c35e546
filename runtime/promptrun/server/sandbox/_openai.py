"""OpenAI- and Azure-OpenAI-compatible sandbox routes, and what they share with Responses.

Chat Completions and legacy Completions, as JSON or as the SSE streams the official
`openai` SDK reads, plus the model list. The Responses API is in `_responses`.
"""

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
from promptrun.server.sandbox._reply import Reply, ToolSpec, plan_reply, split_pieces, word_count

__all__ = [
    "AZURE",
    "OPENAI",
    "chat_completions",
    "completions",
    "first_tool",
    "get_model",
    "list_models",
    "model_name",
    "text_of",
]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_DONE = b"data: [DONE]\n\n"
_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "gpt-3.5-turbo-instruct")
_FINGERPRINT = "fp_sandbox"


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


OPENAI = ProviderSpec("openai", _error_body, retry_after_ms=True)
AZURE = ProviderSpec("azure", _error_body, retry_after_ms=True)


def text_of(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def first_tool(body: dict[str, Any], nested: bool) -> ToolSpec | None:
    """The first function tool offered; chat nests it under "function", Responses does not."""
    tools = body.get("tools")
    if not isinstance(tools, list) or body.get("tool_choice") == "none":
        return None
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        spec = tool.get("function") if nested else tool
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            params = spec.get("parameters")
            return ToolSpec(spec["name"], params if isinstance(params, dict) else {})
    return None


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def model_name(call: Call) -> str:
    """The model to report: the body's, else the Azure deployment's name."""
    model = call.body.get("model") or call.request.match_info.get("deployment", "")
    return str(model)


# --- Chat Completions -------------------------------------------------------------------------


def _chat_reply(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    texts: list[str] = []
    last_user = ""
    answering_tool = False
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            text = text_of(message.get("content"))
            texts.append(text)
            if message.get("role") == "user":
                last_user = text
        answering_tool = (
            bool(messages)
            and isinstance(messages[-1], dict)
            and messages[-1].get("role") in ("tool", "function")
        )
    return plan_reply(
        last_user,
        word_count(texts),
        first_tool(body, nested=True),
        answering_tool_result=answering_tool,
    )


def _tool_call(
    reply: Reply, call_id: str, arguments: str, index: int | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": arguments},
    }
    if index is not None:
        entry["index"] = index
    return entry


async def chat_completions(request: web.Request, spec: ProviderSpec = OPENAI) -> web.StreamResponse:
    required = ("messages",) if spec is AZURE else ("model", "messages")
    call = await open_call(request, spec, "chat/completions", required=required)
    if not isinstance(call, Call):
        return call
    reply = _chat_reply(call.body)
    completion_id, created, model = new_id("chatcmpl-"), int(time.time()), model_name(call)
    if not call.stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        finish = "stop"
        if reply.tool_name is not None:
            message["content"] = None
            message["tool_calls"] = [_tool_call(reply, new_id("call_"), reply.arguments_json)]
            finish = "tool_calls"
        return json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": _usage(reply),
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
            }
        )

    options = call.body.get("stream_options")
    include_usage = spec.stream_usage or (
        isinstance(options, dict) and options.get("include_usage") is True
    )
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_data(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    if reply.tool_name is None:
        head = [chunk({"role": "assistant", "content": "", "refusal": None})]
        pieces = [chunk({"content": piece}) for piece in split_pieces(reply.text, call.chunks)]
        finish = "stop"
    else:
        head = [
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [_tool_call(reply, new_id("call_"), "", 0)],
                }
            )
        ]
        pieces = [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in split_pieces(reply.arguments_json, call.chunks)
        ]
        finish = "tool_calls"
    tail = [chunk({}, finish)]
    if include_usage:
        tail.append(sse_data({**base, "choices": [], "usage": _usage(reply)}))
    tail.append(_DONE)
    return await send_events(call, head, pieces, tail)


# --- legacy Completions -----------------------------------------------------------------------


async def completions(request: web.Request, spec: ProviderSpec = OPENAI) -> web.StreamResponse:
    required = ("prompt",) if spec is AZURE else ("model", "prompt")
    call = await open_call(request, spec, "completions", required=required)
    if not isinstance(call, Call):
        return call
    prompt = call.body["prompt"]
    prompts = (
        [prompt]
        if isinstance(prompt, str)
        else [p for p in prompt if isinstance(p, str)]
        if isinstance(prompt, list)
        else []
    )
    words = word_count(prompts) or (len(prompt) if isinstance(prompt, list) else 0)
    reply = plan_reply(prompts[-1] if prompts else "", words, None)
    usage = {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.total_tokens,
    }
    base = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name(call),
    }
    if not call.stream:
        choice = {"text": reply.text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return json_response(
            {**base, "choices": [choice], "usage": usage, "system_fingerprint": _FINGERPRINT}
        )

    def chunk(text: str, finish: str | None = None) -> bytes:
        return sse_data(
            {
                **base,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            }
        )

    options = call.body.get("stream_options")
    tail = [chunk("", "stop")]
    if isinstance(options, dict) and options.get("include_usage") is True:
        tail.append(sse_data({**base, "choices": [], "usage": usage}))
    tail.append(_DONE)
    return await send_events(
        call, [], [chunk(p) for p in split_pieces(reply.text, call.chunks)], tail
    )


# --- models -------------------------------------------------------------------------------


def _model_entry(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "sandbox"}


async def list_models(request: web.Request) -> web.StreamResponse:
    call = await open_call(request, OPENAI, "models", required=None, stream=False)
    if not isinstance(call, Call):
        return call
    return json_response({"object": "list", "data": [_model_entry(m) for m in _MODELS]})


async def get_model(request: web.Request) -> web.StreamResponse:
    call = await open_call(request, OPENAI, "models", required=None, stream=False)
    if not isinstance(call, Call):
        return call
    return json_response(_model_entry(request.match_info["model"]))
