"""Anthropic Messages: the native transport against the anthropic SDK, the reference.

Same method as test_openai.py (a recording proxy answers the native path exactly as the
sandbox answered the SDK path): the wire, ``raw_response.model_dump()`` (each stream event's),
blueprints, stored records and exceptions must be equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from promptrun.pipeline.providers._anthropic_native import sdk_verified
from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from ._harness import both_paths
from ._tape import Tape, start_tape

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not sdk_verified(),
        reason=f"anthropic {anthropic.__version__} is older than the native transport is "
        "verified against: its calls go through the SDK",
    ),
]

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


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
            "model": {
                "provider": "anthropic",
                "name": "claude-sonnet-4-6",
                "parameters": {"max_tokens": 256, **parameters},
            }
        },
    }


SYSTEM = {"role": "system", "content": [text("Be brief.")]}
ASK = {"role": "user", "content": [text("Answer: {q}")]}
CORPUS: dict[str, Any] = {
    "haiku": None,  # the example template
    "system_and_parameters": version(
        [SYSTEM, ASK], {"temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"]}
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
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": [text("42")], "tool_call_id": "toolu_1"},
        ],
        {},
        tools=[
            {
                "type": "function",
                "function": {"name": "f", "description": "adds", "parameters": SCHEMA},
            }
        ],
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
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url + "/sandbox/anthropic")
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
        (400, 1, anthropic.BadRequestError),
        (401, 1, anthropic.AuthenticationError),
        (429, 3, anthropic.RateLimitError),
        (500, 3, anthropic.InternalServerError),
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
    fail: dict[str, Any] = {"status": status, "provider": "anthropic", "times": times}
    if status == 429:
        fail["retry_after"] = 0.01
    sdk, native = await both_paths(make_client, probe, tape, CORPUS, "haiku", stream, fail=[fail])
    assert issubclass(sdk["error"]["type"], error)
    assert native == sdk
    assert len(tape.sent) == times


async def test_a_stream_cut_mid_way_raises_the_sdks_connection_error(
    make_client: Factory, probe: Probe, tape: Tape
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "anthropic"}
    sdk, native = await both_paths(
        make_client, probe, tape, CORPUS, "haiku", True, chunks=10, fail=[cut]
    )
    assert issubclass(sdk["error"]["type"], anthropic.APIConnectionError)
    assert native == sdk
