"""Gemini (google-genai): the native transport against the SDK, the reference.

Same method as test_openai.py (a recording proxy answers the native path exactly as the
sandbox answered the SDK path): the wire (method, path with its query, headers other than the
user agent and ``x-goog-api-client``, JSON body), ``raw_response.model_dump()`` (each
chunk's), blueprints, stored records and exceptions (class, code, status, message,
details) must be equal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from google import genai
from google.genai import errors

from promptrun.pipeline.providers._google_native import sdk_verified
from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from ._harness import both_paths, one_run, publish
from ._tape import Tape, start_tape

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not sdk_verified(),
        reason=f"google-genai {genai.__version__} is older than the native transport is "
        "verified against: its calls go through the SDK",
    ),
]

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
TELEMETRY = "x-goog-api-client"


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def version(
    messages: list[dict[str, Any]], parameters: dict[str, Any], kind: str = "chat", **extra: Any
) -> Any:
    template: dict[str, Any] = {"type": kind, "input_variables": ["q"], **extra}
    if kind == "chat":
        template["messages"] = messages
    return {
        "prompt_template": template,
        "metadata": {
            "model": {"provider": "google", "name": "gemini-2.5-flash", "parameters": parameters}
        },
    }


SYSTEM = {"role": "system", "content": [text("Be brief.")]}
ASK = {"role": "user", "content": [text("Answer: {q}")]}
TOOL = {"type": "function", "function": {"name": "f", "description": "adds", "parameters": SCHEMA}}
CORPUS: dict[str, Any] = {
    "plain": version([ASK], {}),
    "completion": version([], {"temperature": 0.5}, kind="completion", content=[text("{q}")]),
    "system_and_parameters": version(
        [SYSTEM, ASK],
        {"temperature": 1, "top_p": 0.9, "top_k": 5, "max_tokens": 256, "stop": ["END"], "seed": 7},
    ),
    "thinking": version(
        [ASK], {"thinking_config": {"thinking_budget": 128, "include_thoughts": True}}
    ),
    "tools": version(
        [
            SYSTEM,
            ASK,
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                ],
            },
            {"role": "tool", "content": [text("42")], "tool_call_id": "c1"},
        ],
        {},
        tools=[TOOL],
    ),
    "tool_call_answer": version([ASK], {}, tools=[TOOL], tool_choice="required"),
    "images": version(
        [
            {
                "role": "user",
                "content": [
                    text("What is this? {q}"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
        {},
    ),
}  # fmt: skip


@pytest.fixture
async def tape(provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tape]:
    recorder, runner, url = await start_tape(provider_env.base_url)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url + "/sandbox/google")
    try:
        yield recorder
    finally:
        await runner.cleanup()


#: What a stub Gemini server answers, by the model name a template asks for.
GOOD = {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}
STUB_ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "error-event": (
        200,
        "text/event-stream",
        b"data: " + json.dumps(GOOD).encode() + b"\r\n\r\n"
        b'data: {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}\r\n\r\n',
    ),
    "html-502": (502, "text/html", b"<html><body>Bad gateway</body></html>"),
    "bad-json": (200, "application/json", b'{"candidates": ['),
    # Fields the installed SDK does not know (a newer API): it drops them.
    "new-fields": (
        200,
        "application/json",
        json.dumps(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "Hi", "futurePart": 1}], "role": "model"},
                        "futureField": {"x": 1},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 3, "futureTokenCount": 2},
                "futureTopLevel": True,
            }
        ).encode(),
    ),
}


@pytest.fixture
async def stub_tape(
    provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Tape]:
    """A tape in front of a stub Gemini server whose answers the sandbox cannot give."""

    async def answer(request: web.Request) -> web.Response:
        model = request.match_info["model_action"].partition(":")[0]
        status, content_type, body = STUB_ANSWERS[model]
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_post("/v1/models/{model_action}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder, tape_runner, url = await start_tape(f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
    try:
        yield recorder
    finally:
        await tape_runner.cleanup()
        await runner.cleanup()


def stub_version(model: str) -> Any:
    template = version([ASK], {})
    template["metadata"]["model"]["name"] = model
    return template


@pytest.mark.parametrize(
    ("model", "stream", "error"),
    [
        ("error-event", True, errors.ServerError),
        ("html-502", False, errors.ServerError),
        ("html-502", True, errors.ServerError),
        ("bad-json", False, json.JSONDecodeError),
        ("new-fields", False, None),
    ],
)
async def test_an_answer_the_sandbox_cannot_give_ends_as_it_does_with_the_sdk(
    make_client: Factory,
    probe: Probe,
    stub_tape: Tape,
    model: str,
    stream: bool,
    error: type[Exception] | None,
) -> None:
    corpus = {model: stub_version(model)}
    sdk, native = await both_paths(
        make_client, probe, stub_tape, corpus, model, stream, telemetry=TELEMETRY
    )
    if error is None:
        assert "error" not in sdk
    else:
        assert issubclass(sdk["error"]["type"], error)
    assert native == sdk, _diff(native, sdk)


async def test_a_template_the_native_body_does_not_map_runs_through_the_sdk(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    corpus = {"schema": version([ASK], {"response_mime_type": "application/json",
                                        "response_schema": {"type": "OBJECT"}})}  # fmt: skip
    await publish(probe, corpus, "schema")
    outcome = await one_run(make_client, True, "schema", False)
    assert "error" not in outcome
    assert TELEMETRY in tape.sent[0].headers  # the SDK sent it


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_the_native_path_sends_and_answers_what_the_sdk_does(
    make_client: Factory, probe: Probe, tape: Tape, name: str, stream: bool
) -> None:
    sdk, native = await both_paths(
        make_client, probe, tape, CORPUS, name, stream, telemetry=TELEMETRY
    )
    assert "error" not in sdk
    assert native == sdk, _diff(native, sdk)
    assert tape.sent[0].path.endswith(
        ":streamGenerateContent?alt=sse" if stream else ":generateContent"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
async def test_a_provider_error_is_the_sdks_exception_without_retries(
    make_client: Factory, probe: Probe, tape: Tape, status: int, stream: bool
) -> None:
    # google-genai retries nothing unless HttpOptions.retry_options is set: one request each.
    fail: dict[str, Any] = {"status": status, "provider": "google", "times": 3}
    if status == 429:
        fail["retry_after"] = 0.01
    sdk, native = await both_paths(
        make_client, probe, tape, CORPUS, "plain", stream, telemetry=TELEMETRY, fail=[fail]
    )
    error = errors.ClientError if status < 500 else errors.ServerError
    assert issubclass(sdk["error"]["type"], error)
    assert sdk["error"]["code"] == status
    assert native == sdk
    assert len(tape.sent) == 1


async def test_a_stream_cut_mid_way_raises_what_the_sdk_raises(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "google"}
    sdk, native = await both_paths(
        make_client, probe, tape, CORPUS, "plain", True, telemetry=TELEMETRY, chunks=10, fail=[cut]
    )
    assert issubclass(sdk["error"]["type"], aiohttp.ClientPayloadError)
    assert native == sdk


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two outcomes differ (the assertion message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
