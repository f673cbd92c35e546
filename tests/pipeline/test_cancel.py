"""A run cancelled while its provider call is in flight is logged once, then cancelled.

The provider has the request (and bills it) whatever the caller does next, so the run is
logged (status WARNING, "cancelled by the caller", no response) and the cancellation goes on
unchanged. The sandbox provider holds each request (``hang``) until the client goes away; the
test cancels once the sandbox has counted the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

VARS = {"name": "Ada", "topic": "engines"}
HANG = {"hang": True, "provider": "openai"}


async def until_the_provider_has(probe: Probe, requests: int = 1) -> None:
    """Returns once the sandbox provider has received ``requests`` requests."""
    while (await probe.sandbox_stats())["stats"]["total"] < requests:  # noqa: ASYNC110 - the server says
        await anyio.sleep(0.01)


async def cancel_by_task_cancel(work: Callable[[], Awaitable[Any]], probe: Probe) -> None:
    task = asyncio.create_task(work())
    await until_the_provider_has(probe)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def cancel_by_cancel_scope(work: Callable[[], Awaitable[Any]], probe: Probe) -> None:
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_sent() -> None:
                await until_the_provider_has(probe)
                scope.cancel()

            tg.start_soon(cancel_when_sent)
            await work()
    assert scope.cancelled_caught


async def cancel_by_timeout(work: Callable[[], Awaitable[Any]], probe: Probe) -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:

            async def expire_when_sent() -> None:
                await until_the_provider_has(probe)
                deadline.reschedule(loop.time())

            watcher = asyncio.create_task(expire_when_sent())
            await work()
    await watcher


CANCELS = {
    "task.cancel()": cancel_by_task_cancel,
    "anyio cancel scope": cancel_by_cancel_scope,
    "asyncio.timeout": cancel_by_timeout,
}


def assert_logged_as_cancelled(row: dict[str, Any], *, streamed: bool) -> None:
    assert row["status"] == "WARNING"
    assert "cancelled by the caller" in row["error_message"]
    assert "CancelledError" in row["error_message"]
    assert row["body"]["request_response"] == {}  # no answer
    assert row["request_end_time"] >= row["request_start_time"]  # the time up to the cancel
    assert row["metadata"] == {"case": "cancelled"}
    assert row["input_variables"] == VARS
    assert bool(row["body"]["kwargs"].get("stream")) is streamed


@pytest.mark.parametrize("how", list(CANCELS))
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_run_cancelled_while_the_provider_call_is_in_flight_is_logged_once(
    make_client: Factory, probe: Probe, how: str, stream: bool
) -> None:
    await probe.publish("greet")
    await probe.sandbox(fail=[HANG])
    async with make_client() as pl:

        async def work() -> None:
            await pl.run(
                "greet", input_variables=VARS, stream=stream, metadata={"case": "cancelled"}
            )

        await CANCELS[how](work, probe)
        assert await pl.flush(timeout=10)
    [row] = await probe.requests()
    assert_logged_as_cancelled(await probe.request(row["id"]), streamed=stream)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_through_the_provider_sdk_a_cancelled_run_is_logged_once_too(
    make_client: Factory, probe: Probe, stream: bool
) -> None:
    await probe.publish("greet")
    await probe.sandbox(fail=[HANG])
    async with make_client(native_transport=False) as pl:

        async def work() -> None:
            await pl.run(
                "greet", input_variables=VARS, stream=stream, metadata={"case": "cancelled"}
            )

        await cancel_by_task_cancel(work, probe)
        assert await pl.flush(timeout=10)
    [row] = await probe.requests()
    assert_logged_as_cancelled(await probe.request(row["id"]), streamed=stream)


async def test_a_stream_cancelled_after_its_first_chunk_is_logged_once_as_cut_short(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(chunks=20, chunk_delay_ms=10_000)  # the second chunk takes its time
    first = asyncio.Event()
    async with make_client() as pl:

        async def read() -> None:
            stream = await pl.run("greet", input_variables=VARS, stream=True)
            async for _ in stream:
                first.set()

        task = asyncio.create_task(read())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await pl.flush(timeout=10)
    [row] = await probe.requests()
    assert row["status"] == "WARNING"
    assert "the consumer closed the stream after" in row["error_message"]


async def test_a_run_cancelled_before_its_provider_call_logs_nothing(
    make_client: Factory, probe: Probe
) -> None:
    # Cancelled while the template is fetched: nothing reached the provider, nothing to log.
    await probe.publish("greet")
    await probe.faults({"path": "/prompt-templates/greet", "status": None, "delay_ms": 60_000})
    async with make_client() as pl:
        task = asyncio.create_task(pl.run("greet", input_variables=VARS))
        while not (await probe.fault_stats())["hits"]:  # noqa: ASYNC110 - as above
            await anyio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await pl.flush(timeout=10)
    assert await probe.requests() == []
    assert (await probe.sandbox_stats())["stats"]["total"] == 0
