"""OpenAI Responses API (``api_type: responses``): the native transport against the SDK.

Same method as test_openai.py: a recording proxy answers the native path exactly as the
sandbox answered the SDK path (``responses.create``); the requests on the wire, each
``raw_response.model_dump()`` (``Response``, or each stream event's), the blueprints, the
stored records and the exceptions must be equal.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._openai_native import OpenAIWire

from .._clients import Factory, Probe
from ._harness import VARS, both_paths, described, publish
from ._tape import Tape
from .test_openai import ASK, CORPUS, SYSTEM, TOOLS, text, version
from .test_openai import tape as tape  # the fixture: a proxy before the sandbox's OpenAI

pytestmark = pytest.mark.anyio


USE_TOOL = {"role": "user", "content": [text("Use the tool for: {q}")]}


def on_responses(chat_version: Any) -> Any:
    """The same template, sent to the Responses API."""
    out = copy.deepcopy(chat_version)
    out["metadata"]["model"]["api_type"] = "responses"
    return out


RESPONSES: dict[str, Any] = {
    "greet": on_responses(version([ASK], {})),
    "system_and_parameters": on_responses(
        version(
            [SYSTEM, ASK],
            {
                "temperature": 0.2,
                "top_p": 0.9,
                "max_tokens": 64,  # sent as max_output_tokens
                "store": False,
                "truncation": "auto",
                "user": "ada",
                "metadata": {"team": "tea"},
                "text": {"format": {"type": "json_object"}},
            },
        )
    ),
    "tool_history": on_responses(CORPUS["tools"]),
    # The sandbox calls the offered tool when the last user text names one.
    "tool_call": on_responses(version([SYSTEM, USE_TOOL], {}, tools=TOOLS, tool_choice="required")),
    "image": on_responses(CORPUS["image"]),
    "completion": on_responses(
        {
            "prompt_template": {
                "type": "completion",
                "input_variables": ["q"],
                "content": [text("Complete: {q}")],
            },
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
        }
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", sorted(RESPONSES))
async def test_a_responses_template_sends_and_answers_what_the_sdk_does(
    make_client: Factory, probe: Probe, tape: Tape, name: str, stream: bool
) -> None:
    sdk, native = await both_paths(make_client, probe, tape, RESPONSES, name, stream)
    assert "error" not in sdk
    assert native == sdk
    assert all(s.path.endswith("/v1/responses") for s in tape.sent)
    if stream:
        assert isinstance(sdk["chunks"][-1], dict)
        assert sdk["chunks"][-1]["type"] == "response.completed"
    else:
        assert sdk["class"] is openai.types.responses.Response


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    ("status", "times", "error"),
    [
        (400, 1, openai.BadRequestError),
        (401, 1, openai.AuthenticationError),
        (429, 3, openai.RateLimitError),
        (500, 3, openai.InternalServerError),
    ],
)
async def test_a_responses_error_is_the_sdks_exception_after_the_sdks_retries(
    make_client: Factory,
    probe: Probe,
    tape: Tape,
    status: int,
    times: int,
    error: type[Exception],
    stream: bool,
) -> None:
    fail: dict[str, Any] = {"status": status, "provider": "openai", "times": times}
    if status == 429:
        fail["retry_after"] = 0.01
    sdk, native = await both_paths(
        make_client, probe, tape, RESPONSES, "greet", stream, fail=[fail]
    )
    assert issubclass(sdk["error"]["type"], error)
    assert native == sdk
    assert len(tape.sent) == times


async def test_a_responses_rate_limit_is_retried_after_its_retry_after_and_then_answers(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    fail = {"status": 429, "provider": "openai", "times": 1, "retry_after": 0.01}
    sdk, native = await both_paths(make_client, probe, tape, RESPONSES, "greet", False, fail=[fail])
    assert "raw" in sdk
    assert native == sdk
    assert len(tape.sent) == 2


async def test_a_responses_stream_cut_mid_way_raises_the_sdks_connection_error(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "openai"}
    sdk, native = await both_paths(
        make_client, probe, tape, RESPONSES, "greet", True, chunks=10, fail=[cut]
    )
    assert sdk["error"]["type"] is openai.APIConnectionError
    assert native == sdk


async def test_a_responses_parameter_the_sdk_does_not_name_goes_through_the_sdk(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    corpus = {"future": on_responses(version([ASK], {"some_future_parameter": 1}))}
    await publish(probe, corpus, "future")
    async with make_client() as pl:
        await pl.run("future", input_variables=VARS)
    [sent] = tape.sent
    assert sent.path.endswith("/v1/responses")
    assert "x-stainless-lang" in sent.headers
    assert sent.body["some_future_parameter"] == 1


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
