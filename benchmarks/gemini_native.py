"""Client CPU per Gemini call: the native transport against google-genai's own stack.

Starts ``promptrun serve`` in a subprocess (its sandbox answers at once, so its CPU is not
counted), then calls it through promptrun's provider clients, the layer ``run()`` calls: with
the pooled aiohttp session (the native transport) and without it (google-genai's
``client.aio.models.generate_content`` / ``_stream``). Reports the CPU of this process per
call, one at a time and ``--concurrency`` at a time, plain and streamed (chunks read), for
the example template's kwargs with a system prompt, parameters and one tool.

    .venv/bin/python benchmarks/gemini_native.py [--calls 400] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from promptrun.blueprint import build_llm_kwargs
from promptrun.pipeline.providers import ProviderClients
from promptrun.pipeline.providers._base import CallPlan
from promptrun.testing import ServerProcess

TEMPLATE: dict[str, Any] = {
    "type": "chat",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Describe a quiet harbor at dawn"}]},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "finds a fact",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ],
    "tool_choice": "none",
}
MODEL = {
    "provider": "google",
    "name": "gemini-2.5-flash",
    "parameters": {"temperature": 0.7, "max_tokens": 256, "top_p": 0.9},
}


async def measure(base_url: str, native: bool, stream: bool, calls: int, concurrency: int) -> float:
    """Client CPU (µs) per call, after a warm-up."""
    async with aiohttp.ClientSession() as session:
        clients = ProviderClients(concurrency, session=(lambda: session) if native else None)
        kwargs = build_llm_kwargs(TEMPLATE, MODEL)
        plan = CallPlan("google", None, "chat", kwargs, base_url=base_url, sandbox=True)

        async def one() -> None:
            if stream:
                async for _ in await clients.open_stream(plan):
                    pass
            else:
                await clients.call(plan)

        async def batch(n: int) -> None:
            for start in range(0, n, concurrency):
                await asyncio.gather(*(one() for _ in range(min(concurrency, n - start))))

        try:
            await batch(max(20, concurrency))
            began = time.process_time()
            await batch(calls)
            return (time.process_time() - began) / calls * 1e6
        finally:
            await clients.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(
            Path(tmp) / "bench.db", args=["--sandbox-chunks", str(args.chunks)]
        ).start()
        try:
            base = server.sandbox_url("google")
            print(f"client CPU per Gemini call, {args.calls} calls ({args.chunks} chunks/stream)")
            for stream in (False, True):
                for concurrency in (1, args.concurrency):
                    sdk = asyncio.run(measure(base, False, stream, args.calls, concurrency))
                    native = asyncio.run(measure(base, True, stream, args.calls, concurrency))
                    kind = "streamed" if stream else "plain"
                    print(
                        f"  {kind:8} c={concurrency:<4} sdk {sdk:8,.0f} µs  "
                        f"native {native:8,.0f} µs  native/sdk {native / sdk:.2f}x"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
