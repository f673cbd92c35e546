"""How fast ``promptrun serve`` takes logs: batch ingestion, /track-request, template fetches.

Starts its own server process on a temporary database (no sandbox) and drives it from this
process with one aiohttp session (keep-alive). Run ``python benchmarks/ingest.py [--quick]``.

Aims on a 2-core machine: >= 5,000 records/s through /promptrun/v1/ingest in batches of 200,
and >= 1,000 /track-request/s at 50 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from promptrun.testing import ServerProcess

_ids = itertools.count()
encode = msgspec.json.encode
decode = msgspec.json.decode
JSON = {"Content-Type": "application/json"}


def track_body() -> dict[str, Any]:
    """A /track-request body like the peer SDK's after an OpenAI chat call (about 1 KB)."""
    return {
        "function_name": "openai.chat.completions.create",
        "provider_type": "openai",
        "args": [],
        "kwargs": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant. " * 4},
                {"role": "user", "content": "Tell me about the analytical engine, briefly."},
            ],
            "temperature": 0.7,
            "stream": False,
        },
        "tags": ["bench"],
        "request_start_time": time.time() - 0.5,
        "request_end_time": time.time(),
        "metadata": {"user": "bench"},
        "prompt_input_variables": {"topic": "engines"},
        "return_prompt_blueprint": True,
        "request_response": {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "It was a mechanical computer. " * 6,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 36, "total_tokens": 78},
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_load(
    call: Callable[[], Awaitable[int]], total: int, concurrency: int
) -> tuple[float, list[float], int]:
    """Run ``call`` ``total`` times, ``concurrency`` at once: (seconds, latencies, units done)."""
    latencies: list[float] = []
    units = 0
    remaining = itertools.count()

    async def worker() -> None:
        nonlocal units
        while next(remaining) < total:
            began = time.perf_counter()
            done = await call()  # not `units += await ...`: that reads units before awaiting
            units += done
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, units


async def bench(base: str, key: str, quick: bool) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    connector = aiohttp.TCPConnector(limit=100)
    headers = {"X-API-KEY": key}
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as http:
        publish = {
            "prompt_template": {"prompt_name": "bench"},
            "prompt_version": {
                "prompt_template": {
                    "type": "chat",
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "About {topic}"}]}
                    ],
                },
                "metadata": {
                    "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}
                },
            },
        }
        async with http.post("/rest/prompt-templates", json=publish) as r:
            assert r.status == 201, await r.text()

        # Bodies are encoded before the clock starts (with msgspec, as promptrun's client
        # does): this process shares the CPUs with the server and should measure it, not us.
        batch_size = 200
        batches = 20 if quick else 100
        payloads = iter(
            [
                encode(
                    {
                        "records": [
                            {
                                "type": "track",
                                "client_request_id": f"b{next(_ids)}",
                                "body": track_body(),
                            }
                            for _ in range(batch_size)
                        ]
                    }
                )
                for _ in range(batches + max(1, batches // 10))
            ]
        )
        track_payload = encode(track_body())
        fetch_payload = encode({"input_variables": {"topic": "engines"}})

        async def ingest_batch() -> int:
            async with http.post("/promptrun/v1/ingest", data=next(payloads), headers=JSON) as r:
                results = decode(await r.read())["results"]
            return sum(1 for x in results if x["status"] == "stored")

        async def track_one() -> int:
            async with http.post("/track-request", data=track_payload, headers=JSON) as r:
                assert r.status == 200, await r.text()
                await r.read()
            return 1

        async def fetch_one() -> int:
            async with http.post("/prompt-templates/bench", data=fetch_payload, headers=JSON) as r:
                assert r.status == 200, await r.text()
                await r.read()
            return 1

        scenarios = [
            ("ingest, batches of 200, 4 senders", ingest_batch, batches, 4, "records"),
            ("/track-request, 50 concurrent", track_one, 2000 if quick else 10_000, 50, "requests"),
            ("/prompt-templates/{name}, 50 concurrent", fetch_one, 2000 if quick else 10_000, 50,
             "requests"),
        ]  # fmt: skip
        for name, call, total, concurrency, unit in scenarios:
            await timed_load(call, max(1, total // 10), concurrency)  # warm up
            seconds, latencies, units = await timed_load(call, total, concurrency)
            rows.append(
                (
                    name,
                    f"{units / seconds:,.0f} {unit}/s",
                    f"{statistics.median(latencies) * 1000:.1f}",
                    f"{percentile(latencies, 0.99) * 1000:.1f}",
                    f"{units:,}",
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="promptrun-bench-") as tmp,
        ServerProcess(Path(tmp) / "bench.db", args=["--no-sandbox"]) as proc,
    ):
        rows = asyncio.run(bench(proc.base_url, proc.api_key, args.quick))
    header = ("scenario", "throughput", "p50 ms", "p99 ms", "done")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
