"""run(stream=True): chunks as they arrive, a final item with request_id, logged however it ends."""

from __future__ import annotations

import asyncio
import gc
import itertools

import openai
import pytest

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

VARS = {"name": "Ada", "topic": "engines"}


def text_of(item: dict) -> str:
    message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
    return "".join(p.get("text", "") for p in message["content"])


@pytest.mark.parametrize("template", ["greet", "haiku", "summarize"])
async def test_stream_builds_the_reply_progressively_and_ends_with_request_id(
    make_client: Factory, probe: Probe, template: str
) -> None:
    await probe.publish(template)
    variables = {"greet": VARS, "haiku": {"subject": "rain"}, "summarize": {"text": "abc"}}
    async with make_client() as pl:
        stream = await pl.run(template, input_variables=variables[template], stream=True)
        items = [item async for item in stream]
        assert await pl.flush(timeout=10)
    *chunks, final = items
    assert len(chunks) >= 2
    assert all(c["request_id"] is None for c in chunks)
    assert final["request_id"].startswith("req_")
    texts = [text_of(c) for c in chunks]
    assert all(a == b[: len(a)] for a, b in itertools.pairwise(texts))  # cumulative
    assert text_of(final) == texts[-1]
    assert texts[-1]
    stored = await probe.request(final["request_id"])
    assert stored["status"] == "SUCCESS"
    assert texts[-1] in str(stored["prompt_blueprint"])


async def test_breaking_out_early_closes_the_stream_and_logs_it_as_cut_short(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(chunks=20)
    async with make_client() as pl:
        stream = await pl.run("greet", input_variables=VARS, stream=True)
        async for _ in stream:
            break
        await stream.aclose()
        assert await pl.flush(timeout=10)
    [stored] = await probe.requests()
    assert stored["status"] == "WARNING"
    assert "closed the stream after 1 chunks" in stored["error_message"]


async def test_a_stream_cut_mid_way_raises_and_is_logged_with_its_error(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(chunks=10, fail=[{"cut_after_chunks": 3, "provider": "openai"}])
    async with make_client() as pl:
        stream = await pl.run("greet", input_variables=VARS, stream=True)
        seen = 0
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own transport error
            async for _ in stream:
                seen += 1
        assert await pl.flush(timeout=10)
    assert seen >= 1
    [stored] = await probe.requests()
    assert stored["status"] == "ERROR"
    assert "the stream failed after" in stored["error_message"]


async def test_a_stream_that_cannot_start_raises_the_provider_error_and_is_logged(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(fail=[{"status": 500, "provider": "openai", "times": 5}])
    async with make_client() as pl:
        with pytest.raises(openai.InternalServerError):
            await pl.run("greet", input_variables=VARS, stream=True)
        assert await pl.flush(timeout=10)
    [stored] = await probe.requests()
    assert stored["status"] == "ERROR"


@pytest.mark.parametrize("how", ["aclose() before reading", "dropped unread"])
async def test_a_stream_opened_but_never_read_is_closed_and_logged_once(
    make_client: Factory, probe: Probe, how: str
) -> None:
    # The provider has the request (and bills it) once run() returns the stream.
    await probe.publish("greet")
    async with make_client() as pl:
        stream = await pl.run("greet", input_variables={"name": "A", "topic": "b"}, stream=True)
        assert (await probe.sandbox_stats())["stats"]["total"] == 1
        if how == "aclose() before reading":
            await stream.aclose()
        else:
            del stream
            gc.collect()
        assert await pl.flush(timeout=10)
        rows = await probe.requests()
        for _ in range(20):  # a dropped stream is cleaned up on one of the loop's next turns
            if rows:
                break
            await asyncio.sleep(0)
            assert await pl.flush(timeout=10)
            rows = await probe.requests()
        assert rows, "the unread stream was not logged"
        [listed] = rows
        row = await probe.request(listed["id"])
    assert row["status"] == "WARNING"
    assert "before any chunk was read" in row["error_message"]
    assert row["body"]["request_response"] == {}
