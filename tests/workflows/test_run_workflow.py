"""Our client's run_workflow: on our server (its protocol) and in local execution."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from promptrun import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
    PromptLayerBadRequestError,
    PromptLayerNotFoundError,
    PromptLayerValidationError,
)
from promptrun._run_workflow import run_workflow

from .conftest import Server

pytestmark = pytest.mark.anyio

PIPELINE: dict[str, Any] = {
    "input_variables": ["topic"],
    "nodes": [
        {"name": "draft", "type": "prompt_template",
         "configuration": {"prompt_name": "greet", "label": "prod"},
         "inputs": {"name": "topic", "topic": "topic"}},
        {"name": "size", "type": "code", "configuration": {"code": "return len(text)"},
         "inputs": {"text": "draft"}},
        {"name": "check", "type": "conditional",
         "configuration": {"expression": "n > 10", "if_true": ["long"], "if_false": ["short"]},
         "inputs": {"n": "size"}},
        {"name": "long", "type": "value", "configuration": {"value": "a long reply"},
         "is_output_node": True},
        {"name": "short", "type": "value", "configuration": {"value": "a short reply"},
         "is_output_node": True},
    ],
}  # fmt: skip
NO_OUTPUT = {"nodes": [{"name": "v", "type": "value", "configuration": {"value": 1}}]}
ALL_FAIL = {"nodes": [{"name": "boom", "type": "code", "configuration": {"code": "return 1/0"},
                       "is_output_node": True}]}  # fmt: skip
UPSTREAM_FAILS = {"nodes": [
    {"name": "stats", "type": "code",
     "configuration": {"code": "raise ValueError('the first cause')"}},
    {"name": "headline", "type": "code", "configuration": {"code": "return n"},
     "inputs": {"n": "stats"}, "is_output_node": True},
]}  # fmt: skip
SLOW = {"nodes": [{"name": "nap", "type": "code",
                   "configuration": {"code": "import time\ntime.sleep(5)\nreturn 1", "timeout": 20},
                   "is_output_node": True}]}  # fmt: skip


@pytest.fixture(scope="module")
def published(wf_server: Server) -> Server:
    wf_server.publish("pipeline", PIPELINE, ["prod"])
    wf_server.publish("no-output", NO_OUTPUT)
    wf_server.publish("all-fail", ALL_FAIL)
    wf_server.publish("slow", SLOW)
    wf_server.publish("upstream-fails", UPSTREAM_FAILS)
    wf_server.publish("big", {"nodes": [{"name": "v", "type": "value",
                                         "configuration": {"value": "x" * 100_000},
                                         "is_output_node": True}]})  # fmt: skip
    return wf_server


def newest_execution(server: Server) -> dict[str, Any]:
    listing = server.ok("GET", "/promptrun/v1/workflow-executions?limit=1")
    return server.execution(listing["items"][0]["id"])  # type: ignore[no-any-return]


async def test_a_published_workflow_runs_on_the_server_and_returns_the_final_output(
    published: Server, provider_env: Server, client: AsyncPromptLayer
) -> None:
    assert await run_workflow(client, "pipeline", {"topic": "tea"}) == "a long reply"
    workflow_id = published.ok("GET", "/workflows/pipeline")["workflow"]["id"]
    assert await run_workflow(client, workflow_id, {"topic": "tea"}) == "a long reply"


async def test_return_all_outputs_gives_each_nodes_status_value_and_errors(
    published: Server, provider_env: Server, client: AsyncPromptLayer
) -> None:
    results = await run_workflow(client, "pipeline", {"topic": "tea"}, return_all_outputs=True)
    assert list(results) == ["draft", "size", "check", "long", "short"]
    assert results["draft"]["value"].startswith("Sandbox reply to: Hello tea, about tea")
    assert results["size"] == {
        "status": "SUCCESS", "value": len(results["draft"]["value"]), "error_message": None,
        "raw_error_message": None, "is_output_node": False,
    }  # fmt: skip
    assert results["short"]["status"] == "SKIPPED"
    assert "conditional 'check' was true" in results["short"]["error_message"]


async def test_each_prompt_node_is_logged_as_a_request_linked_to_its_execution(
    published: Server, provider_env: Server, client: AsyncPromptLayer
) -> None:
    await run_workflow(client, "pipeline", {"topic": "linking"}, metadata={"team": "docs"})
    execution = newest_execution(published)
    draft = execution["nodes"][0]
    assert (draft["name"], draft["status"]) == ("draft", "SUCCESS")
    assert draft["duration_ms"] is not None and draft["duration_ms"] >= 0
    record = published.ok("GET", f"/promptrun/v1/requests/{draft['request_id']}")
    assert record["metadata"] == {
        "team": "docs",
        "workflow_version_execution_id": str(execution["id"]),
        "workflow_name": "pipeline",
        "workflow_version_number": "1",
        "workflow_node_name": "draft",
    }
    assert record["prompt_name"] == "greet"
    assert execution["metadata"] == {"team": "docs"}


async def test_the_server_uses_its_own_sandbox_when_it_has_no_provider_keys(
    published: Server, no_provider_env: None, client: AsyncPromptLayer
) -> None:
    results = await run_workflow(client, "pipeline", {"topic": "offline"}, return_all_outputs=True)
    assert results["draft"]["status"] == "SUCCESS", results["draft"]
    assert "Hello offline" in results["draft"]["value"]


async def test_a_version_or_a_label_picks_which_definition_runs(
    wf_server: Server, client: AsyncPromptLayer
) -> None:
    def answer(text: str) -> dict[str, Any]:
        return {"nodes": [{"name": "v", "type": "value", "configuration": {"value": text},
                           "is_output_node": True}]}  # fmt: skip

    wf_server.publish("versioned", answer("one"), ["prod"])
    wf_server.publish("versioned", answer("two"), ["staging"])
    assert await run_workflow(client, "versioned") == "two"
    assert await run_workflow(client, "versioned", workflow_label_name="prod") == "one"
    assert await run_workflow(client, "versioned", workflow_version=1) == "one"
    assert await run_workflow(client, "versioned", execution="local", workflow_version=1) == "one"


async def test_a_result_too_large_to_push_is_fetched(
    published: Server, client: AsyncPromptLayer
) -> None:
    assert await run_workflow(client, "big") == "x" * 100_000


@pytest.mark.parametrize("execution", ["server", "local"])
async def test_a_workflow_without_output_nodes_raises_not_found(
    published: Server, client: AsyncPromptLayer, execution: Any
) -> None:
    with pytest.raises(PromptLayerNotFoundError, match="Output nodes not found"):
        await run_workflow(client, "no-output", execution=execution)


@pytest.mark.parametrize("execution", ["server", "local"])
async def test_a_workflow_whose_output_nodes_all_failed_raises_an_api_error(
    published: Server, client: AsyncPromptLayer, execution: Any
) -> None:
    with pytest.raises(PromptLayerAPIError) as caught:
        await run_workflow(client, "all-fail", execution=execution)
    assert "None of the output nodes have succeeded" in str(caught.value)
    assert "ZeroDivisionError" in str(caught.value)
    assert caught.value.body["boom"]["status"] == "FAILED"


@pytest.mark.parametrize("execution", ["server", "local"])
async def test_when_outputs_fail_because_a_node_upstream_failed_the_error_says_why_it_failed(
    published: Server, client: AsyncPromptLayer, execution: Any
) -> None:
    with pytest.raises(PromptLayerAPIError) as caught:
        await run_workflow(client, "upstream-fails", execution=execution)
    message = str(caught.value)
    assert "headline: FAILED (not run: upstream node 'stats' failed)" in message
    assert "It started with stats:" in message
    assert "the first cause" in message


async def test_a_timeout_raises_and_cancels_the_execution_on_the_server(
    published: Server, client: AsyncPromptLayer
) -> None:
    with pytest.raises(
        PromptLayerAPITimeoutError, match=r"Workflow execution timed out after 0\.5 s"
    ):
        await run_workflow(client, "slow", timeout=0.5)
    with anyio.fail_after(5):
        while True:
            execution = newest_execution(published)
            if execution["status"] != "RUNNING":
                break
            await anyio.sleep(0.05)
    assert execution["status"] == "FAILED"
    assert execution["error_message"] == "cancelled on request"
    assert execution["nodes"][0]["error_message"] == "cancelled: the workflow was cancelled"


async def test_local_execution_times_out_the_same_way(client: AsyncPromptLayer) -> None:
    with pytest.raises(PromptLayerAPITimeoutError, match=r"timed out after 0\.3 s"):
        await run_workflow(client, None, execution="local", definition=SLOW, timeout=0.3)


async def test_local_execution_runs_prompt_nodes_with_the_clients_keys_and_ships_their_logs(
    provider_env: Server, client: AsyncPromptLayer
) -> None:
    results = await run_workflow(
        client, "mine", {"topic": "local"}, execution="local", definition=PIPELINE,
        metadata={"who": "test"}, return_all_outputs=True,
    )  # fmt: skip
    assert "Hello local, about local" in results["draft"]["value"]
    assert results["long"]["status"] == "SUCCESS"
    assert await client.flush(5)
    logged = [r for r in provider_env.requests() if r["metadata"].get("workflow_name") == "mine"]
    assert len(logged) == 1
    meta = logged[0]["metadata"]
    assert meta["workflow_version_execution_id"].startswith("local_")
    assert (meta["workflow_node_name"], meta["who"]) == ("draft", "test")


async def test_local_execution_calls_python_tools_in_parallel_sync_or_async(
    client: AsyncPromptLayer,
) -> None:
    # Each tool returns only once all three are running at the same time.
    together = threading.Barrier(3, timeout=10)

    def upper(text: str) -> str:
        together.wait()
        return text.upper()

    async def reverse(text: str) -> str:
        await anyio.to_thread.run_sync(together.wait)
        return text[::-1]

    definition = {
        "input_variables": ["text"],
        "nodes": [
            {"name": "a", "type": "tool", "configuration": {"name": "upper"}, "inputs": {"text": "text"}},
            {"name": "b", "type": "tool", "configuration": {"name": "upper"}, "inputs": {"text": "text"}},
            {"name": "c", "type": "tool", "configuration": {"name": "reverse"}, "inputs": {"text": "text"}},
            {"name": "both", "type": "code", "configuration": {"code": "return [a, b, c]"},
             "inputs": {"a": "a", "b": "b", "c": "c"}, "is_output_node": True},
        ],
    }  # fmt: skip
    value = await run_workflow(
        client, None, {"text": "abc"}, execution="local", definition=definition,
        tools={"upper": upper, "reverse": reverse},
    )  # fmt: skip
    assert value == ["ABC", "ABC", "cba"]


async def test_local_execution_fetches_the_published_definition(
    published: Server, provider_env: Server, client: AsyncPromptLayer
) -> None:
    assert (
        await run_workflow(client, "pipeline", {"topic": "x"}, execution="local") == "a long reply"
    )


async def test_bad_arguments_are_refused_before_anything_is_sent(client: AsyncPromptLayer) -> None:
    with pytest.raises(PromptLayerValidationError, match="tools= and definition= are for"):
        await run_workflow(client, "pipeline", tools={"t": print})
    with pytest.raises(PromptLayerValidationError, match="execution must be"):
        await run_workflow(client, "pipeline", execution="cloud")  # type: ignore[arg-type]
    with pytest.raises(PromptLayerValidationError, match="workflow_id_or_name"):
        await run_workflow(client, None)
    with pytest.raises(PromptLayerValidationError, match="timeout"):
        await run_workflow(client, "pipeline", timeout=0)


async def test_unknown_workflows_and_missing_inputs_are_reported(
    published: Server, client: AsyncPromptLayer
) -> None:
    with pytest.raises(PromptLayerNotFoundError, match="workflow 'nope' not found"):
        await run_workflow(client, "nope")
    with pytest.raises(PromptLayerBadRequestError, match="input variable 'topic' is required"):
        await run_workflow(client, "pipeline")
    with pytest.raises(PromptLayerValidationError, match="input variable 'topic' is required"):
        await run_workflow(client, "pipeline", execution="local")


def test_the_sync_client_forwards_through_its_portal(
    published: Server, provider_env: Server, tmp_path: Any
) -> None:
    with PromptLayer(
        api_key=published.api_key, base_url=published.base_url, spool_dir=tmp_path
    ) as pl:
        value = pl.run_workflow("pipeline", {"topic": "sync"})
    assert value == "a long reply"
