"""The peer's own tracing against ``promptrun serve``: ``enable_tracing=True`` and ``traceable``.

The peer exports its spans with OpenTelemetry's OTLP/HTTP exporter to ``{base_url}/v1/traces``
with the key in ``X-Api-Key``, and sends its run's span id in ``/track-request``. Both arrive
unchanged: the spans as one trace with the peer's parent links, the logged request linked to
its run's span, and that span back to the request.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from promptlayer import AsyncPromptLayer, PromptLayer

from promptrun.testing import RunningServer

from ._peer import GREETING, StoredLog
from .conftest import _aclose, _drain_peer_clients


def get(server: RunningServer, path: str) -> Any:
    request = urllib.request.Request(server.base_url + path, headers={"X-API-KEY": server.api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def flushed(client: PromptLayer | AsyncPromptLayer) -> None:
    """Export every span the peer's tracer provider holds, and stop its exporter thread."""
    provider = client.tracer_provider
    assert provider is not None, "the peer made no tracer provider"
    assert provider.force_flush(10_000)
    provider.shutdown()


@pytest.fixture
def traced(peer_server: RunningServer) -> Iterator[PromptLayer]:
    client = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, enable_tracing=True
    )
    yield client
    client.tracer_provider.shutdown()  # type: ignore[union-attr]  # idempotent


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in trace["spans"]}


def check_run_trace(
    server: RunningServer, stored: StoredLog, request_id: int, outer: str, inner: str
) -> dict[str, Any]:
    """The trace of a traced function ``outer`` calling ``inner`` calling ``run()``."""
    record = stored.request(request_id)
    run_span = record["span_id"]
    assert run_span and len(run_span) == 16, record.get("span_id")
    traces = get(server, "/promptrun/v1/traces?limit=50")["items"]
    roots = [t for t in traces if t["name"] == outer]
    assert len(roots) == 1, [t["name"] for t in traces]
    trace = get(server, f"/promptrun/v1/traces/{roots[0]['trace_id']}")
    spans = by_name(trace)
    assert spans[outer]["parent_span_id"] is None
    assert spans[inner]["parent_span_id"] == spans[outer]["span_id"]
    run = spans["PromptLayer Run"]
    assert run["parent_span_id"] == spans[inner]["span_id"]
    assert run["span_id"] == run_span  # the request names its run's span ...
    assert run["request_id"] == request_id  # ... and that span names the request back
    assert run["attributes"]["promptlayer.prompt.name"] == "openai"
    assert trace["service_name"] == "prompt-layer-library"
    assert trace["root_span_id"] == spans[outer]["span_id"]
    return trace


def test_the_peers_traceable_functions_and_run_arrive_as_one_linked_trace(
    traced: PromptLayer, peer_server: RunningServer, stored: StoredLog
) -> None:
    @traced.traceable(attributes={"team": "support"})
    def answer(question: str) -> dict[str, Any]:
        return traced.run("openai", input_variables=GREETING)  # type: ignore[no-any-return]

    @traced.traceable(name="triage ticket")
    def triage(question: str) -> dict[str, Any]:
        return answer(question)

    result = triage("Where is my tea?")
    flushed(traced)
    trace = check_run_trace(peer_server, stored, result["request_id"], "triage ticket", "answer")
    spans = by_name(trace)
    assert spans["answer"]["attributes"]["team"] == "support"
    assert "Where is my tea?" in spans["answer"]["attributes"]["function_input"]
    assert trace["span_count"] == len(trace["spans"]) >= 3
    assert trace["error_count"] == 0


def test_a_traced_function_that_raises_is_stored_as_an_error(
    traced: PromptLayer, peer_server: RunningServer
) -> None:
    @traced.traceable(name="always fails")
    def fails() -> None:
        raise ValueError("no tea left")

    with pytest.raises(ValueError, match="no tea left"):
        fails()
    flushed(traced)
    (found,) = get(peer_server, "/promptrun/v1/traces?name=always%20fails")["items"]
    assert (found["status_code"], found["error_count"]) == ("ERROR", 1)
    trace = get(peer_server, f"/promptrun/v1/traces/{found['trace_id']}")
    (span,) = trace["spans"]
    assert span["events"][0]["name"] == "exception"
    assert span["events"][0]["attributes"]["exception.message"] == "no tea left"


@pytest.mark.anyio
async def test_the_async_peers_traced_coroutines_and_run_arrive_as_one_linked_trace(
    peer_server: RunningServer, stored: StoredLog
) -> None:
    client = AsyncPromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, enable_tracing=True
    )

    @client.traceable()
    async def draft(question: str) -> dict[str, Any]:
        return await client.run("openai", input_variables=GREETING)  # type: ignore[no-any-return]

    @client.traceable(name="async triage")
    async def triage(question: str) -> dict[str, Any]:
        return await draft(question)

    try:
        result = await triage("Is the kettle on?")
    finally:
        flushed(client)
        for provider_client in _drain_peer_clients():  # made on this test's loop: closed here
            await _aclose(provider_client)
    check_run_trace(peer_server, stored, result["request_id"], "async triage", "draft")
