"""Gemini-API-compatible sandbox routes: ``generateContent`` and ``streamGenerateContent``.

The installed google-genai SDK calls ``{base_url}/v1/models/{model}:{action}`` (``v1beta``
with ``GOOGLE_GENAI_API_VERSION=beta``), so any version segment is accepted. The action is
part of the last path segment, after a colon.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from promptrun.server.sandbox._common import (
    Call,
    ProviderSpec,
    error_response,
    json_response,
    new_id,
    open_call,
    send_events,
)
from promptrun.server.sandbox._common import encode as _encode
from promptrun.server.sandbox._reply import Reply, ToolSpec, plan_reply, split_pieces, word_count

__all__ = ["GOOGLE", "add_google_routes", "error_body", "model_action"]

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    name = _STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": name}}


GOOGLE = ProviderSpec("google", error_body)


def _parts_text(content: Any) -> tuple[str, bool]:
    """Text of a Content (or a bare string), and whether it answers a function call."""
    if isinstance(content, str):
        return content, False
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return "", False
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    answering = any(
        isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in parts
    )
    return " ".join(texts), answering


def _first_tool(body: dict[str, Any]) -> ToolSpec | None:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    config = body.get("toolConfig") or body.get("tool_config")
    if isinstance(config, dict):
        calling = config.get("functionCallingConfig") or config.get("function_calling_config")
        if isinstance(calling, dict) and calling.get("mode") in ("NONE", "none"):
            return None
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        declarations = tool.get("functionDeclarations") or tool.get("function_declarations")
        for declaration in declarations if isinstance(declarations, list) else ():
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = (
                    declaration.get("parameters")
                    or declaration.get("parametersJsonSchema")
                    or declaration.get("parameters_json_schema")
                )
                return ToolSpec(declaration["name"], schema if isinstance(schema, dict) else {})
    return None


def _reply(body: dict[str, Any]) -> Reply:
    system = body.get("systemInstruction") or body.get("system_instruction")
    texts = [_parts_text(system)[0]]
    contents = body["contents"]
    if isinstance(contents, str | dict):
        contents = [contents]
    last_user = ""
    answering_tool = False
    for content in contents if isinstance(contents, list) else ():
        text, answering = _parts_text(content)
        texts.append(text)
        role = content.get("role", "user") if isinstance(content, dict) else "user"
        answering_tool = role != "model" and answering
        if role != "model" and not answering:
            last_user = text
    return plan_reply(
        last_user, word_count(texts), _first_tool(body), answering_tool_result=answering_tool
    )


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": reply.output_tokens,
        "totalTokenCount": reply.total_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
    }


def _chunk(model: str, response_id: str, parts: list[Any], **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    candidate.update(extra.pop("candidate", {}))
    return {"candidates": [candidate], "modelVersion": model, "responseId": response_id, **extra}


def _sse(payload: Any) -> bytes:
    return b"data: " + _encode(payload) + b"\r\n\r\n"


async def model_action(
    request: web.Request, spec: ProviderSpec | None = None
) -> web.StreamResponse:
    """Dispatch ``models/{model}:generateContent`` and ``:streamGenerateContent``."""
    spec = spec or GOOGLE
    model, _, action = request.match_info["model_action"].partition(":")
    if action not in ("generateContent", "streamGenerateContent"):
        return error_response(
            spec, 404, f"Method '{action or model}' is not served by the sandbox."
        )
    stream = action == "streamGenerateContent"
    call = await open_call(request, spec, action, required=("contents",), stream=stream)
    if not isinstance(call, Call):
        return call
    reply = _reply(call.body)
    response_id = new_id("sbx-")
    if not stream:
        part: dict[str, Any] = (
            {"text": reply.text}
            if reply.tool_name is None
            else {"functionCall": {"name": reply.tool_name, "args": reply.arguments}}
        )
        return json_response(
            _chunk(
                model,
                response_id,
                [part],
                candidate={"finishReason": "STOP"},
                usageMetadata=_usage(reply),
            )
        )

    if reply.tool_name is None:
        texts = split_pieces(reply.text, call.chunks)
        pieces = [_sse(_chunk(model, response_id, [{"text": t}])) for t in texts[:-1]]
        last: list[Any] = [{"text": texts[-1]}]
    else:
        # Gemini sends a function call whole, in one chunk.
        pieces = []
        last = [{"functionCall": {"name": reply.tool_name, "args": reply.arguments}}]
    final = _chunk(
        model, response_id, last, candidate={"finishReason": "STOP"}, usageMetadata=_usage(reply)
    )
    pieces.append(_sse(final))
    return await send_events(call, [], pieces, [])


def add_google_routes(app: web.Application) -> None:
    """Serve the Gemini API under ``/google/{version}/models``."""
    app.router.add_post("/google/{version}/models/{model_action}", model_action)
