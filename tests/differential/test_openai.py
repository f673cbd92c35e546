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
from ._harness import VARS, both_paths, publish
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


@pytest.fixture
async def tape(provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tape]:
    recorder, runner, url = await start_tape(provider_env.base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", url + "/sandbox/openai/v1")
    try:
        yield recorder
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_the_native_path_sends_and_answers_what_the_sdk_does(
    make_client: Factory, probe: Probe, tape: Tape, name: str, stream: bool
) -> None:
    sdk, native = await both_paths(make_client, probe, tape, CORPUS, name, stream)
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
    sdk, native = await both_paths(make_client, probe, tape, CORPUS, "greet", stream, fail=[fail])
    assert issubclass(sdk["error"]["type"], error)
    assert native == sdk
    assert len(tape.sent) == times


async def test_a_rate_limit_is_retried_after_its_retry_after_and_then_answers(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    fail = {"status": 429, "provider": "openai", "times": 1, "retry_after": 0.01}
    sdk, native = await both_paths(make_client, probe, tape, CORPUS, "greet", False, fail=[fail])
    assert "raw" in sdk
    assert native == sdk
    assert len(tape.sent) == 2


async def test_a_stream_cut_mid_way_raises_the_sdks_connection_error(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "openai"}
    sdk, native = await both_paths(
        make_client, probe, tape, CORPUS, "greet", True, chunks=10, fail=[cut]
    )
    assert sdk["error"]["type"] is openai.APIConnectionError
    assert native == sdk


def test_the_corpus_holds_every_openai_example_template() -> None:
    assert example("greet")["metadata"]["model"]["provider"] == "openai"


async def test_a_parameter_the_sdk_does_not_name_goes_through_the_sdk(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    CORPUS["future_parameter"] = version([ASK], {"some_future_parameter": 1})
    try:
        await publish(probe, CORPUS, "future_parameter")
        async with make_client() as pl:
            await pl.run("future_parameter", input_variables=VARS)
    finally:
        del CORPUS["future_parameter"]
    [sent] = tape.sent
    assert "x-stainless-lang" in sent.headers
    assert sent.body["some_future_parameter"] == 1
