"""Provider keys stay on the client's machine: nothing sent to the PromptLayer side holds them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

SECRETS = (b"sk-sandbox-openai-secret", b"sk-ant-sandbox-secret", b"gemini-sandbox-secret")


@asynccontextmanager
async def recording_proxy(target: str) -> AsyncIterator[tuple[str, bytearray]]:
    """A TCP proxy on loopback that keeps every byte the client sends through it."""
    parts = urlsplit(target)
    seen = bytearray()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if record:
                    seen.extend(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def test_no_provider_key_is_sent_to_the_promptlayer_side_under_any_feature(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet", "haiku", "summarize")
    async with recording_proxy(probe.srv.base_url) as (url, seen):
        for inline in (False, True):
            async with make_client(base_url=url, inline_logging=inline, cache_ttl_seconds=5) as pl:
                for name, variables in (
                    ("greet", {"name": "a", "topic": "b"}),
                    ("haiku", {"subject": "c"}),
                    ("summarize", {"text": "d"}),
                ):
                    r = await pl.run(name, input_variables=variables, tags=["x"])
                    stream = await pl.run(name, input_variables=variables, stream=True)
                    async for _ in stream:
                        pass
                    await pl.track.score(r["request_id"], 10)
                    await pl.track.metadata(r["request_id"], {"a": "b"})
                now = time.time()
                await pl.log_request(
                    "openai",
                    "gpt-4o",
                    {"type": "chat", "messages": []},
                    {"type": "chat", "messages": []},
                    now,
                    now,
                )
                await pl.templates.get("greet", {"input_variables": {"name": "a", "topic": "b"}})
                await pl.templates.all()
                await pl.group.create()
                assert await pl.flush(timeout=10)
    assert len(seen) > 1000  # the proxy really carried the traffic
    for secret in SECRETS:
        assert secret not in seen
    # ...while the provider side did get them.
    stats = await probe.sandbox_stats()
    assert all(r["had_key"] for r in stats["stats"]["recent"])
