"""Settings, queued failures, per-request overrides and statistics of the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.test_utils import TestServer
from google import genai
from google.genai import types as genai_types
from openai import AsyncOpenAI

from promptrun.server.sandbox import SandboxSettings, create_sandbox_app

from ._harness import KEYED, Sandbox

pytestmark = pytest.mark.anyio

MESSAGES: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=f"{sandbox.url}/openai/v1", api_key="sk-test", max_retries=0
    ) as client:
        yield client


async def _chat(client: AsyncOpenAI, **extra: Any) -> Any:
    return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **extra)


async def _still_waiting(slow: Awaitable[Any], quick: Callable[[], Awaitable[Any]]) -> bool:
    """Whether ``slow`` is still waiting for its answer once ``quick()`` has had its own."""
    task = asyncio.ensure_future(slow)
    try:
        await quick()
        return not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_latency_setting_delays_every_response(sandbox: Sandbox, client: AsyncOpenAI) -> None:
    await sandbox.control(latency_ms=60_000)
    no_wait = {"x-sandbox-latency-ms": "0"}

    assert await _still_waiting(_chat(client), lambda: _chat(client, extra_headers=no_wait))
    assert (await sandbox.snapshot())["settings"]["latency_ms"] == 60_000


async def test_latency_header_overrides_the_setting_for_one_request(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    slow = _chat(client, extra_headers={"x-sandbox-latency-ms": "60000"})

    assert await _still_waiting(slow, lambda: _chat(client))  # the setting (0) is unchanged
    assert (await sandbox.snapshot())["settings"]["latency_ms"] == 0


async def test_chunk_settings_shape_and_pace_a_stream(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(chunks=3, chunk_delay_ms=10_000)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    pieces = (c.choices[0].delta.content async for c in stream if c.choices[0].delta.content)
    await anext(pieces)  # the first piece comes at once, the next after the delay
    assert await _still_waiting(anext(pieces), lambda: _chat(client))
    await stream.close()
    await sandbox.control(chunk_delay_ms=0)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    three = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-sandbox-chunks": "6"}
    )
    six = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]

    assert len(three) == 3
    assert len(six) == 6
    assert "".join(six) == "".join(three)


def _openai(aiohttp: bool) -> Callable[[Sandbox], AbstractAsyncContextManager[AsyncIterator[str]]]:
    @contextlib.asynccontextmanager
    async def texts(sandbox: Sandbox) -> AsyncIterator[AsyncIterator[str]]:
        http = openai.DefaultAioHttpClient() if aiohttp else None
        async with AsyncOpenAI(
            base_url=f"{sandbox.url}/openai/v1", api_key="k", max_retries=0, http_client=http
        ) as sdk:
            stream = await sdk.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )
            yield (c.choices[0].delta.content async for c in stream if c.choices[0].delta.content)

    return texts


@contextlib.asynccontextmanager
async def _anthropic(sandbox: Sandbox) -> AsyncIterator[AsyncIterator[str]]:
    async with anthropic.AsyncAnthropic(
        base_url=f"{sandbox.url}/anthropic", api_key="k", max_retries=0,
        http_client=anthropic.DefaultAioHttpClient(),
    ) as sdk:  # fmt: skip
        stream = await sdk.messages.create(
            model="claude", max_tokens=5, messages=MESSAGES, stream=True
        )
        yield (e.delta.text async for e in stream if e.type == "content_block_delta")


@contextlib.asynccontextmanager
async def _google(sandbox: Sandbox) -> AsyncIterator[AsyncIterator[str]]:
    options = genai_types.HttpOptions(base_url=f"{sandbox.url}/google")
    async with genai.Client(api_key="k", http_options=options).aio as sdk:
        stream = await sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        yield (chunk.text async for chunk in stream if chunk.text)


@pytest.mark.parametrize(
    ("open_stream", "errors"),
    [
        pytest.param(_openai(aiohttp=False), (openai.APIConnectionError,), id="openai"),
        pytest.param(_openai(aiohttp=True), (openai.APIConnectionError,), id="openai-aiohttp"),
        pytest.param(
            _anthropic, (anthropic.APIConnectionError, httpx2.TransportError), id="anthropic"
        ),
        pytest.param(_google, (aiohttp.ClientPayloadError,), id="google"),
    ],
)
async def test_a_stream_cut_midway_raises_in_the_sdk_iterator_after_what_arrived(
    sandbox: Sandbox,
    open_stream: Callable[[Sandbox], AbstractAsyncContextManager[AsyncIterator[str]]],
    errors: tuple[type[BaseException], ...],
) -> None:
    await sandbox.control(fail=[{"cut_after_chunks": 2}])
    received: list[str] = []
    async with open_stream(sandbox) as texts:
        with pytest.raises(errors):
            async for text in texts:
                received.append(text)

    assert len(received) == 2


async def test_queued_failures_are_shown_then_consumed_in_order_with_repeats(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    state = await sandbox.control(fail=[{"status": 500, "times": 2}, {"status": 429}])
    outcomes: list[str] = []
    for _ in range(4):
        try:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            outcomes.append("ok")
        except openai.APIStatusError as exc:
            outcomes.append(str(exc.status_code))

    assert state["failures"] == [
        {"status": 500, "times": 2},
        {"status": 429, "retry_after": 1.0, "times": 1},
    ]
    assert outcomes == ["500", "500", "429", "ok"]
    assert (await sandbox.snapshot())["failures"] == []


async def test_a_failure_for_one_provider_leaves_the_others_alone(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(fail=[{"status": 529, "provider": "anthropic"}])
    async with anthropic.AsyncAnthropic(
        base_url=f"{sandbox.url}/anthropic", api_key="k", max_retries=0
    ) as claude:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(anthropic.APIStatusError) as caught:
            await claude.messages.create(model="claude", max_tokens=5, messages=MESSAGES)

    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Sandbox injected a 529 error."},
    }


async def test_stats_count_routes_and_record_whether_keys_arrived(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    await sandbox.post("/openai/v1/responses", json.dumps({"model": "m", "input": "x"}))

    stats = (await sandbox.snapshot())["stats"]

    assert stats["total"] == 3
    assert stats["counts"] == {"openai": {"chat/completions": 2, "responses": 1}}
    first, second, third = stats["recent"]
    assert first == {
        "provider": "openai",
        "path": "/sandbox/openai/v1/chat/completions",
        "stream": False,
        "had_key": True,
        "key_headers": ["authorization"],
        "user_agent": first["user_agent"],
    }
    assert first["user_agent"].startswith("AsyncOpenAI/Python")  # the SDK that sent it
    assert second["stream"] is True
    assert third["had_key"] is False
    assert third["key_headers"] == []


async def test_recent_requests_keep_only_the_last_hundred(sandbox: Sandbox) -> None:
    for _ in range(105):
        await sandbox.post("/anthropic/v1/messages", "{}")

    stats = (await sandbox.snapshot())["stats"]

    assert stats["counts"]["anthropic"]["messages"] == 105
    assert len(stats["recent"]) == 100


async def test_reset_restores_initial_settings_and_clears_everything(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    await sandbox.control(latency_ms=5, chunks=2, fail=[{"hang": True}])
    await sandbox.post("/openai/v1/chat/completions", "{}")

    async with sandbox.http.delete(f"{sandbox.url}/_control", headers=KEYED) as response:
        cleared = await response.json()
    await sandbox.control(chunks=7, fail=[{"status": 500}])
    reset_then_set = await sandbox.control(reset=True, latency_ms=1)

    assert cleared["settings"] == {"latency_ms": 0.0, "chunks": 4, "chunk_delay_ms": 0.0}
    assert cleared["failures"] == []
    assert cleared["stats"] == {"total": 0, "counts": {}, "recent": []}
    assert reset_then_set["settings"] == {"latency_ms": 1.0, "chunks": 4, "chunk_delay_ms": 0.0}
    assert reset_then_set["failures"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"chunks": 0},
        {"latency_ms": "fast"},
        {"fail": [{"status": 200}]},
        {"fail": [{"status": 500, "hang": True}]},
        {"fail": [{"status": 500, "provider": "cohere"}]},
        {"speed": 1},
        {"latency_ms": 3_600_000},
        {"latency_ms": 1e308},
        {"latency_ms": -1},
        {"chunks": 1_000_001},
        {"chunk_delay_ms": 60_001},
        {"fail": [{"status": 429, "retry_after": 86_400}]},
        {"fail": [{"status": 500, "times": 10**9}]},
        {"fail": [{"cut_after_chunks": 10**9}]},
        {"fail": [{"status": 500}] * 1001},
    ],
)
async def test_bad_control_bodies_are_refused_and_change_nothing(
    sandbox: Sandbox, body: dict[str, Any]
) -> None:
    async with sandbox.http.post(f"{sandbox.url}/_control", json=body, headers=KEYED) as response:
        status, error = response.status, await response.json()

    assert status == 400
    assert error["error"]
    assert (await sandbox.snapshot())["settings"]["chunks"] == 4


async def test_failure_header_injects_one_failure_without_touching_the_queue(
    sandbox: Sandbox, client: AsyncOpenAI
) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sandbox-fail": "429"}
        )
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sandbox-fail": "sometimes"}
        )

    assert caught.value.response.headers["retry-after"] == "1"
    assert "x-sandbox-fail" in bad.value.message


class _Recorder(AbstractAccessLogger):
    statuses: ClassVar[list[int]] = []

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.statuses.append(response.status)


async def test_hang_ends_when_the_client_leaves_even_without_handler_cancellation() -> None:
    # `web.run_app` does not cancel handlers on disconnect, unlike the test server.
    root = web.Application()
    root.add_subapp("/sandbox", create_sandbox_app(SandboxSettings()))
    runner = web.AppRunner(root, handler_cancellation=False, access_log_class=_Recorder)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    _Recorder.statuses = []
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(asyncio.TimeoutError):
                await http.post(
                    f"http://127.0.0.1:{port}/sandbox/openai/v1/chat/completions",
                    json={"model": "m", "messages": MESSAGES},
                    headers={"Authorization": "Bearer k", "x-sandbox-fail": "hang"},
                    timeout=aiohttp.ClientTimeout(total=0.2),
                )
        for _ in range(50):
            if _Recorder.statuses:
                break
            await asyncio.sleep(0.02)
        assert _Recorder.statuses == [499]
    finally:
        await runner.cleanup()


async def test_the_control_endpoint_refuses_requests_without_the_key(sandbox: Sandbox) -> None:
    answers = []
    for method, headers in (
        ("GET", {}),
        ("POST", {"X-API-KEY": "wrong"}),
        ("DELETE", {}),
    ):
        async with sandbox.http.request(
            method, f"{sandbox.url}/_control", json={"latency_ms": 5000}, headers=headers
        ) as response:
            answers.append((response.status, (await response.json())["error"]))

    assert [status for status, _ in answers] == [401, 401, 401]
    assert all("X-API-KEY" in error for _, error in answers)
    assert (await sandbox.snapshot())["settings"]["latency_ms"] == 0


@pytest.mark.parametrize("headers", [{}, KEYED], ids=["no key", "with the key"])
async def test_a_text_plain_post_like_a_cross_site_form_cannot_change_the_sandbox(
    sandbox: Sandbox, headers: dict[str, str]
) -> None:
    # What any web page can send without a CORS preflight: text/plain, no custom header.
    async with sandbox.http.post(
        f"{sandbox.url}/_control",
        data='{"latency_ms": 3600000, "fail": [{"hang": true}]}',
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example", **headers},
    ) as response:
        status = response.status

    assert status == (415 if headers else 401)
    snapshot = await sandbox.snapshot()
    assert snapshot["settings"]["latency_ms"] == 0
    assert snapshot["failures"] == []


async def test_queued_failures_are_capped_in_all(sandbox: Sandbox) -> None:
    await sandbox.control(fail=[{"status": 500}] * 1000)
    async with sandbox.http.post(
        f"{sandbox.url}/_control", json={"fail": [{"status": 500}]}, headers=KEYED
    ) as response:
        status, error = response.status, (await response.json())["error"]

    assert status == 400
    assert "1000" in error
    assert len((await sandbox.snapshot())["failures"]) == 1000


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-sandbox-latency-ms", "3600000"), ("x-sandbox-latency-ms", "inf"),
     ("x-sandbox-chunks", "1e9")],
)  # fmt: skip
async def test_override_headers_out_of_bounds_are_refused(
    sandbox: Sandbox, header: str, value: str
) -> None:
    status, answer, _ = await sandbox.post(
        "/openai/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
        {"Authorization": "Bearer k", header: value},
    )

    assert status == 400
    assert header in answer["error"]["message"]


async def test_without_an_authorizer_the_sandbox_has_no_control_endpoint() -> None:
    root = web.Application()
    root.add_subapp("/sandbox", create_sandbox_app(SandboxSettings()))
    async with (
        TestServer(root, host="127.0.0.1", port=0) as server,
        aiohttp.ClientSession() as http,
        http.get(str(server.make_url("/sandbox/_control"))) as response,
    ):
        assert response.status == 404
