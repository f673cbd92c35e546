"""The Anthropic sandbox, driven by the official async `anthropic` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic, DefaultAioHttpClient

from promptrun.server.sandbox import sandbox_reply

from ._harness import Sandbox

pytestmark = pytest.mark.anyio

SYSTEM: Any = [{"type": "text", "text": "You answer in one line."}]
MESSAGES: Any = [{"role": "user", "content": "Describe a quiet harbor"}]
TOOL: Any = {
    "name": "book_berth",
    "description": "Reserve a berth.",
    "input_schema": {
        "type": "object",
        "properties": {"boat": {"type": "string"}, "nights": {"type": "integer"}},
        "required": ["boat", "nights"],
    },
}


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[AsyncAnthropic]:
    async with AsyncAnthropic(
        base_url=f"{sandbox.url}/anthropic",
        api_key="sk-ant-test",
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    ) as client:
        yield client


async def test_message_replies_deterministically_with_usage(client: AsyncAnthropic) -> None:
    first = await client.messages.create(
        model="claude-sandbox", max_tokens=100, system=SYSTEM, messages=MESSAGES
    )
    second = await client.messages.create(
        model="claude-sandbox", max_tokens=100, system=SYSTEM, messages=MESSAGES
    )

    block = first.content[0]
    assert block.type == "text"
    assert block.text == sandbox_reply("Describe a quiet harbor")
    assert first.stop_reason == "end_turn"
    assert first.usage.input_tokens == 12  # 5 system + 4 user words -> round(9 * 4 / 3)
    assert first.usage.model_dump() == second.usage.model_dump()


async def test_stream_events_arrive_in_order_and_build_the_message(
    client: AsyncAnthropic,
) -> None:
    stream = await client.messages.create(
        model="claude-sandbox", max_tokens=100, messages=MESSAGES, stream=True
    )
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == sandbox_reply("Describe a quiet harbor")
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 1


async def test_stream_names_every_event_on_its_event_line_including_ping(
    sandbox: Sandbox,
) -> None:
    body = {"model": "claude", "max_tokens": 10, "messages": MESSAGES, "stream": True}
    async with sandbox.http.post(
        f"{sandbox.url}/anthropic/v1/messages", json=body, headers={"x-api-key": "k"}
    ) as response:
        raw = await response.text()

    events = [block.split("\n") for block in raw.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    datas = [json.loads(lines[1].removeprefix("data: ")) for lines in events]
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    assert names == [data["type"] for data in datas]


async def test_tool_use_reply_in_json_and_stream(client: AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "Use the tool"}]}]
    result = await client.messages.create(
        model="claude", max_tokens=50, messages=messages, tools=[TOOL]
    )
    async with client.messages.stream(
        model="claude", max_tokens=50, messages=messages, tools=[TOOL]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()

    block = result.content[0]
    assert result.stop_reason == "tool_use"
    assert block.type == "tool_use"
    assert block.name == "book_berth"
    assert block.input == {"boat": "sample", "nights": 1}
    assert "input_json" in kinds
    streamed = final.content[0]
    assert streamed.type == "tool_use"
    assert streamed.input == block.input
    assert final.stop_reason == "tool_use"


async def test_tool_result_gets_a_text_answer(client: AsyncAnthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "use the tool"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "book_berth", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
        },
    ]
    result = await client.messages.create(
        model="claude", max_tokens=50, messages=messages, tools=[TOOL]
    )

    assert result.content[0].type == "text"
    assert result.stop_reason == "end_turn"


async def test_429_reaches_the_sdk_as_rate_limit_error(
    sandbox: Sandbox, client: AsyncAnthropic
) -> None:
    await sandbox.control(fail=[{"status": 429, "retry_after": 3, "provider": "anthropic"}])

    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Sandbox injected a 429 error."},
    }


async def test_500_reaches_the_sdk_as_internal_server_error(
    sandbox: Sandbox, client: AsyncAnthropic
) -> None:
    with pytest.raises(anthropic.InternalServerError):
        await client.messages.create(
            model="claude", max_tokens=5, messages=MESSAGES, extra_headers={"x-sandbox-fail": "500"}
        )


async def test_missing_key_is_401_and_bad_body_400_in_anthropic_shape(sandbox: Sandbox) -> None:
    status, body, _ = await sandbox.post("/anthropic/v1/messages", json.dumps({"model": "c"}))
    bad_status, bad_body, _ = await sandbox.post(
        "/anthropic/v1/messages", json.dumps({"model": "c"}), {"x-api-key": "k"}
    )

    assert status == 401
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert bad_status == 400
    assert bad_body["error"]["type"] == "invalid_request_error"
    assert "messages" in bad_body["error"]["message"]


async def test_sdk_sees_a_bad_body_as_bad_request_error(client: AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=None)  # type: ignore[call-overload]

    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
