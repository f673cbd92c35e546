"""How fast ``promptrun serve`` takes OpenTelemetry spans on ``POST /v1/traces`` (OTLP/HTTP).

Starts its own server process on a temporary SQLite database (no sandbox) and drives it from
this process with one aiohttp session (keep-alive). Each export is 512 spans (the OpenTelemetry
SDK's default batch): 64 traces of 8 spans (a root, an LLM call, a template fetch, tool
calls...), each span with about ten attributes and one in four with an event, as a traced
service sends them. Bodies are built before the clock starts (this process shares the CPUs
with the server and should measure it, not itself). Every span is checked stored at the end.

Run ``python benchmarks/otlp_ingest.py [--quick] [--db postgresql://...]`` (``make bench-otlp``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
from ingest import percentile, timed_load  # the shared load loop (benchmarks/ingest.py)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from promptrun.testing import ServerProcess

SPANS_PER_EXPORT = 512
SPANS_PER_TRACE = 8
_names = ["handle ticket", "PromptLayer Run", "Prompt template fetch", "chat gpt-4o-mini"]


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    any_value = AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    else:
        any_value.string_value = value
    return KeyValue(key=key, value=any_value)


def export_body(now_ns: int) -> bytes:
    """One ExportTraceServiceRequest of ``SPANS_PER_EXPORT`` new spans, serialized."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (
        ("service.name", "support-bot"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.version", "1.45.2"),
    ):
        resource_spans.resource.attributes.append(_kv(key, value))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "promptlayer.otlp"
    for _ in range(SPANS_PER_EXPORT // SPANS_PER_TRACE):
        trace_id = secrets.token_bytes(16)
        root = secrets.token_bytes(8)
        for i in range(SPANS_PER_TRACE):
            span = Span(
                trace_id=trace_id,
                span_id=root if i == 0 else secrets.token_bytes(8),
                parent_span_id=b"" if i == 0 else root,
                name=_names[min(i, 3)] if i < 4 else f"Tool: lookup_{i}",
                kind=Span.SPAN_KIND_INTERNAL if i else Span.SPAN_KIND_SERVER,
                start_time_unix_nano=now_ns + i * 1_000_000,
                end_time_unix_nano=now_ns + (i + 5) * 1_000_000,
                status=Status(code=Status.STATUS_CODE_ERROR if i == 7 else 0),
            )
            for key, value in (
                ("node_type", "CODE_EXECUTION"),
                ("promptlayer.prompt.name", "support-answer"),
                ("promptlayer.prompt.version", "3"),
                ("gen_ai.system", "openai"),
                ("gen_ai.request.model", "gpt-4o-mini"),
                ("gen_ai.usage.input_tokens", 412),
                ("gen_ai.usage.output_tokens", 96),
                ("gen_ai.request.temperature", 0.2),
                ("cache.hit", i % 2 == 0),
                ("function_input", "{'args': ('I was charged twice for my subscription.',)}"),
            ):
                span.attributes.append(_kv(key, value))
            if i % 4 == 3:
                event = span.events.add(name="retry", time_unix_nano=now_ns + i * 1_000_000)
                event.attributes.append(_kv("attempt", 2))
            scope_spans.spans.append(span)
    return request.SerializeToString()


def _sender(
    http: aiohttp.ClientSession, feed: Iterator[bytes], headers: dict[str, str]
) -> Callable[[], Awaitable[int]]:
    async def send() -> int:
        async with http.post("/v1/traces", data=next(feed), headers=headers) as r:
            assert r.status == 200, await r.text()
            assert await r.read() == b""  # full success: an empty response
        return SPANS_PER_EXPORT

    return send


async def bench(base: str, key: str, quick: bool) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    exports = 20 if quick else 100
    warm = max(2, exports // 10)
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(base, connector=connector) as http:
        for name, compress, senders in (
            ("protobuf, 512 spans an export, 4 senders", False, 4),
            ("protobuf+gzip, 512 spans an export, 4 senders", True, 4),
            ("protobuf, 512 spans an export, 1 sender", False, 1),
        ):
            now = time.time_ns()
            bodies = [export_body(now) for _ in range(exports + warm)]
            if compress:
                bodies = [gzip.compress(b) for b in bodies]
            headers = {"X-Api-Key": key, "Content-Type": "application/x-protobuf"}
            if compress:
                headers["Content-Encoding"] = "gzip"
            send = _sender(http, iter(bodies), headers)
            await timed_load(send, warm, senders)
            seconds, latencies, spans = await timed_load(send, exports, senders)
            size = sum(len(b) for b in bodies) / len(bodies) / 1024
            rows.append(
                (
                    name,
                    f"{spans / seconds:,.0f} spans/s",
                    f"{statistics.median(latencies) * 1000:.1f}",
                    f"{percentile(latencies, 0.99) * 1000:.1f}",
                    f"{size:,.0f} KiB",
                    f"{spans:,}",
                )
            )
        async with http.get("/promptrun/v1/traces?limit=1", headers={"X-Api-Key": key}) as r:
            total = (await r.json())["total"]
        expected = sum(exports + max(2, exports // 10) for _ in range(3)) * (
            SPANS_PER_EXPORT // SPANS_PER_TRACE
        )
        assert total == expected, f"{total} traces stored, {expected} sent"
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer exports (a smoke run)")
    parser.add_argument("--db", help="a postgresql:// URL instead of a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptrun-bench-") as tmp:
        server_args = ["--no-sandbox"] + (["--db", args.db] if args.db else [])
        with ServerProcess(Path(tmp) / "bench.db", args=server_args) as proc:
            rows = asyncio.run(bench(proc.base_url, proc.api_key, args.quick))
    header = ("scenario", "throughput", "p50 ms", "p99 ms", "body", "spans")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
