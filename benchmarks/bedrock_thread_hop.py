"""What running boto3's Converse in a worker thread costs, against calling it directly.

promptrun calls ``amazon.bedrock`` through boto3 in a worker thread (one client per worker;
the stream's events pulled one at a time in a thread). This measures, against the sandbox of
an in-process ``promptrun serve``, the CPU per ``converse`` call made directly (a plain
loop) and through ``anyio.to_thread.run_sync`` from an event loop, one at a time and 16 at a
time, and the CPU per streamed event: iterated directly, pulled through a thread per event,
and read by promptrun's reader thread.

    .venv/bin/python benchmarks/bedrock_thread_hop.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
from typing import Any

import anyio

from promptrun.testing import running_server

MESSAGES = [{"role": "user", "content": [{"text": "Describe a quiet harbor at dawn"}]}]


def client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="AKIABENCH", aws_secret_access_key="x")
    return session.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=64),
    )


def cpu() -> float:
    return time.process_time()


def direct(c: Any, calls: int) -> float:
    start = cpu()
    for _ in range(calls):
        c.converse(modelId="m", messages=MESSAGES)
    return (cpu() - start) / calls


async def threaded(c: Any, calls: int, concurrency: int) -> float:
    call = functools.partial(c.converse, modelId="m", messages=MESSAGES)
    limiter = anyio.Semaphore(concurrency)

    async def one() -> None:
        async with limiter:
            await anyio.to_thread.run_sync(call)

    start = cpu()
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)
    return (cpu() - start) / calls


async def stream_events(c: Any, calls: int) -> tuple[float, float]:
    """CPU per event: iterating in one thread, and pulling each event through a thread."""
    end = object()

    def open_stream() -> Any:
        return c.converse_stream(modelId="m", messages=MESSAGES)["stream"]

    events = 0
    start = cpu()
    for _ in range(calls):
        events += sum(1 for _ in open_stream())
    plain = (cpu() - start) / events
    events = 0
    start = cpu()
    for _ in range(calls):
        it = iter(await anyio.to_thread.run_sync(open_stream))
        while await anyio.to_thread.run_sync(next, it, end) is not end:
            events += 1
    return plain, (cpu() - start) / events


async def stream_pumped(c: Any, calls: int) -> float:
    """CPU per event through promptrun's stream reader (a thread per stream)."""
    from promptrun.pipeline.providers._bedrock import _EventStream

    events = 0
    start = cpu()
    for _ in range(calls):
        response = await anyio.to_thread.run_sync(
            functools.partial(c.converse_stream, modelId="m", messages=MESSAGES)
        )
        async for _event in _EventStream(response):
            events += 1
    return (cpu() - start) / events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with running_server(sandbox=True) as srv:
        c = client(srv.sandbox_url("amazon.bedrock"))
        c.converse(modelId="m", messages=MESSAGES)  # warm the connection pool and the loaders
        # The server shares this process: its CPU is in every figure, the same in each.
        rows = [
            ("converse, direct loop", direct(c, args.calls)),
            ("converse, to_thread, 1 at a time", asyncio.run(threaded(c, args.calls, 1))),
            ("converse, to_thread, 16 at a time", asyncio.run(threaded(c, args.calls, 16))),
        ]
        plain, hopped = asyncio.run(stream_events(c, max(1, args.calls // 10)))
        pumped = asyncio.run(stream_pumped(c, max(1, args.calls // 10)))
    print(f"CPU per call (server included), {args.calls} calls, pid {os.getpid()}")
    for name, seconds in rows:
        print(f"  {name:40s} {seconds * 1e6:9.0f} µs")
    print(f"  {'stream event, iterated in one thread':40s} {plain * 1e6:9.0f} µs")
    print(f"  {'stream event, each pulled via to_thread':40s} {hopped * 1e6:9.0f} µs")
    print(f"  {'stream event, promptrun reader thread':40s} {pumped * 1e6:9.0f} µs")


if __name__ == "__main__":
    main()
