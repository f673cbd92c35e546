"""Tracing's edges: off costs no import, a user's provider is joined, drops are counted."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from promptrun import AsyncPromptLayer
from promptrun.testing import RunningServer
from promptrun.tracing._export import CountingProcessor

from .._clients import Probe
from .test_client_traces import VARS, trace_named

pytestmark = pytest.mark.anyio


def test_with_tracing_off_promptrun_never_imports_opentelemetry(
    provider_env: RunningServer,
) -> None:
    # Importing promptrun loads no OpenTelemetry at all. A run then imports the installed
    # provider SDKs, and some (anthropic, mistralai) import the OpenTelemetry API themselves:
    # promptrun's own tracing, the SDK and the exporter stay out.
    code = f"""
        import sys
        import promptrun
        from promptrun import PromptLayer
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        with PromptLayer(api_key={provider_env.api_key!r}, base_url={provider_env.base_url!r}) as pl:
            pl.traceable(name="x")(lambda: None)()
            pl.run("greet", input_variables={VARS!r})
        print(sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk",
            "opentelemetry.exporter", "promptrun.tracing."))))
    """
    asyncio_publish(provider_env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


def asyncio_publish(server: RunningServer) -> None:
    import asyncio

    asyncio.run(Probe(server).publish("greet"))


async def test_a_given_tracer_provider_gets_promptruns_spans_and_keeps_its_own_exporters(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    outer = provider.get_tracer("app")
    pl = make_client(enable_tracing=True, tracer_provider=provider)
    async with pl:
        with outer.start_as_current_span("app request"):
            await pl.run("greet", input_variables=VARS)
        assert await pl.flush(30)
    mine = {s.name: s for s in theirs.get_finished_spans()}
    assert mine["PromptLayer Run"].parent is not None
    assert mine["PromptLayer Run"].parent.span_id == mine["app request"].context.span_id
    # The application's root span continues into promptrun's, on the server too.
    trace = await trace_named(probe, "app request")
    assert {"app request", "PromptLayer Run", "chat gpt-4o-mini"} <= {
        s["name"] for s in trace["spans"]
    }
    provider.shutdown()


async def test_spans_over_the_bound_are_dropped_counted_and_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InMemorySpanExporter()
    processor = CountingProcessor(exporter, max_queue_size=3, schedule_delay_millis=60_000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        for i in range(5):
            tracer.start_span(f"s{i}").end()
    assert processor.stats.as_dict() | {} == {
        "spans_exported": 0,
        "spans_pending": 3,
        "spans_dropped": 2,
        "spans_failed": 0,
        "span_export_failures": 0,
    }
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1
    assert processor.force_flush()
    assert processor.stats.as_dict()["spans_exported"] == 3
    assert [s.name for s in exporter.get_finished_spans()] == ["s0", "s1", "s2"]
    provider.shutdown()


async def test_a_trace_server_that_is_down_never_fails_a_run_and_is_counted(
    make_client: Callable[..., AsyncPromptLayer],
    probe: Probe,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await probe.publish("greet")
    monkeypatch.setenv("PROMPTLAYER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    pl = make_client(enable_tracing=True, shutdown_timeout=30)
    async with pl:
        result = await pl.run("greet", input_variables=VARS)
        assert result["request_id"]
        assert not await pl.flush(30)  # the logs shipped; the spans could not
        stats = pl.stats()
    assert stats["shipped"] == 1
    assert stats["spans_failed"] >= 3 and stats["span_export_failures"] >= 1, stats
    assert any("could not export" in r.getMessage() for r in caplog.records)


async def test_each_shipped_log_batch_is_a_span_of_its_own_trace(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    pl = make_client(enable_tracing=True)
    async with pl:
        await pl.run("greet", input_variables=VARS)
        assert await pl.flush(30)
        assert await pl.flush(30)  # the batch's span ended after the first flush's export
    trace = await trace_named(probe, "promptrun%20log%20batch")
    (span,) = trace["spans"]
    assert span["parent_span_id"] is None
    assert span["attributes"]["promptrun.log.records"] >= 1
    assert span["attributes"]["promptrun.log.shipped"] >= 1
