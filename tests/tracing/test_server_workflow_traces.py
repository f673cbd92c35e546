"""A workflow run on the server, in the caller's trace; requests logged inside a traced function.

The client sends its ``Workflow {name}`` span as a W3C ``traceparent`` on
``POST /workflows/{id}/run``; the server records the execution's span and one per node straight
into its spans store. Everything is read back through ``/promptrun/v1/traces/{id}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from promptrun import AsyncPromptLayer, PromptLayer
from promptrun.testing import RunningServer, running_server

from .._clients import Probe
from .test_client_traces import VARS, WORKFLOW, children, trace_named

pytestmark = pytest.mark.anyio

FAILING = {
    "input_variables": ["name"],
    "nodes": [
        {
            "name": "missing",
            "type": "prompt_template",
            "configuration": {"prompt_name": "no-such-prompt"},
            "inputs": {"name": "name"},
            "is_output_node": True,
        },
    ],
}
CHAT = {"type": "chat", "messages": []}
VALUE_NODE = {"name": "v", "type": "value", "configuration": {"value": 1}, "is_output_node": True}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """The server on SQLite, or on PostgreSQL for tests parametrized with "postgres"."""
    overrides: dict[str, Any] = {}
    if getattr(request, "param", "sqlite") == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    with running_server(fault_injection=True, **overrides) as srv:
        yield srv


async def publish_workflow(probe: Probe, name: str, definition: dict[str, Any]) -> int:
    answer = await probe._call(
        "POST", "/rest/workflows", {"workflow_name": name, "definition": definition}
    )
    return int(answer["workflow"]["id"])


async def traces(probe: Probe) -> list[dict[str, Any]]:
    return (await probe._call("GET", "/promptrun/v1/traces"))["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)
async def test_a_traced_function_running_a_server_workflow_gets_a_span_per_node_in_its_tree(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    await publish_workflow(probe, "wf", WORKFLOW)
    pl = make_client(enable_tracing=True)

    @pl.traceable(name="server flow")
    async def flow() -> Any:
        return await pl.run_workflow("wf", VARS, return_all_outputs=True)

    async with pl:
        results = await flow()
        assert await pl.flush(30)
    assert results["echo"]["status"] == "SUCCESS", results
    trace = await trace_named(probe, "server flow")
    (root,) = [s for s in trace["spans"] if s["parent_span_id"] is None]
    (workflow,) = children(trace, root)
    assert workflow["name"] == "Workflow wf"
    assert workflow["attributes"]["promptrun.workflow.execution"] == "server"
    (execution,) = children(trace, workflow)
    assert execution["name"] == "Workflow execution wf"
    assert execution["service_name"] == "promptrun-server"
    assert execution["kind"] == "server"
    assert execution["attributes"]["promptrun.workflow.status"] == "SUCCESS"
    nodes = {s["name"]: s for s in children(trace, execution)}
    assert set(nodes) == {"Workflow node greeting", "Workflow node echo"}
    greeting, echo = nodes["Workflow node greeting"], nodes["Workflow node echo"]
    assert echo["attributes"]["node_type"] == "value"
    assert echo["attributes"]["promptrun.workflow.node.status"] == "SUCCESS"
    start, end = "start_time_unix_nano", "end_time_unix_nano"
    assert execution[start] <= greeting[start] <= greeting[end]
    assert greeting[end] <= echo[start] <= echo[end] <= execution[end]
    attrs = greeting["attributes"]
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    # The node's logged request names the node's span, and the span names it back.
    record = await probe.request(attrs["promptrun.request_id"])
    assert record["span_id"] == greeting["span_id"]
    assert greeting["request_id"] == record["id"]
    assert [s for s in trace["spans"] if s["status_code"] == "ERROR"] == []
    assert trace["span_count"] == 5


async def test_a_failed_server_node_is_an_error_span_under_a_failed_execution(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await publish_workflow(probe, "broken", FAILING)
    pl = make_client(enable_tracing=True)

    @pl.traceable(name="broken flow")
    async def flow() -> Any:
        return await pl.run_workflow("broken", {"name": "Ada"}, return_all_outputs=True)

    async with pl:
        results = await flow()
        assert await pl.flush(30)
    assert results["missing"]["status"] == "FAILED"
    trace = await trace_named(probe, "broken flow")
    (execution,) = [s for s in trace["spans"] if s["name"] == "Workflow execution broken"]
    (node,) = children(trace, execution)
    assert node["status_code"] == "ERROR"
    assert "no-such-prompt" in node["status_message"]
    assert execution["status_code"] == "ERROR"
    assert execution["attributes"]["promptrun.workflow.status"] == "FAILED"


async def test_a_server_workflow_without_tracing_records_no_trace(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    await publish_workflow(probe, "wf", WORKFLOW)
    async with make_client() as pl:
        assert (await pl.run_workflow("wf", VARS, return_all_outputs=True))["echo"]["value"]
    assert await traces(probe) == []


class HeaderProbe(Probe):
    async def srv_call_with_header(self, workflow_id: int, traceparent: str) -> Any:
        import aiohttp

        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{self.srv.base_url}/workflows/{workflow_id}/run",
                json={"input_variables": {"v": 1}},
                headers={**self._key, "traceparent": traceparent, "tracestate": "k=v"},
            ) as r,
        ):
            assert r.status == 201, await r.text()
            return await r.json()


async def run_with_header(probe: HeaderProbe, workflow_id: int, traceparent: str) -> None:
    """Start an execution with this ``traceparent`` (raw HTTP) and wait for its end."""
    answer = await probe.srv_call_with_header(workflow_id, traceparent)
    execution_id = answer["workflow_version_execution_id"]
    while True:
        found = await probe._call("GET", f"/promptrun/v1/workflow-executions/{execution_id}")
        if found["status"] != "RUNNING":
            return
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # not lowercase
        f"00-{TRACE_ID}-{PARENT_ID}-00",  # not sampled by the caller
        f"00-{'0' * 32}-{PARENT_ID}-01",  # a zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # a zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # the forbidden version
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has nothing after its flags
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",  # a short trace id
        "garbage",
    ],
)
async def test_a_traceparent_that_is_malformed_or_unsampled_records_nothing(
    provider_env: RunningServer, header: str
) -> None:
    probe = HeaderProbe(provider_env)
    workflow_id = await publish_workflow(probe, "plain", {"nodes": [VALUE_NODE]})
    await run_with_header(probe, workflow_id, header)
    assert await traces(probe) == []


async def test_a_valid_traceparent_puts_the_execution_under_that_span_whatever_its_version(
    provider_env: RunningServer,
) -> None:
    probe = HeaderProbe(provider_env)
    workflow_id = await publish_workflow(probe, "plain", {"nodes": [VALUE_NODE]})
    # A later version may carry more fields: the first four are read, the rest ignored.
    await run_with_header(probe, workflow_id, f"01-{TRACE_ID}-{PARENT_ID}-03-later")
    trace = await probe._call("GET", f"/promptrun/v1/traces/{TRACE_ID}")
    (execution,) = [s for s in trace["spans"] if s["parent_span_id"] == PARENT_ID]
    assert execution["name"] == "Workflow execution plain"
    assert [s["name"] for s in children(trace, execution)] == ["Workflow node v"]


@pytest.mark.parametrize("inline", [False, True])
async def test_a_request_logged_inside_a_traced_function_links_to_its_span(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe, inline: bool
) -> None:
    pl = make_client(enable_tracing=True, inline_logging=inline)

    @pl.traceable(name="log by hand")
    async def log_it() -> Any:
        now = time.time()
        return await pl.log_request("openai", "gpt-4o", CHAT, CHAT, now - 1, now)

    async with pl:
        logged = await log_it()
        assert await pl.flush(30)
    trace = await trace_named(probe, "log by hand")
    (span,) = trace["spans"]
    record = await probe.request(logged["id"])
    assert record["span_id"] == span["span_id"]
    assert span["request_id"] == record["id"]


def test_a_request_the_sync_client_logs_inside_a_traced_function_links_to_its_span(
    provider_env: RunningServer, probe: Probe, tmp_path: Any
) -> None:
    with PromptLayer(
        api_key=provider_env.api_key,
        base_url=provider_env.base_url,
        enable_tracing=True,
        spool_dir=tmp_path / "spool",
    ) as pl:

        @pl.traceable(name="sync log by hand")
        def log_it() -> Any:
            now = time.time()
            return pl.log_request("openai", "gpt-4o", CHAT, CHAT, now - 1, now)

        logged = log_it()
        outside = pl.log_request("openai", "gpt-4o", CHAT, CHAT, time.time() - 1, time.time())
        assert pl.flush(30)
    trace = asyncio.run(trace_named(probe, "sync log by hand"))
    (span,) = trace["spans"]
    assert asyncio.run(probe.request(logged["id"]))["span_id"] == span["span_id"]
    assert asyncio.run(probe.request(outside["id"]))["span_id"] is None
