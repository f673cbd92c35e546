"""The OpenAI and Azure sandbox, driven by the official async `openai` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient

from promptrun.server.sandbox import sandbox_reply

from ._harness import Sandbox

pytestmark = pytest.mark.anyio

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Name three rivers in Europe"}]},
]


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=f"{sandbox.url}/openai/v1", api_key="sk-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def aio_client(sandbox: Sandbox) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=f"{sandbox.url}/openai/v1",
        api_key="sk-test",
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    ) as client:
        yield client


async def _drain(stream: AsyncIterator[Any], received: list[str]) -> None:
    async for chunk in stream:
        received.append(chunk.choices[0].delta.content or "")


async def test_chat_completion_replies_deterministically_with_realistic_usage(
    client: AsyncOpenAI,
) -> None:
    first = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    second = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert first.choices[0].message.content == sandbox_reply("Name three rivers in Europe")
    assert first.choices[0].finish_reason == "stop"
    assert first.model == "gpt-4o"
    assert first.usage is not None
    assert second.usage is not None
    # 3 + 5 words of input -> round(8 * 4 / 3)
    assert first.usage.prompt_tokens == 11
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    assert first.usage.model_dump() == second.usage.model_dump()
    assert second.choices[0].message.content == first.choices[0].message.content


async def test_chat_stream_over_aiohttp_joins_to_the_reply_and_ends_with_usage(
    aio_client: AsyncOpenAI,
) -> None:
    stream = await aio_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == sandbox_reply("Name three rivers in Europe")
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 4  # the fixture's chunks setting
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 11


async def test_chat_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


async def test_chat_asking_for_a_tool_gets_a_call_with_sample_required_arguments(
    client: AsyncOpenAI,
) -> None:
    messages: Any = [{"role": "user", "content": "Use the tool for Paris"}]
    result = await client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
    )

    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sample", "days": 1}


async def test_chat_tool_call_streams_its_arguments_in_pieces(aio_client: AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "call a tool now"}]
    stream = await aio_client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    chunks = [chunk async for chunk in stream]

    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "sample", "days": 1}
    assert len(deltas) > 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_chat_answers_a_tool_result_with_text_so_agent_loops_end(
    client: AsyncOpenAI,
) -> None:
    messages: Any = [
        {"role": "user", "content": "use the tool"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    result = await client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
    )

    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].message.content == sandbox_reply("use the tool")


async def test_legacy_completions_answer_as_json_and_as_a_stream(client: AsyncOpenAI) -> None:
    result = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    stream = await client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert result.choices[0].text == sandbox_reply("Say hi")
    assert result.usage is not None
    assert result.usage.prompt_tokens == 3
    assert "".join(c.choices[0].text for c in chunks if c.choices) == result.choices[0].text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == result.usage.model_dump()


async def test_responses_api_answers_with_output_text_and_usage(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-4o", instructions="Be brief.", input="What is a fjord?"
    )

    assert response.status == "completed"
    assert response.output_text == sandbox_reply("What is a fjord?")
    assert response.usage is not None
    assert response.usage.input_tokens == 8  # six words -> round(6 * 4 / 3)
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


async def test_responses_stream_sends_the_documented_event_sequence(
    aio_client: AsyncOpenAI,
) -> None:
    input_items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "What is a fjord?"}]}
    ]
    stream = await aio_client.responses.create(model="gpt-4o", input=input_items, stream=True)
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(getattr(event, "delta", "") for event in events)
    assert deltas == sandbox_reply("What is a fjord?")
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == deltas
    assert completed.response.usage is not None
    assert completed.response.usage.input_tokens == 5


async def test_responses_tool_call_arrives_as_a_function_call_item(client: AsyncOpenAI) -> None:
    tool: Any = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    response = await client.responses.create(model="gpt-4o", input="a tool please", tools=[tool])
    async with client.responses.stream(
        model="gpt-4o", input="a tool please", tools=[tool]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()

    item = response.output[0]
    assert item.type == "function_call"
    assert item.name == "lookup"
    assert item.arguments == "{}"
    assert "response.function_call_arguments.delta" in kinds
    assert final.output[0].type == "function_call"


async def test_model_list_names_openai_models(client: AsyncOpenAI) -> None:
    page = await client.models.list()

    assert "gpt-4o" in [model.id for model in page.data]


async def test_azure_deployment_answers_and_the_key_header_is_recorded(sandbox: Sandbox) -> None:
    async with AsyncAzureOpenAI(
        azure_endpoint=f"{sandbox.url}/azure",
        api_version="2024-10-21",
        api_key="azure-key",
        max_retries=0,
    ) as azure:
        result = await azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
        stream = await azure.chat.completions.create(
            model="my-deployment", messages=MESSAGES, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert result.choices[0].message.content == sandbox_reply("Name three rivers in Europe")
    assert text == result.choices[0].message.content
    stats = (await sandbox.snapshot())["stats"]
    assert stats["counts"]["azure"] == {"chat/completions": 2}
    assert stats["recent"][-1]["key_headers"] == ["api-key"]


async def test_queued_429_reaches_the_sdk_as_rate_limit_error_with_retry_after(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(fail=[{"status": 429, "retry_after": 2.5, "provider": "openai"}])

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    again = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    headers = caught.value.response.headers
    assert headers["retry-after"] == "2.5"
    assert headers["retry-after-ms"] == "2500"
    assert caught.value.type == "requests"
    assert again.choices[0].message.content  # the failure was used up


async def test_queued_500_reaches_the_sdk_as_internal_server_error(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(fail=[{"status": 500}])

    with pytest.raises(openai.InternalServerError) as caught:
        await client.responses.create(model="gpt-4o", input="hi")

    assert caught.value.type == "server_error"


async def test_cut_without_stream_drops_the_connection_before_any_answer(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(fail=[{"cut_after_chunks": 0}])

    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_hang_ends_in_the_sdk_timeout(sandbox: Sandbox, client: AsyncOpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sandbox-fail": "hang"}
        )


async def test_missing_key_is_401_in_openai_shape(sandbox: Sandbox, client: AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"Authorization": openai.omit}
        )

    assert caught.value.code == "invalid_api_key"
    assert (await sandbox.snapshot())["stats"]["recent"][-1]["had_key"] is False


async def test_bad_body_is_400_in_openai_shape(sandbox: Sandbox, client: AsyncOpenAI) -> None:
    status, body, _ = await sandbox.post(
        "/openai/v1/chat/completions", b"{not json", {"Authorization": "Bearer k"}
    )
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=None)  # type: ignore[call-overload]

    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert "messages" in caught.value.message
