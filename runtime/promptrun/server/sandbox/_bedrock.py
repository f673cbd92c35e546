"""Amazon-Bedrock-compatible sandbox routes under ``/bedrock`` (boto3's ``endpoint_url``).

- ``POST /model/{modelId}/converse`` and ``/converse-stream``: the Converse API, the stream in
  AWS event-stream framing (``application/vnd.amazon.eventstream``), as boto3 reads it.
- ``POST /model/{modelId}/invoke`` and ``/invoke-with-response-stream``: InvokeModel with an
  Anthropic Messages body (``AsyncAnthropicBedrock``); the stream's ``chunk`` events carry
  each Messages stream event as base64 JSON.

Requests must be signed: the ``Authorization`` header must have SigV4's shape (any
credentials sign fine; the signature is not verified) or carry a Bedrock API key
(``Bearer ...``). Errors name their type in ``__type``, which botocore reads as the code.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from typing import Any

from aiohttp import web

from promptrun.server.sandbox._anthropic import answer
from promptrun.server.sandbox._common import (
    Call,
    ProviderSpec,
    encode,
    error_response,
    json_response,
    new_id,
    open_call,
    send_events,
)
from promptrun.server.sandbox._reply import Reply, ToolSpec, plan_reply, split_pieces, word_count

__all__ = ["add_bedrock_routes", "event_frame"]

EVENT_STREAM = "application/vnd.amazon.eventstream"
_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/\s]+/\d{8}/[\w-]+/bedrock/aws4_request, "
    r"SignedHeaders=[\w;-]+, Signature=[0-9a-f]{64}$"
)
_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    503: "ServiceUnavailableException",
}


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "InternalServerException" if status >= 500 else "")
    return {"message": message, "__type": kind or "ValidationException"}


BEDROCK = ProviderSpec("bedrock", _error_body)


def event_frame(event_type: str, payload: Any) -> bytes:
    """One AWS event-stream message: prelude, CRCs, string headers, a JSON payload."""
    body = encode(payload)
    headers = b"".join(
        struct.pack(">B", len(name)) + name + b"\x07" + struct.pack(">H", len(value)) + value
        for name, value in (
            (b":event-type", event_type.encode()),
            (b":content-type", b"application/json"),
            (b":message-type", b"event"),
        )
    )
    prelude = struct.pack(">II", 16 + len(headers) + len(body), len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def _signature_problem(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer ") and auth[7:].strip():
        return None
    if not auth:
        return "Missing Authentication Token: sign the request with AWS SigV4."
    if not _SIGV4.match(auth) or "X-Amz-Date" not in request.headers:
        return "The request signature is not a SigV4 signature for the bedrock service."
    return None


async def _open(request: web.Request, route: str, stream: bool) -> Call | web.StreamResponse:
    problem = _signature_problem(request)
    if problem is not None:
        response = error_response(BEDROCK, 403, problem)
        response.headers["x-amzn-ErrorType"] = "UnrecognizedClientException"
        return response
    required = ("messages",) if route.startswith("converse") else ("messages", "max_tokens")
    return await open_call(request, BEDROCK, route, required=required, stream=stream)


# -- Converse ----------------------------------------------------------------------------------


def _block_text(block: Any) -> tuple[str, bool]:
    if not isinstance(block, dict):
        return "", False
    if isinstance(block.get("text"), str):
        return block["text"], False
    result = block.get("toolResult")
    if isinstance(result, dict):
        inner = [_block_text(b)[0] for b in result.get("content") or ()]
        return " ".join(inner), True
    return "", False


def _first_tool(body: dict[str, Any]) -> ToolSpec | None:
    config = body.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    for tool in tools if isinstance(tools, list) else ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            schema = (spec.get("inputSchema") or {}).get("json")
            return ToolSpec(spec["name"], schema if isinstance(schema, dict) else {})
    return None


def _converse_reply(body: dict[str, Any]) -> Reply:
    texts = [_block_text(b)[0] for b in body.get("system") or () if isinstance(b, dict)]
    last_user = ""
    answering_tool = False
    messages = body["messages"]
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        parts = [_block_text(b) for b in message.get("content") or ()]
        text = " ".join(t for t, _ in parts)
        texts.append(text)
        if message.get("role") == "user":
            answering_tool = any(tool for _, tool in parts)
            if not answering_tool:
                last_user = text
        else:
            answering_tool = False
    return plan_reply(
        last_user, word_count(texts), _first_tool(body), answering_tool_result=answering_tool
    )


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.total_tokens,
    }


async def converse(request: web.Request) -> web.StreamResponse:
    stream = request.path.endswith("/converse-stream")
    call = await _open(request, "converse-stream" if stream else "converse", stream)
    if not isinstance(call, Call):
        return call
    reply = _converse_reply(call.body)
    if reply.tool_name is None:
        block: dict[str, Any] = {"text": reply.text}
        stop = "end_turn"
    else:
        use: dict[str, Any] = {
            "toolUseId": new_id("tooluse_"),
            "name": reply.tool_name,
            "input": reply.arguments,
        }
        block, stop = {"toolUse": use}, "tool_use"
    if not call.stream:
        return json_response(
            {
                "output": {"message": {"role": "assistant", "content": [block]}},
                "stopReason": stop,
                "usage": _usage(reply),
                "metrics": {"latencyMs": 1},
            }
        )
    head = [event_frame("messageStart", {"role": "assistant"})]
    if reply.tool_name is None:
        deltas: list[dict[str, Any]] = [{"text": p} for p in split_pieces(reply.text, call.chunks)]
    else:
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": reply.tool_name}}
        head.append(event_frame("contentBlockStart", {"start": start, "contentBlockIndex": 0}))
        deltas = [
            {"toolUse": {"input": p}} for p in split_pieces(reply.arguments_json, call.chunks)
        ]
    pieces = [
        event_frame("contentBlockDelta", {"delta": d, "contentBlockIndex": 0}) for d in deltas
    ]
    tail = [
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        event_frame("messageStop", {"stopReason": stop}),
        event_frame("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 1}}),
    ]
    return await send_events(call, head, pieces, tail, EVENT_STREAM)


# -- InvokeModel (Anthropic Messages bodies) -------------------------------------------------


def _chunk(event: tuple[str, dict[str, Any]]) -> bytes:
    return event_frame("chunk", {"bytes": base64.b64encode(encode(event[1])).decode("ascii")})


async def invoke(request: web.Request) -> web.StreamResponse:
    stream = request.path.endswith("/invoke-with-response-stream")
    call = await _open(request, "invoke-with-response-stream" if stream else "invoke", stream)
    if not isinstance(call, Call):
        return call
    model = request.match_info["model"]
    if not call.body.get("anthropic_version"):
        return error_response(BEDROCK, 400, "anthropic_version is required on Bedrock.")
    message, head, pieces, tail = answer(call.body, model, call.chunks)
    if not call.stream:
        return json_response(message)
    return await send_events(
        call,
        [_chunk(e) for e in head if e[0] != "ping"],
        [_chunk(e) for e in pieces],
        [_chunk(e) for e in tail],
        EVENT_STREAM,
    )


def add_bedrock_routes(app: web.Application) -> None:
    """Serve Bedrock Runtime's Converse and InvokeModel APIs under ``/bedrock``."""
    for action in ("converse", "converse-stream"):
        app.router.add_post(f"/bedrock/model/{{model}}/{action}", converse)
    for action in ("invoke", "invoke-with-response-stream"):
        app.router.add_post(f"/bedrock/model/{{model}}/{action}", invoke)
