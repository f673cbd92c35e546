"""CPU per provider call: promptrun's native transport vs the openai SDK, Responses API.

One process calls the bench server's sandbox OpenAI (``/responses``, and ``/chat/completions``
for comparison) one call at a time and measures this process's CPU (user + system) per call:

- ``native``: :class:`OpenAIWire` on an aiohttp session (what ``run()`` uses by default);
- ``sdk``: ``AsyncOpenAI().responses.create`` on its default (httpx) transport;
- ``sdk-aiohttp``: the same SDK on its aiohttp transport (``DefaultAioHttpClient``).

Plain calls build the SDK's ``Response``; streams read every event as the SDK's event types.
Then whole ``AsyncPromptLayer.run()`` calls of the example template sent to the Responses API
(template cached, records shipped: ``flush`` is inside the measurement), with the native
transport and with ``native_transport=False``. Rounds interleave the implementations (a
shared machine's noise falls on all of them alike); the median round is printed.

    .venv/bin/python benchmarks/native_responses.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai

import promptrun

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import INPUT_VARIABLES, BenchServer

from promptrun.pipeline.providers._base import CallPlan
from promptrun.pipeline.providers._openai_native import OpenAIWire

KEY = "sk-bench"
TEMPLATE = (
    Path(__file__).resolve().parent.parent / "runtime/promptrun/examples/templates/greet.json"
)
INPUT = [{"role": "user", "content": [{"type": "input_text", "text": "Hello, I am Ada"}]}]
APIS: dict[str, dict[str, Any]] = {
    "responses": {"model": "gpt-4o-mini", "instructions": "Be brief.", "input": INPUT},
    "chat": {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello, I am Ada"},
        ],
    },
}


def _call(
    impl: str, api: str, stream: bool, base: str, session: Any, clients: list[Any]
) -> Callable[[], Awaitable[Any]]:
    kwargs = APIS[api]
    if impl == "native":
        wire = OpenAIWire(session, base, KEY)
        plan = CallPlan("openai", "responses" if api == "responses" else None, "chat", kwargs)
        if not stream:
            return lambda: wire.call(plan)

        async def native_stream() -> None:
            async for _ in await wire.stream(plan):
                pass

        return native_stream
    http = openai.DefaultAioHttpClient() if impl == "sdk-aiohttp" else None
    client = openai.AsyncOpenAI(base_url=base, api_key=KEY, http_client=http)
    clients.append(client)
    create = client.responses.create if api == "responses" else client.chat.completions.create
    extra = {} if api == "responses" else {"stream_options": {"include_usage": True}}
    if not stream:
        return lambda: create(**kwargs)

    async def sdk_stream() -> None:
        async for _ in await create(**kwargs, **extra, stream=True):
            pass

    return sdk_stream


async def measure(base: str, calls: int, rounds: int) -> None:
    impls = ("native", "sdk", "sdk-aiohttp")
    clients: list[Any] = []
    async with aiohttp.ClientSession() as session:
        cases = {
            (api, stream, impl): _call(impl, api, stream, base, session, clients)
            for api in APIS
            for stream in (False, True)
            for impl in impls
        }
        for fn in cases.values():  # warm: connections, imports, lazy model builds
            for _ in range(20):
                await fn()
        samples: dict[tuple[str, bool, str], list[float]] = {k: [] for k in cases}
        for _ in range(rounds):
            for key, fn in cases.items():
                cpu = time.process_time()
                for _ in range(calls):
                    await fn()
                samples[key].append((time.process_time() - cpu) / calls * 1e6)
    for client in clients:
        await client.close()
    print(f"CPU per call (µs, median of {rounds} rounds of {calls} sequential calls)")
    print(
        f"{'api':<10} {'mode':<7} {'native':>8} {'sdk':>8} {'sdk-aiohttp':>12} {'vs sdk':>7} {'vs aio':>7}"
    )
    for api in APIS:
        for stream in (False, True):
            med = {i: statistics.median(samples[(api, stream, i)]) for i in impls}
            print(
                f"{api:<10} {'stream' if stream else 'plain':<7} {med['native']:>8,.0f} "
                f"{med['sdk']:>8,.0f} {med['sdk-aiohttp']:>12,.0f} "
                f"{med['native'] / med['sdk']:>6.2f}x {med['native'] / med['sdk-aiohttp']:>6.2f}x"
            )


async def measure_runs(name: str, calls: int, rounds: int) -> None:
    """CPU per ``run()`` of ``name`` (a Responses template), native vs SDK transport."""
    clients = {
        native: promptrun.AsyncPromptLayer(native_transport=native) for native in (True, False)
    }
    samples: dict[tuple[bool, bool], list[float]] = {}

    async def one(pl: promptrun.AsyncPromptLayer, stream: bool) -> None:
        if stream:
            async for _ in await pl.run(name, input_variables=INPUT_VARIABLES, stream=True):
                pass
        else:
            await pl.run(name, input_variables=INPUT_VARIABLES)

    for pl in clients.values():
        for stream in (False, True):
            for _ in range(20):
                await one(pl, stream)
            await pl.flush(timeout=60)
    for _ in range(rounds):
        for native, pl in clients.items():
            for stream in (False, True):
                cpu = time.process_time()
                for _ in range(calls):
                    await one(pl, stream)
                await pl.flush(timeout=60)
                cpu = (time.process_time() - cpu) / calls * 1e6
                samples.setdefault((native, stream), []).append(cpu)
    for pl in clients.values():
        await pl.aclose()
    print(
        f"\nrun() of a Responses template, CPU per run (µs, median of {rounds} rounds of {calls})"
    )
    print(f"{'mode':<7} {'native':>8} {'sdk':>8} {'ratio':>7}")
    for stream in (False, True):
        native = statistics.median(samples[(True, stream)])
        sdk = statistics.median(samples[(False, stream)])
        print(
            f"{'stream' if stream else 'plain':<7} {native:>8,.0f} {sdk:>8,.0f} {native / sdk:>6.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = BenchServer(Path(tmp), provider_latency_ms=0, api_latency_ms=0, chunks=8).start()
        try:
            base = server.proc.sandbox_url("openai")
            asyncio.run(measure(base, args.calls, args.rounds))
            os.environ.update(server.worker_env(Path(tmp) / "spool"))
            name = server.prompt_name + "-responses"
            example = json.loads(TEMPLATE.read_text())
            template = {k: example[k] for k in ("prompt_template", "metadata")}
            template["metadata"]["model"]["api_type"] = "responses"
            server._call(
                "POST",
                "/rest/prompt-templates",
                {"prompt_template": {"prompt_name": name}, "prompt_version": template},
            )
            asyncio.run(measure_runs(name, args.calls, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
