"""The native Gemini transport on the shared NativeWire base keeps google-genai's own policy:
a stream's request waits for its first read, and any status but 200 is the SDK's error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from google.genai import errors

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._google_native import GoogleWire

pytestmark = pytest.mark.anyio

GOOD = {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}
CHUNK = b"data: " + json.dumps(GOOD).encode() + b"\r\n\r\n"


class Stub:
    """A Gemini stand-in on loopback: answers each POST with ``status`` and ``body``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.status = 200
        self.body = json.dumps(GOOD).encode()
        self.content_type = "application/json"

    async def answer(self, request: web.Request) -> web.Response:
        self.paths.append(request.path_qs)
        return web.Response(
            status=self.status, body=self.body, headers={"Content-Type": self.content_type}
        )


@pytest.fixture
async def stub_wire() -> AsyncIterator[tuple[Stub, GoogleWire]]:
    stub = Stub()
    app = web.Application()
    app.router.add_post("/{tail:.*}", stub.answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = aiohttp.ClientSession()
    try:
        yield stub, GoogleWire(session, f"http://127.0.0.1:{port}", "test-key")
    finally:
        await session.close()
        await runner.cleanup()


def plan() -> CallPlan:
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    return CallPlan("google", None, "chat", {"model": "gemini-2.5-flash", "contents": contents})


async def test_a_gemini_stream_sends_its_request_at_the_first_read_not_when_opened(
    stub_wire: tuple[Stub, GoogleWire],
) -> None:
    stub, wire = stub_wire
    stub.body, stub.content_type = CHUNK * 2, "text/event-stream"
    call = plan()
    assert wire.covers(call, True)
    chunks = await wire.stream(call)
    assert stub.paths == []
    texts = [chunk.text async for chunk in chunks]
    assert texts == ["Hi", "Hi"]
    assert len(stub.paths) == 1
    assert stub.paths[0].endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_gemini_answer_with_a_2xx_status_other_than_200_is_the_sdks_api_error(
    stub_wire: tuple[Stub, GoogleWire], stream: bool
) -> None:
    stub, wire = stub_wire
    stub.status = 201
    call = plan()
    assert wire.covers(call, stream)
    with pytest.raises(errors.APIError) as raised:
        if stream:
            async for _ in await wire.stream(call):
                pass
        else:
            await wire.call(call)
    assert raised.value.code == 201
    assert len(stub.paths) == 1  # google-genai retries nothing
