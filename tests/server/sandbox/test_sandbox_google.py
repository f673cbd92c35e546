"""The Gemini sandbox, driven by the official `google-genai` SDK's async client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from google import genai
from google.genai import errors, types

from promptrun.server.sandbox import sandbox_reply

from ._harness import Sandbox

pytestmark = [
    pytest.mark.anyio,
    # google-genai subclasses aiohttp.ClientSession, which aiohttp 3.14 deprecates; not ours.
    pytest.mark.filterwarnings(
        "ignore:Inheritance class AiohttpClientSession from ClientSession:DeprecationWarning"
    ),
]

TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="find_trail",
            description="Find a hiking trail.",
            parameters_json_schema={
                "type": "object",
                "properties": {"region": {"type": "string"}, "easy": {"type": "boolean"}},
                "required": ["region", "easy"],
            },
        )
    ]
)


def _client(sandbox: Sandbox, **headers: str) -> genai.client.AsyncClient:
    options = types.HttpOptions(base_url=f"{sandbox.url}/google", headers=headers or None)
    return genai.Client(api_key="g-test", http_options=options).aio


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[genai.client.AsyncClient]:
    async with _client(sandbox) as client:
        yield client


async def test_generate_content_replies_deterministically_with_usage(
    client: genai.client.AsyncClient,
) -> None:
    config = types.GenerateContentConfig(system_instruction="Reply kindly.")
    first = await client.models.generate_content(
        model="gemini-2.5-flash", contents="Suggest a mountain walk", config=config
    )
    second = await client.models.generate_content(
        model="gemini-2.5-flash", contents="Suggest a mountain walk", config=config
    )

    assert first.text == sandbox_reply("Suggest a mountain walk")
    assert first.candidates is not None
    assert first.candidates[0].finish_reason == types.FinishReason.STOP
    usage = first.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 8  # 2 + 4 words -> round(6 * 4 / 3)
    assert usage.total_token_count == 8 + (usage.candidates_token_count or 0)
    assert second.usage_metadata == usage


async def test_stream_joins_to_the_reply_and_ends_with_usage(
    client: genai.client.AsyncClient,
) -> None:
    chunks = [
        chunk
        async for chunk in await client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Suggest a mountain walk"
        )
    ]

    assert len(chunks) == 4
    assert "".join(chunk.text or "" for chunk in chunks) == sandbox_reply("Suggest a mountain walk")
    last = chunks[-1]
    assert last.usage_metadata is not None
    assert last.usage_metadata.candidates_token_count
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP


async def test_tool_request_gets_a_function_call_in_json_and_stream(
    client: genai.client.AsyncClient,
) -> None:
    config = types.GenerateContentConfig(tools=[TOOL])
    result = await client.models.generate_content(
        model="gemini-2.5-flash", contents="pick a trail with the tool", config=config
    )
    chunks = [
        chunk
        async for chunk in await client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="pick a trail with the tool", config=config
        )
    ]

    assert result.function_calls is not None
    assert result.function_calls[0].name == "find_trail"
    assert result.function_calls[0].args == {"region": "sample", "easy": True}
    streamed = [call for chunk in chunks for call in chunk.function_calls or []]
    assert [(c.name, c.args) for c in streamed] == [
        ("find_trail", {"region": "sample", "easy": True})
    ]


async def test_v1beta_path_is_served_too(sandbox: Sandbox) -> None:
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]})
    status, reply, _ = await sandbox.post(
        "/google/v1beta/models/gemini-2.0-flash:generateContent?key=abc", body
    )

    assert status == 200
    assert reply["candidates"][0]["content"]["parts"][0]["text"] == sandbox_reply("hello")
    recent = (await sandbox.snapshot())["stats"]["recent"][-1]
    assert recent["key_headers"] == ["?key"]


async def test_429_and_500_reach_the_sdk_as_its_api_errors(
    sandbox: Sandbox, client: genai.client.AsyncClient
) -> None:
    await sandbox.control(fail=[{"status": 429, "provider": "google"}, {"status": 503}])

    with pytest.raises(errors.ClientError) as rate_limited:
        await client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with pytest.raises(errors.ServerError) as unavailable:
        await client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert rate_limited.value.code == 429
    assert rate_limited.value.status == "RESOURCE_EXHAUSTED"
    assert unavailable.value.code == 503
    assert unavailable.value.status == "UNAVAILABLE"


async def test_missing_key_is_401_and_bad_body_400_in_google_shape(
    sandbox: Sandbox, client: genai.client.AsyncClient
) -> None:
    path = "/google/v1/models/gemini-2.5-flash:generateContent"
    status, body, _ = await sandbox.post(path, json.dumps({"contents": "hi"}))
    with pytest.raises(errors.ClientError) as bad:
        await client.models.generate_content(
            model="gemini-2.5-flash",
            contents="hi",
            config=types.GenerateContentConfig(
                http_options=types.HttpOptions(extra_body={"contents": None})
            ),
        )

    assert status == 401
    assert body == {
        "error": {"code": 401, "message": body["error"]["message"], "status": "UNAUTHENTICATED"}
    }
    assert bad.value.code == 400
    assert bad.value.status == "INVALID_ARGUMENT"


async def test_unknown_model_action_is_404(sandbox: Sandbox) -> None:
    status, body, _ = await sandbox.post(
        "/google/v1/models/gemini-2.5-flash:embedContent", "{}", {"x-goog-api-key": "k"}
    )

    assert status == 404
    assert body["error"]["status"] == "NOT_FOUND"
