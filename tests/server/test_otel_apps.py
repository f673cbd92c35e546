"""Any OpenTelemetry-instrumented application exports to ``promptrun serve``: the OpenTelemetry
SDK's own OTLP/HTTP exporter with a manual span tree, gzip on and off, and the official
OpenAI GenAI instrumentation (``opentelemetry-instrumentation-openai-v2``) calling the sandbox.

Each test builds its own tracer provider (never the process-wide one) and shuts it down.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from promptrun.testing import RunningServer


def get(server: RunningServer, path: str) -> Any:
    request = urllib.request.Request(server.base_url + path, headers={"X-API-KEY": server.api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def provider_for(
    server: RunningServer, service: str, compression: Compression = Compression.NoCompression
) -> TracerProvider:
    """A tracer provider exporting to the server as an application would configure it."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(
        endpoint=f"{server.base_url}/v1/traces",
        headers={"x-api-key": server.api_key},
        compression=compression,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@pytest.fixture
def served(session_server: RunningServer) -> RunningServer:
    return session_server


def only_trace(server: RunningServer, service: str) -> dict[str, Any]:
    (found,) = get(server, f"/promptrun/v1/traces?service={service}")["items"]
    return get(server, f"/promptrun/v1/traces/{found['trace_id']}")  # type: ignore[no-any-return]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_a_manual_span_tree_from_the_opentelemetry_sdk_arrives_whole(
    served: RunningServer, compression: Compression
) -> None:
    service = f"orders-{compression.value}"
    provider = provider_for(served, service, compression)
    tracer = provider.get_tracer("orders.app", "2.1")
    with tracer.start_as_current_span(
        "POST /orders", kind=SpanKind.SERVER, attributes={"http.route": "/orders", "items": 3}
    ):
        with tracer.start_as_current_span("reserve stock"):
            pass
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as charge:
            charge.add_event("card declined", {"attempt": 1, "retrying": True})
            charge.set_status(Status(StatusCode.ERROR, "declined twice"))
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace = only_trace(served, service)
    assert (trace["name"], trace["span_count"], trace["error_count"]) == ("POST /orders", 3, 1)
    spans = {span["name"]: span for span in trace["spans"]}
    root = spans["POST /orders"]
    assert (root["kind"], root["parent_span_id"]) == ("server", None)
    assert root["attributes"] == {"http.route": "/orders", "items": 3}
    assert (root["scope_name"], root["scope_version"]) == ("orders.app", "2.1")
    assert root["resource"]["telemetry.sdk.language"] == "python"
    charge_span = spans["charge card"]
    assert (
        charge_span["parent_span_id"] == root["span_id"] == spans["reserve stock"]["parent_span_id"]
    )
    assert (charge_span["status_code"], charge_span["status_message"]) == (
        "ERROR",
        "declined twice",
    )
    (event,) = charge_span["events"]
    assert (event["name"], event["attributes"]) == (
        "card declined",
        {"attempt": 1, "retrying": True},
    )
    assert (
        root["start_time_unix_nano"]
        <= charge_span["start_time_unix_nano"]
        <= charge_span["end_time_unix_nano"]
        <= root["end_time_unix_nano"]
    )


def test_the_official_openai_instrumentation_exports_a_genai_span(served: RunningServer) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    provider = provider_for(served, "genai-app")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with (
            openai.OpenAI(api_key="sk-sandbox", base_url=served.sandbox_url("openai")) as client,
            provider.get_tracer("genai-app").start_as_current_span("answer ticket"),
        ):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
            )
    finally:
        instrumentor.uninstrument()
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace = only_trace(served, "genai-app")
    assert trace["name"] == "answer ticket"
    (chat,) = [span for span in trace["spans"] if span["parent_span_id"] is not None]
    assert chat["name"] == "chat gpt-4o-mini"
    assert chat["kind"] == "client"
    attributes = chat["attributes"]
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert chat["scope_name"].startswith("opentelemetry.")
