"""OpenAI Chat Completions: the native transport against the openai SDK, the reference.

Each case runs one template through the SDK path (``native_transport=False``) and then the
native path, both through a recording proxy in front of the sandbox that answers the second
exactly as the first was answered. Asserted equal: the requests on the wire (method, path,
headers other than the user agent, the SDK's telemetry and transport headers, JSON body),
``raw_response.model_dump()`` (each chunk's for a stream), the blueprints, the log records
the server stored, and for failures the exception's class, message, status and body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from promptrun.testing import RunningServer

from .._clients import Factory, Probe, example
from ._tape import Tape, start_tape

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
TOOLS = [
    {"type": "function", "function": {"name": "f", "description": "adds", "parameters": SCHEMA}}
]


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def version(messages: list[dict[str, Any]], parameters: dict[str, Any], **extra: Any) -> Any:
    return {
        "prompt_template": {
            "type": "chat",
            "input_variables": ["q"],
            "messages": messages,
            **extra,
        },
        "metadata": {
            "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": parameters}
        },
    }


SYSTEM = {"role": "system", "content": [text("Be brief.")]}
ASK = {"role": "user", "content": [text("Answer: {q}")]}
CORPUS: dict[str, Any] = {
    "greet": None,  # the example template, as published by `promptrun serve --examples`
    "system_and_parameters": version(
        [SYSTEM, ASK],
        {
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 64,
            "seed": 7,
            "stop": ["\n\n"],
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "response_format": {"type": "json_object"},
        },
    ),
    "tools": version(
        [
            SYSTEM,
            ASK,
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": [text("42")], "tool_call_id": "call_1"},
        ],
        {"temperature": 0},
        tools=TOOLS,
        tool_choice="auto",
    ),
    "image": version(
        [
            {
                "role": "user",
                "content": [
                    text("What is this? {q}"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ],
            }
        ],
        {},
    ),
}
VARS = {"q": "why is the sky blue", "name": "Ada", "topic": "tea"}


@pytest.fixture
async def tape(provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tape]:
    recorder, runner, url = await start_tape(provider_env.base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", url + "/sandbox/openai/v1")
    try:
        yield recorder
    finally:
        await runner.cleanup()


async def publish(probe: Probe, name: str) -> None:
    body = CORPUS[name]
    if body is None:
        await probe.publish(name)
        return
    await probe._call(
        "POST",
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": name}, "prompt_version": body},
    )


def described(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc),
        "message": str(exc),
        "status": getattr(exc, "status_code", None),
        "body": getattr(exc, "body", None),
        "request_id": getattr(exc, "request_id", None),
    }


async def one_run(make_client: Factory, native: bool, name: str, stream: bool) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    async with make_client(native_transport=native) as pl:
        try:
            if stream:
                items = []
                async for item in await pl.run(name, input_variables=VARS, stream=True):
                    items.append(item)
                outcome["chunks"] = [i["raw_response"].model_dump() for i in items]
                outcome["blueprints"] = [i["prompt_blueprint"] for i in items]
            else:
                result = await pl.run(name, input_variables=VARS)
                outcome["raw"] = result["raw_response"].model_dump()
                outcome["request_id"] = result["raw_response"]._request_id
                outcome["blueprint"] = result["prompt_blueprint"]
                outcome["class"] = type(result["raw_response"])
        except Exception as exc:
            outcome["error"] = described(exc)
        assert await pl.flush(timeout=10)
    return outcome


_VARYING = {
    "id",
    "request_id",
    "client_request_id",
    "request_start_time",
    "request_end_time",
    "created_at",
    "latency_ms",
}


def stored(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _VARYING}


async def both_paths(
    make_client: Factory, probe: Probe, tape: Tape, name: str, stream: bool, **control: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    await publish(probe, name)
    if control:
        await probe.sandbox(**control)
    sdk = await one_run(make_client, False, name, stream)
    sdk_sent = tape.sent
    tape.replay()
    native = await one_run(make_client, True, name, stream)
    # The SDK path sends its telemetry headers, the native one does not: both paths ran.
    assert all("x-stainless-lang" in s.headers for s in sdk_sent)
    assert not any(k.startswith("x-stainless") for s in tape.sent for k in s.headers)
    assert [s.method for s in tape.sent] == [s.method for s in sdk_sent]
    assert [s.path for s in tape.sent] == [s.path for s in sdk_sent]
    assert [s.body for s in tape.sent] == [s.body for s in sdk_sent]
    assert [s.api_headers for s in tape.sent] == [s.api_headers for s in sdk_sent]
    records = await probe.requests()
    assert len(records) == 2
    assert stored(records[0]) == stored(records[1])
    return sdk, native


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_the_native_path_sends_and_answers_what_the_sdk_does(
    make_client: Factory, probe: Probe, tape: Tape, name: str, stream: bool
) -> None:
    sdk, native = await both_paths(make_client, probe, tape, name, stream)
    assert "error" not in sdk
    assert native == sdk


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
async def test_a_provider_error_is_the_sdks_exception_after_the_sdks_retries(
    make_client: Factory,
    probe: Probe,
    tape: Tape,
    status: int,
    times: int,
    error: type[Exception],
    stream: bool,
) -> None:
    fail = {"status": status, "provider": "openai", "times": times}
    if status == 429:
        fail["retry_after"] = 0.01
    sdk, native = await both_paths(make_client, probe, tape, "greet", stream, fail=[fail])
    assert issubclass(sdk["error"]["type"], error)
    assert native == sdk
    assert len(tape.sent) == times


async def test_a_rate_limit_is_retried_after_its_retry_after_and_then_answers(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    fail = {"status": 429, "provider": "openai", "times": 1, "retry_after": 0.01}
    sdk, native = await both_paths(make_client, probe, tape, "greet", False, fail=[fail])
    assert "raw" in sdk
    assert native == sdk
    assert len(tape.sent) == 2


async def test_a_stream_cut_mid_way_raises_the_sdks_connection_error(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "openai"}
    sdk, native = await both_paths(make_client, probe, tape, "greet", True, chunks=10, fail=[cut])
    assert sdk["error"]["type"] is openai.APIConnectionError
    assert native == sdk


def test_the_corpus_holds_every_openai_example_template() -> None:
    assert example("greet")["metadata"]["model"]["provider"] == "openai"


async def test_a_parameter_the_sdk_does_not_name_goes_through_the_sdk(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    CORPUS["future_parameter"] = version([ASK], {"some_future_parameter": 1})
    try:
        await publish(probe, "future_parameter")
        async with make_client() as pl:
            await pl.run("future_parameter", input_variables=VARS)
    finally:
        del CORPUS["future_parameter"]
    [sent] = tape.sent
    assert "x-stainless-lang" in sent.headers
    assert sent.body["some_future_parameter"] == 1
