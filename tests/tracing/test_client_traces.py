"""Our clients' traces, read back from ``promptrun serve``: one tree, correct parent links.

A ``traceable`` function calls ``run()`` twice concurrently and a local workflow; the spans
arrive at the server's ``/v1/traces`` (OTLP/HTTP from the OpenTelemetry SDK) and are read back
through ``/promptrun/v1/traces/{id}``, each logged request naming its run's span.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promptrun import AsyncPromptLayer, PromptLayer
from promptrun.blueprint import MissingVariablesError
from promptrun.testing import RunningServer

from .._clients import Probe

pytestmark = pytest.mark.anyio

WORKFLOW = {
    "input_variables": ["name", "topic"],
    "nodes": [
        {
            "name": "greeting",
            "type": "prompt_template",
            "configuration": {"prompt_name": "greet"},
            "inputs": {"name": "name", "topic": "topic"},
        },
        {
            "name": "echo",
            "type": "value",
            "configuration": {"value": "done"},
            "inputs": {"after": "greeting"},
            "is_output_node": True,
        },
    ],
}
VARS = {"name": "Ada", "topic": "engines"}


async def trace_named(probe: Probe, name: str) -> dict[str, Any]:
    page = await probe._call("GET", f"/promptrun/v1/traces?name={name}")
    assert len(page["items"]) == 1, page["items"]
    return await probe._call("GET", f"/promptrun/v1/traces/{page['items'][0]['trace_id']}")  # type: ignore[no-any-return]


def children(trace: dict[str, Any], span: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in trace["spans"] if s["parent_span_id"] == span["span_id"]]


async def check_tree(probe: Probe, root_name: str, request_ids: list[Any]) -> dict[str, Any]:
    """root -> 2 runs (each: template fetch, provider call) + workflow (-> nodes -> its run)."""
    trace = await trace_named(probe, root_name)
    (root,) = [s for s in trace["spans"] if s["parent_span_id"] is None]
    assert root["name"] == root_name
    assert "Ada" in root["attributes"]["function_input"]
    top = children(trace, root)
    runs = [s for s in top if s["name"] == "PromptLayer Run"]
    (workflow,) = [s for s in top if s["name"].startswith("Workflow ")]
    assert len(runs) == 2, [s["name"] for s in top]
    for run in runs:
        names = sorted(s["name"] for s in children(trace, run))
        assert names == ["Prompt template fetch", "chat gpt-4o-mini"], names
        (call,) = [
            s for s in children(trace, run) if s["kind"] == "CLIENT" or s["name"].startswith("chat")
        ]
        attrs = call["attributes"]
        assert attrs["gen_ai.system"] == "openai"
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    fetches = [
        c["attributes"]["promptrun.template.cache"]
        for r in runs
        for c in children(trace, r)
        if c["name"] == "Prompt template fetch"
    ]
    assert sorted(fetches) in (["hit", "miss"], ["miss", "miss"])
    nodes = {s["name"]: s for s in children(trace, workflow)}
    assert set(nodes) == {"Workflow node greeting", "Workflow node echo"}
    node_run = children(trace, nodes["Workflow node greeting"])
    assert "Prompt template fetch" in {s["name"] for s in node_run}
    # Each logged request names its run's span, and the span names the request back.
    by_id = {s["span_id"]: s for s in trace["spans"]}
    for request_id in request_ids:
        record = await probe.request(request_id)
        assert record["span_id"] in {r["span_id"] for r in runs}
        assert by_id[record["span_id"]]["request_id"] == record["id"]
    errors = [
        (s["name"], s["status_message"]) for s in trace["spans"] if s["status_code"] == "ERROR"
    ]
    assert errors == []
    return trace


async def test_a_traced_coroutine_running_two_runs_at_once_and_a_workflow_is_one_tree(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    pl = make_client(enable_tracing=True, cache_ttl_seconds=60)

    @pl.traceable(name="answer two", attributes={"team": "support"})
    async def answer(name: str) -> list[Any]:
        first, second = await asyncio.gather(
            pl.run("greet", input_variables={**VARS, "name": name}),
            pl.run("greet", input_variables={**VARS, "name": name}),
        )
        await pl.run_workflow(
            "wf", VARS, execution="local", definition=WORKFLOW, return_all_outputs=True
        )
        return [first["request_id"], second["request_id"]]

    async with pl:
        request_ids = await answer("Ada")
        assert await pl.flush(30)
        stats = pl.stats()
    assert stats["spans_exported"] >= 10 and stats["spans_dropped"] == 0, stats
    trace = await check_tree(probe, "answer two", request_ids)
    assert trace["service_name"] == "promptrun"


def test_the_sync_client_carries_the_trace_across_its_portal_thread(
    provider_env: RunningServer, probe: Probe, tmp_path: Any
) -> None:
    asyncio.run(probe.publish("greet"))
    with PromptLayer(
        api_key=provider_env.api_key,
        base_url=provider_env.base_url,
        enable_tracing=True,
        spool_dir=tmp_path / "spool",
    ) as pl:

        @pl.traceable(name="sync answer two")
        def answer(name: str) -> list[Any]:
            def one() -> Any:
                return pl.run("greet", input_variables={**VARS, "name": name})["request_id"]

            with ThreadPoolExecutor(2) as pool:  # threads: the context handed over explicitly
                futures = [pool.submit(contextvars.copy_context().run, one) for _ in range(2)]
                ids = [f.result() for f in futures]
            pl.run_workflow("wf", VARS, execution="local", definition=WORKFLOW)
            return ids

        request_ids = answer("Ada")
        assert pl.flush(30)
    asyncio.run(check_tree(probe, "sync answer two", request_ids))


async def test_a_traced_function_that_raises_is_an_error_span_and_still_raises(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    pl = make_client(enable_tracing=True)

    @pl.traceable()
    async def no_tea() -> None:
        raise ValueError("no tea left")

    async with pl:
        with pytest.raises(ValueError, match="no tea left"):
            await no_tea()
        assert await pl.flush(30)
    trace = await trace_named(probe, "no_tea")
    (span,) = trace["spans"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "ValueError"
    assert span["events"][0]["attributes"]["exception.message"] == "no tea left"


async def test_traced_generators_span_their_whole_iteration_and_nest_what_they_call(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    pl = make_client(enable_tracing=True)

    @pl.traceable(name="inner")
    def inner(x: int) -> int:
        return x * 2

    @pl.traceable(name="numbers")
    async def numbers() -> Any:
        for i in range(3):
            await asyncio.sleep(0)
            yield inner(i)

    @pl.traceable(name="sync numbers")
    def sync_numbers() -> Any:
        yield from (inner(i) for i in range(2))

    async with pl:
        assert [x async for x in numbers()] == [0, 2, 4]
        assert list(sync_numbers()) == [0, 2]
        assert await pl.flush(30)
    for name, count in (("numbers", 3), ("sync numbers", 2)):
        trace = await trace_named(probe, name)
        (root,) = [s for s in trace["spans"] if s["parent_span_id"] is None]
        assert root["attributes"]["function_output"] == f"{count} items"
        assert [s["name"] for s in children(trace, root)] == ["inner"] * count


async def test_long_arguments_and_results_are_cut_to_a_bounded_attribute(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    pl = make_client(enable_tracing=True)

    @pl.traceable(name="big")
    def big(text: str) -> str:
        return text * 2

    async with pl:
        big("x" * 100_000)
        assert await pl.flush(30)
    (span,) = (await trace_named(probe, "big"))["spans"]
    assert len(span["attributes"]["function_input"]) < 5000
    assert span["attributes"]["function_output"].endswith("(200000 characters in all)")


async def test_a_streamed_runs_span_lasts_to_its_last_chunk_with_the_streams_usage(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    pl = make_client(enable_tracing=True)

    @pl.traceable(name="stream it")
    async def stream_it() -> Any:
        stream = await pl.run("greet", input_variables=VARS, stream=True)
        items = [item async for item in stream]
        return items[-1]["request_id"]

    async with pl:
        request_id = await stream_it()
        assert await pl.flush(30)
    trace = await trace_named(probe, "stream it")
    spans = {s["name"]: s for s in trace["spans"]}
    run, call = spans["PromptLayer Run"], spans["chat gpt-4o-mini"]
    assert call["parent_span_id"] == run["span_id"]
    assert call["attributes"]["promptrun.stream.chunks"] > 1
    assert call["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert run["end_time_unix_nano"] >= call["end_time_unix_nano"] > call["start_time_unix_nano"]
    assert (await probe.request(request_id))["span_id"] == run["span_id"]


async def test_a_failed_provider_call_is_an_error_span_and_its_log_names_the_run(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(fail=[{"status": 400}])
    pl = make_client(enable_tracing=True)
    async with pl:
        with pytest.raises(Exception):  # noqa: B017 - the provider SDK's own error class
            await pl.run("greet", input_variables=VARS)
        assert await pl.flush(30)
    trace = await trace_named(probe, "PromptLayer Run")
    spans = {s["name"]: s for s in trace["spans"]}
    assert spans["PromptLayer Run"]["status_code"] == "ERROR"
    assert spans["chat gpt-4o-mini"]["status_code"] == "ERROR"
    (item,) = await probe.requests()
    assert (await probe.request(item["id"]))["span_id"] == spans["PromptLayer Run"]["span_id"]


async def test_strict_variables_still_refuses_a_run_missing_variables_with_tracing_on(
    make_client: Callable[..., AsyncPromptLayer], probe: Probe
) -> None:
    await probe.publish("greet")
    pl = make_client(enable_tracing=True, strict_variables=True)
    async with pl:
        with pytest.raises(MissingVariablesError) as caught:
            await pl.run("greet", input_variables={"name": "Ada"})
        assert caught.value.names == ["topic"]


def test_threads_started_with_the_context_copied_nest_under_the_traced_function(
    provider_env: RunningServer, probe: Probe, tmp_path: Any
) -> None:
    pl = PromptLayer(
        api_key=provider_env.api_key,
        base_url=provider_env.base_url,
        enable_tracing=True,
        spool_dir=tmp_path / "spool",
    )

    @pl.traceable(name="worker")
    def worker() -> None:
        pass

    @pl.traceable(name="spawner")
    def spawner() -> None:
        thread = threading.Thread(target=contextvars.copy_context().run, args=(worker,))
        thread.start()
        thread.join()

    spawner()
    assert pl.flush(30)
    pl.close()
    trace = asyncio.run(trace_named(probe, "spawner"))
    spans = {s["name"]: s for s in trace["spans"]}
    assert spans["worker"]["parent_span_id"] == spans["spawner"]["span_id"]


def test_a_sync_stream_inside_a_traced_function_is_its_child_to_the_last_chunk(
    provider_env: RunningServer, probe: Probe, tmp_path: Any
) -> None:
    asyncio.run(probe.publish("greet"))
    with PromptLayer(
        api_key=provider_env.api_key,
        base_url=provider_env.base_url,
        enable_tracing=True,
        spool_dir=tmp_path / "spool",
    ) as pl:

        @pl.traceable(name="sync stream")
        def stream_it() -> Any:
            return [item for item in pl.run("greet", input_variables=VARS, stream=True)][-1]

        request_id = stream_it()["request_id"]
        assert pl.flush(30)
    trace = asyncio.run(trace_named(probe, "sync stream"))
    spans = {s["name"]: s for s in trace["spans"]}
    assert spans["PromptLayer Run"]["parent_span_id"] == spans["sync stream"]["span_id"]
    assert spans["chat gpt-4o-mini"]["parent_span_id"] == spans["PromptLayer Run"]["span_id"]
    assert spans["chat gpt-4o-mini"]["attributes"]["gen_ai.usage.output_tokens"] > 0
    record = asyncio.run(probe.request(request_id))
    assert record["span_id"] == spans["PromptLayer Run"]["span_id"]
