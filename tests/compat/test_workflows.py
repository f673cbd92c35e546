"""The peer SDK's run_workflow against our server: websocket push, REST fallback, errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from promptlayer import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
)

from promptrun.testing import RunningServer

from ._peer import GREETING

PIPELINE = {
    "input_variables": ["name", "topic"],
    "nodes": [
        {"name": "reply", "type": "prompt_template",
         "configuration": {"prompt_name": "openai", "label": "prod"},
         "inputs": {"name": "name", "topic": "topic"}},
        {"name": "haiku", "type": "prompt_template", "configuration": {"prompt_name": "openai", "version": 1},
         "inputs": {"name": "topic", "topic": "name"}},
        {"name": "words", "type": "code", "configuration": {"code": "return len(a.split()) + len(b.split())"},
         "inputs": {"a": "reply", "b": "haiku"}},
        {"name": "verdict", "type": "conditional",
         "configuration": {"expression": "n > 5", "if_true": ["wordy"], "if_false": ["terse"]},
         "inputs": {"n": "words"}},
        {"name": "wordy", "type": "code", "configuration": {"code": "return {'words': n, 'style': 'wordy'}"},
         "inputs": {"n": "words"}, "is_output_node": True},
        {"name": "terse", "type": "value", "configuration": {"value": {"style": "terse"}}, "is_output_node": True},
    ],
}  # fmt: skip


def _publish(server: RunningServer, name: str, definition: dict[str, Any]) -> int:
    request = urllib.request.Request(
        server.base_url + "/rest/workflows",
        data=json.dumps({"workflow_name": name, "definition": definition}).encode(),
        headers={"X-API-KEY": server.api_key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["workflow"]["id"])


@pytest.fixture(scope="module")
def workflows(peer_server: RunningServer) -> dict[str, int]:
    def single(node: dict[str, Any]) -> dict[str, Any]:
        return {"nodes": [node]}

    return {
        "pipeline": _publish(peer_server, "pipeline", PIPELINE),
        "no-output": _publish(peer_server, "no-output", single(
            {"name": "v", "type": "value", "configuration": {"value": 1}})),
        "all-fail": _publish(peer_server, "all-fail", single(
            {"name": "boom", "type": "code", "configuration": {"code": "return 1/0"}, "is_output_node": True})),
        "big": _publish(peer_server, "big", single(
            {"name": "v", "type": "value", "configuration": {"value": "z" * 100_000}, "is_output_node": True})),
        "slow": _publish(peer_server, "slow", single(
            {"name": "nap", "type": "code", "configuration": {"code": "import time\ntime.sleep(5)", "timeout": 20},
             "is_output_node": True})),
    }  # fmt: skip


def test_the_peer_gets_the_final_output_nodes_value(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    value = pl.run_workflow("pipeline", input_variables=GREETING)
    # the code node counted the words of both sandbox replies (each about ten words)
    assert value["style"] == "wordy"
    assert 10 < value["words"] < 40


def test_the_peer_gets_every_node_with_return_all_outputs(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    results = pl.run_workflow(
        workflows["pipeline"], input_variables=GREETING, return_all_outputs=True
    )
    assert list(results) == ["reply", "haiku", "words", "verdict", "wordy", "terse"]
    for record in results.values():
        assert set(record) == {
            "status",
            "value",
            "error_message",
            "raw_error_message",
            "is_output_node",
        }
    assert results["reply"]["value"].startswith("Sandbox reply to: Hello Ada, about tea")
    assert results["haiku"]["status"] == "SUCCESS"
    assert results["words"]["value"] == results["wordy"]["value"]["words"]
    assert results["terse"]["status"] == "SKIPPED"
    assert results["terse"]["is_output_node"] is True


@pytest.mark.anyio
async def test_the_async_peer_runs_workflows_the_same_way(
    apl: AsyncPromptLayer, workflows: dict[str, int]
) -> None:
    value = await apl.run_workflow("pipeline", input_variables=GREETING)
    assert value["style"] == "wordy"
    everything = await apl.run_workflow(
        "pipeline", input_variables=GREETING, return_all_outputs=True
    )
    assert everything["wordy"]["value"] == value


def test_the_peer_fetches_a_result_too_large_to_push(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    assert pl.run_workflow("big") == "z" * 100_000


def test_without_output_nodes_the_peer_raises_its_wrapped_not_found(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    # The peer raises PromptLayerNotFoundError, and its own except clause wraps that.
    with pytest.raises(PromptLayerAPIError, match="Error running workflow: Output nodes not found"):
        pl.run_workflow("no-output")


def test_the_peer_raises_when_no_output_node_succeeded(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    with pytest.raises(PromptLayerAPIError, match="None of the output nodes have succeeded") as err:
        pl.run_workflow("all-fail")
    assert '"raw_error_message": "ZeroDivisionError: division by zero"' in str(err.value)


def test_the_peer_times_out_on_its_own_clock(pl: PromptLayer, workflows: dict[str, int]) -> None:
    with pytest.raises(PromptLayerAPITimeoutError):
        pl.run_workflow("slow", timeout=0.5)


def test_an_unknown_workflow_is_the_peers_api_error(
    pl: PromptLayer, workflows: dict[str, int]
) -> None:
    with pytest.raises(PromptLayerAPIError, match="not found"):
        pl.run_workflow("ghost")
