"""OpenAI Responses API (``api_type: responses``): what only it has, native against the SDK.

Its corpus, failures and stream cut run with Chat Completions' in test_openai.py; here, a
tool call's ``function_call`` item, and an error event inside a stream (which the sandbox
does not send: a stub server on loopback does).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._openai_native import OpenAIWire

from .._clients import Factory, Probe
from ._harness import both_paths, described
from ._openai_corpus import RESPONSES
from ._tape import Tape
from .test_openai import tape as tape  # the fixture: a proxy before the sandbox's OpenAI

pytestmark = pytest.mark.anyio


async def test_a_responses_tool_call_comes_back_as_the_sdks_function_call_item(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    sdk, native = await both_paths(make_client, probe, tape, RESPONSES, "tool_call", False)
    assert native == sdk
    [item] = native["raw"]["output"]
    assert (item["type"], item["name"]) == ("function_call", "f")
    assert native["blueprint"]["prompt_template"]["messages"][-1]["tool_calls"]


async def _stub_stream(request: web.Request) -> web.StreamResponse:
    """A Responses stream that fails after its first event, as the hosted API can."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    created = {"type": "response.created", "sequence_number": 0, "response": STUB_RESPONSE}
    await response.write(b"event: response.created\ndata: " + json.dumps(created).encode())
    failure = {"error": {"message": "The server had an error", "type": "server_error"}}
    await response.write(b"\n\nevent: error\ndata: " + json.dumps(failure).encode() + b"\n\n")
    await response.write_eof()
    return response


STUB_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "in_progress",
    "model": "gpt-4o-mini",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


async def test_an_error_inside_a_responses_stream_is_the_sdks_api_error() -> None:
    app = web.Application()
    app.router.add_post("/v1/responses", _stub_stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
    plan = CallPlan("openai", "responses", "chat", {"model": "gpt-4o-mini", "input": "hi"})
    try:
        async with (
            aiohttp.ClientSession() as session,
            openai.AsyncOpenAI(base_url=base, api_key="sk-test") as sdk,
        ):
            outcomes = []
            for start in (
                lambda: sdk.responses.create(**plan.llm_kwargs, stream=True),
                lambda: OpenAIWire(session, base, "sk-test").stream(plan),
            ):
                events: list[Any] = []
                with pytest.raises(openai.APIError) as raised:
                    async for event in await start():
                        events.append(event.model_dump())
                outcomes.append((events, described(raised.value)))
    finally:
        await runner.cleanup()
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][1]["message"] == "The server had an error"
    assert [e["type"] for e in outcomes[0][0]] == ["response.created"]
